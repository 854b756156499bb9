"""The daemon's local control socket: how commands talk to a running `channel-bridge run`
(never by writing its files).

The daemon serves a Unix socket (`bridge.control.server`, on its own event loop) at
`BridgeSettings.socket_path`: `$RUNTIME_DIRECTORY/control.sock` under systemd
(RuntimeDirectory=channel-bridge, mode 0700, so /run/channel-bridge/control.sock), else
`[bridge] control_socket`, else `control.sock` in the state directory. Its directory is 0700
and the socket 0600; only root and the daemon's own user are served, whoever the file system
lets in (the peer's uid comes from SO_PEERCRED).

The protocol (`bridge.control.protocol`): one JSON object per line each way, UTF-8.

    request  {"version": 1, "command": "queue", "args": {"channel": "whatsapp"}}
    reply    {"version": 1, "ok": true, "result": {...}}
             {"version": 1, "ok": false, "error": "unknown_channel", "message": "...", "hint": "..."}

A connection may carry several requests, answered in order, within the bounds of
`protocol.Limits`; the commands are in `bridge.control.server.COMMANDS`.
"""
