"""The control socket's server, on the daemon's own event loop (asyncio's Unix server).

Each connection: the caller's uid from SO_PEERCRED (only root and the daemon's user are
served), then up to `Limits.max_requests` requests, one JSON line each, each to arrive
whole within `Limits.read_timeout`; every request is logged with the caller's user name.
The commands read the daemon's memory (its `Store`, its console), never the state files.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from bridge import __version__
from bridge.control.protocol import (
    BAD_REQUEST,
    BUSY,
    FORBIDDEN,
    TIMEOUT,
    TOO_LARGE,
    TOO_MANY_REQUESTS,
    UNKNOWN_CHANNEL,
    UNKNOWN_COMMAND,
    Limits,
    ProtocolError,
    Request,
    decode_request,
    encode_error,
    encode_reply,
    peer_allowed,
    user_name,
)

if TYPE_CHECKING:
    from bridge.approval import Action, Decision
    from bridge.compose import Composed, Composition
    from bridge.config import Config
    from bridge.console.server import Console
    from bridge.store import Store

log = structlog.get_logger("bridge.control")

MAX_SOCKET_PATH = 107  # bytes of a Unix socket's path (sun_path is 108, with its NUL)
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class Daemon(Protocol):
    """What the commands read of the running daemon."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    @property
    def console(self) -> Console | None: ...

    def now(self) -> datetime: ...

    def status_line(self) -> str: ...

    async def act(self, action: Action, *, who: str, where: str) -> Decision: ...

    async def delete_post(self, delivery_id: str, *, who: str, where: str, reason: str) -> str: ...
    async def compose(self, composition: Composition, *, who: str, where: str) -> Composed: ...


class ControlSocketError(Exception):
    """The control socket cannot be served; `hint` says what to do."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is on the other end of a connection (from SO_PEERCRED)."""

    pid: int
    uid: int
    name: str


Command = Callable[[Daemon, dict[str, Any], Peer], Any]


def _ping(daemon: Daemon, args: dict[str, Any], peer: Peer) -> dict[str, Any]:
    return {"pid": os.getpid(), "version": __version__, "status": daemon.status_line(),
            "console": daemon.console is not None, "user": peer.name}


def _queue(daemon: Daemon, args: dict[str, Any], peer: Peer) -> dict[str, Any]:
    from bridge.waits import UnknownChannelError, waiting

    channel = args.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise ProtocolError(BAD_REQUEST, '"channel" is a channel\'s name')
    config = daemon.config
    try:
        rows = waiting(config, daemon.store, daemon.now(), channel=channel)
    except UnknownChannelError as exc:
        raise ProtocolError(UNKNOWN_CHANNEL, str(exc), exc.hint) from None
    names = {feed.id: feed.name for feed in config.feeds}
    return {"pid": os.getpid(), "rows": [row.to_dict(names) for row in rows]}


def _end_sessions(daemon: Daemon, args: dict[str, Any], peer: Peer) -> dict[str, Any]:
    account = args.get("account")
    if not isinstance(account, str) or not account:
        raise ProtocolError(BAD_REQUEST, '"account" is an account\'s name')
    console = daemon.console
    ended = console.sessions.close_account(account) if console is not None else 0
    log.info("console sessions ended", account=account, sessions=ended, by=peer.name)
    return {"ended": ended, "console": console is not None}


async def _act(daemon: Daemon, args: dict[str, Any], peer: Peer) -> dict[str, Any]:
    """An editor's action (`bridge.approval`): {"action", "id", "text"?, "confirm"?, "reason"?};
    answered once it is durable, or refused with the refusal's code (approval.CONFLICT...)."""
    from bridge.approval import Action, ActionRefused

    action, ident, text = args.get("action"), args.get("id"), args.get("text")
    reason, confirm = args.get("reason", ""), args.get("confirm", False)
    if not isinstance(action, str) or not isinstance(ident, str) or not ident:
        raise ProtocolError(BAD_REQUEST, '"action" and "id" are strings')
    if (text is not None and not isinstance(text, str)) or not isinstance(reason, str) \
            or not isinstance(confirm, bool):
        raise ProtocolError(BAD_REQUEST, '"text" and "reason" are strings, "confirm" true or false')
    try:
        decision = await daemon.act(Action(action, ident, text=text, confirm=confirm, reason=reason),
                                    who=peer.name, where="cli")
    except ActionRefused as exc:
        log.info("action refused", action=action, alert=ident, user=peer.name, why=exc.code, message=str(exc))
        raise ProtocolError(exc.code, str(exc), exc.hint) from None
    after = decision.after
    return {"message": decision.message, "id": ident, "state": after.state if after is not None else "dropped",
            "user": peer.name}


async def _delete(daemon: Daemon, args: dict[str, Any], peer: Peer) -> dict[str, Any]:
    """Delete a post on its platform (`bridge.deletion`): {"id", "reason"}; answered once it is
    done and in the audit trail, or refused with the refusal's code."""
    from bridge.approval import ActionRefused

    ident, reason = args.get("id"), args.get("reason", "")
    if not isinstance(ident, str) or not ident or not isinstance(reason, str):
        raise ProtocolError(BAD_REQUEST, '"id" and "reason" are strings')
    try:
        message = await daemon.delete_post(ident, who=peer.name, where="cli", reason=reason)
    except ActionRefused as exc:
        log.info("deletion refused", post=ident, user=peer.name, why=exc.code, message=str(exc))
        raise ProtocolError(exc.code, str(exc), exc.hint) from None
    return {"message": message, "id": ident, "user": peer.name}
async def _compose(daemon: Daemon, args: dict[str, Any], peer: Peer) -> dict[str, Any]:
    """An alert an editor wrote, or a test message (`bridge.compose`): {"title", "text", "link",
    "image"?, "urgent"?, "channels"?, "test"?, "id"?}; answered once it is durable, with the
    ids queued, or refused with the refusal's code (compose.BAD_LINK...)."""
    import uuid

    from bridge.approval import ActionRefused
    from bridge.compose import Composition

    strings = {name: args.get(name, "") for name in ("title", "text", "link")}
    image, channels = args.get("image"), args.get("channels", [])
    urgent, test, ident = args.get("urgent", False), args.get("test", False), args.get("id")
    if not all(isinstance(value, str) for value in strings.values()) or \
            (image is not None and not isinstance(image, str)):
        raise ProtocolError(BAD_REQUEST, '"title", "text", "link" and "image" are strings')
    if not isinstance(channels, list) or not all(isinstance(name, str) for name in channels):
        raise ProtocolError(BAD_REQUEST, '"channels" is a list of channel names')
    if not isinstance(urgent, bool) or not isinstance(test, bool):
        raise ProtocolError(BAD_REQUEST, '"urgent" and "test" are true or false')
    if ident is not None and (not isinstance(ident, str) or not ident or len(ident) > 64):
        raise ProtocolError(BAD_REQUEST, '"id" is a string of at most 64 characters')
    composition = Composition(ident or uuid.uuid4().hex, title=strings["title"], text=strings["text"],
                              link=strings["link"], image_url=image, urgent=urgent, channels=tuple(channels),
                              test=test)
    try:
        composed = await daemon.compose(composition, who=peer.name, where="cli")
    except ActionRefused as exc:
        log.info("composed alert refused", user=peer.name, why=exc.code, message=str(exc))
        raise ProtocolError(exc.code, str(exc), exc.hint) from None
    return {"message": composed.message, "id": composition.compose_id, "user": peer.name,
            "queued": [{"id": d.id, "channel": d.channel} for d in composed.deliveries]}


# name -> (what it does, whether each call is logged at info: reading commands at debug)
COMMANDS: dict[str, tuple[Command, bool]] = {
    "ping": (_ping, False),
    "queue": (_queue, False),
    "end_sessions": (_end_sessions, True),
    "act": (_act, True),
    "delete": (_delete, True),
    "compose": (_compose, True),
}


class ControlServer:
    """The control socket of one daemon, at `path`."""

    def __init__(self, daemon: Daemon, path: Path, *, limits: Limits | None = None) -> None:
        self.daemon = daemon
        self.path = path
        self.limits = limits or Limits()
        self._uid = os.geteuid()
        self._server: asyncio.Server | None = None
        self._inode: tuple[int, int] | None = None  # the socket file this server made
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen at `path`, in a directory of mode 0700 (created if missing), the socket mode
        0600. A socket file left by a daemon that died is replaced; raise ControlSocketError
        when the directory is open to others, the path is too long or is not a socket, or
        another process answers on it."""
        directory = self.path.parent
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            raise ControlSocketError(f"the control socket's path {self.path} is longer than {MAX_SOCKET_PATH} bytes",
                                     hint="set [bridge] control_socket to a shorter path")
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = directory.stat()
        except OSError as exc:
            raise ControlSocketError(f"cannot create {directory}: {exc.strerror or exc}",
                                     hint="check [bridge] control_socket and the directory's permissions") from None
        if info.st_uid != self._uid or stat.S_IMODE(info.st_mode) & 0o077:
            raise ControlSocketError(
                f"the control socket's directory {directory} is open to other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o}, owner uid {info.st_uid})",
                hint=f"chmod 700 {directory} as its owner, or set [bridge] control_socket in a directory of mode 0700")
        await self._replace_stale()
        temporary = directory / f".{self.path.name}.{os.getpid()}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            # Bound under a temporary name, made 0600, then renamed into place: the socket is
            # never reachable with the default mode, and a stale one is replaced in one step.
            listener.bind(os.fsdecode(temporary))
            os.chmod(temporary, 0o600)
            os.rename(temporary, self.path)
            made = os.stat(self.path)
            listener.listen(self.limits.max_connections)
        except OSError as exc:
            listener.close()
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise ControlSocketError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        self._inode = (made.st_dev, made.st_ino)
        self._server = await asyncio.start_unix_server(self._accept, sock=listener,
                                                       limit=self.limits.max_request)
        log.info("control socket listening", path=str(self.path))

    async def _replace_stale(self) -> None:
        """Remove a socket file at `path` that nobody answers on (its daemon died; the state
        lock makes this daemon the only one of its state directory); refuse anything else."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ControlSocketError(f"cannot look at {self.path}: {exc.strerror or exc}") from None
        if not stat.S_ISSOCK(info.st_mode):
            raise ControlSocketError(f"{self.path} exists and is not a socket",
                                     hint="remove it, or set [bridge] control_socket to another path")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(os.fsdecode(self.path)), timeout=2)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            log.info("stale control socket replaced", path=str(self.path))
            return
        except (OSError, TimeoutError) as exc:
            raise ControlSocketError(f"cannot tell whether {self.path} is in use: {exc}",
                                     hint="remove it if no channel-bridge runs with this config") from None
        writer.close()
        raise ControlSocketError(f"another process answers on {self.path}",
                                 hint="two daemons with different state directories share this control_socket: "
                                      "give each its own")

    async def stop(self) -> None:
        """Stop listening, end the open connections, remove the socket file if it is still ours."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=2)
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._inode:
                self.path.unlink()

    # -- one connection ---------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        busy = len(self._connections) >= self.limits.max_connections
        self._connections.add(task)
        try:
            if busy:
                await self._send(writer, encode_error(BUSY, "too many control connections open",
                                                      hint="try again in a moment"))
                return
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # the caller went away, or does not read its replies: nothing is kept for it
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = self._peer(writer)
        if not peer_allowed(peer.uid, self._uid):
            log.warning("control connection refused", user=peer.name, pid=peer.pid)
            await self._send(writer, encode_error(
                FORBIDDEN, f"{peer.name} may not use the control socket: only root and {user_name(self._uid)}",
                hint="run the command as root (sudo channel-bridge ...)"))
            return
        limits = self.limits
        for count in range(limits.max_requests + 1):
            try:
                line = await asyncio.wait_for(reader.readline(), limits.read_timeout)
            except TimeoutError:
                await self._send(writer, encode_error(TIMEOUT, f"no whole request within {limits.read_timeout:g} s"))
                return
            except ValueError:  # the line is longer than the reader's limit
                await self._send(writer, encode_error(TOO_LARGE, f"a request is at most {limits.max_request} bytes"))
                return
            if not line:
                return  # the caller closed its end
            if count == limits.max_requests:
                await self._send(writer, encode_error(
                    TOO_MANY_REQUESTS, f"at most {limits.max_requests} requests on one connection",
                    hint="open a new connection"))
                return
            await self._send(writer, await self._answer(line, peer))

    async def _answer(self, line: bytes, peer: Peer) -> bytes:
        try:
            request = decode_request(line)
            result = self._run(request, peer)
            if inspect.isawaitable(result):  # an action: answered once it is on disk
                result = await result
            return encode_reply(result)
        except ProtocolError as exc:
            return encode_error(exc.code, str(exc), exc.hint)

    def _run(self, request: Request, peer: Peer) -> Any:
        if request.command not in COMMANDS:
            raise ProtocolError(UNKNOWN_COMMAND, f'unknown command "{request.command}"',
                                hint=f"commands: {', '.join(COMMANDS)}")
        command, audited = COMMANDS[request.command]
        (log.info if audited else log.debug)("control request", command=request.command, user=peer.name,
                                             pid=peer.pid)
        return command(self.daemon, request.args, peer)

    def _peer(self, writer: asyncio.StreamWriter) -> Peer:
        connection = writer.get_extra_info("socket")
        pid, uid, _ = _PEERCRED.unpack(connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        return Peer(pid, uid, user_name(uid))

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.limits.write_timeout)
