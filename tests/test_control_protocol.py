"""The control protocol, pure: what a request and a reply may be, their named errors, who is
served, and where both ends find the socket (one answer, from the config)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.config import parse_config
from bridge.control.protocol import (
    BAD_REQUEST,
    UNKNOWN_CHANNEL,
    VERSION_MISMATCH,
    ProtocolError,
    ReplyError,
    Request,
    decode_reply,
    decode_request,
    encode_error,
    encode_reply,
    encode_request,
    peer_allowed,
    user_name,
)


def test_a_request_round_trips_as_one_line() -> None:
    line = encode_request("queue", {"channel": "whatsapp"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line) == Request("queue", {"channel": "whatsapp"})
    assert decode_request(b'{"version": 1, "command": "ping"}') == Request("ping", {})


@pytest.mark.parametrize(("line", "code"), [
    (b"not json", BAD_REQUEST),
    (b"\xff\xfe", BAD_REQUEST),
    (b"[1, 2]", BAD_REQUEST),
    (b'{"command": "ping"}', VERSION_MISMATCH),
    (b'{"version": 2, "command": "ping"}', VERSION_MISMATCH),
    (b'{"version": "1", "command": "ping"}', VERSION_MISMATCH),
    (b'{"version": 1, "command": 7}', BAD_REQUEST),
    (b'{"version": 1, "command": "queue", "args": []}', BAD_REQUEST),
    (b'{"version": 1, "command": "ping", "user": "root"}', BAD_REQUEST),  # a caller names no one: the socket does
])
def test_a_bad_request_is_a_named_error(line: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode_request(line)
    assert raised.value.code == code and str(raised.value)


def test_replies() -> None:
    assert decode_reply(encode_reply({"pid": 7})) == {"pid": 7}
    with pytest.raises(ReplyError) as refused:
        decode_reply(encode_error(UNKNOWN_CHANNEL, 'no channel "x"', "channels: a"))
    assert (refused.value.code, str(refused.value), refused.value.hint) == (UNKNOWN_CHANNEL, 'no channel "x"',
                                                                            "channels: a")
    with pytest.raises(ProtocolError) as newer:
        decode_reply(json.dumps({"version": 2, "ok": True, "result": None}).encode())
    assert newer.value.code == VERSION_MISMATCH and not isinstance(newer.value, ReplyError)
    assert "restart the daemon" in newer.value.hint
    for garbage in (b"", b"HTTP/1.1 400 Bad Request", b"[]"):
        with pytest.raises(ProtocolError) as wrong:
            decode_reply(garbage)
        assert wrong.value.code == BAD_REQUEST and not isinstance(wrong.value, ReplyError)


@pytest.mark.parametrize(("peer", "daemon", "allowed"), [
    (0, 0, True),
    (0, 61234, True),  # root, for a service's dynamic user
    (61234, 61234, True),  # the daemon's own user
    (1000, 61234, False),  # anyone else, whatever the file system let through
    (65534, 0, False),
    (1000, 0, False),
])
def test_who_is_served(peer: int, daemon: int, allowed: bool) -> None:
    assert peer_allowed(peer, daemon) is allowed


def test_user_names() -> None:
    assert user_name(0) == "root"
    assert user_name(2**31 - 7) == f"uid {2**31 - 7}"


def socket_of(text: str, env: dict[str, str]) -> Path:
    data = {"bridge": {"state_dir": "stato", **({"control_socket": text} if text else {})},
            "feeds": [{"id": "n", "name": "N", "url": "https://www.comune.example.it/feed", "channels": ["console"]}],
            "channels": {"console": {"type": "console"}}}
    return parse_config(data, path=Path("/etc/cb/config.toml"), env=env).bridge.socket_path


def test_where_the_socket_is() -> None:
    assert socket_of("", {}) == Path("/etc/cb/stato/control.sock")  # in the state directory
    assert socket_of("run/cb.sock", {}) == Path("/etc/cb/run/cb.sock")  # relative to the config file
    assert socket_of("/run/cb/c.sock", {}) == Path("/run/cb/c.sock")
    # systemd's RuntimeDirectory= wins, as StateDirectory= does for the state
    assert socket_of("/elsewhere.sock", {"RUNTIME_DIRECTORY": "/run/channel-bridge"}) == Path(
        "/run/channel-bridge/control.sock")
    assert socket_of("", {"STATE_DIRECTORY": "/var/lib/channel-bridge"}) == Path(
        "/var/lib/channel-bridge/control.sock")
