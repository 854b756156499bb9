"""The commands' end of the control socket: one request, one reply, blocking, bounded by a
timeout. Every way it can fail is a named `ControlError` with one line and a hint.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

from bridge.control.protocol import (
    MAX_REPLY,
    VERSION_MISMATCH,
    ProtocolError,
    ReplyError,
    decode_reply,
    encode_request,
)

TIMEOUT = 30.0  # seconds for the daemon to answer (a queue of 100,000 alerts takes about one)


class ControlError(Exception):
    """The running daemon could not be asked; `hint` says what to do."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class DaemonNotRunning(ControlError):
    """Nothing answers on the control socket: no daemon runs with this config."""


class ControlPermissionError(ControlError):
    """The socket (or its directory) is not this user's to use."""


class ControlTimeout(ControlError):
    """The daemon did not answer in time."""


class ProtocolMismatch(ControlError):
    """The daemon speaks another version of the protocol, or is no channel-bridge."""


class ControlRefused(ControlError):
    """The daemon answered with a named error (`code`: protocol.UNKNOWN_CHANNEL, FORBIDDEN...)."""

    def __init__(self, code: str, message: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.code = code


def ask(path: Path, command: str, args: dict[str, Any] | None = None, *, timeout: float = TIMEOUT) -> Any:
    """Ask the daemon serving `path` to run `command` with `args`; return its result. Raise
    DaemonNotRunning, ControlPermissionError, ControlTimeout, ProtocolMismatch or
    ControlRefused."""
    name = os.fsencode(path)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        try:
            connection.connect(name)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise DaemonNotRunning(f"the daemon is not running (nothing answers on {path})",
                                   hint="start it: systemctl start channel-bridge") from None
        except PermissionError:
            raise ControlPermissionError(f"permission denied on the control socket {path}",
                                         hint="run the command as root, or as the daemon's user") from None
        except TimeoutError:
            raise ControlTimeout(f"the daemon did not accept the connection on {path} within {timeout:g} s",
                                 hint="it may be overloaded or stuck: see journalctl -u channel-bridge") from None
        except OSError as exc:
            if exc.errno == errno.EINVAL or "too long" in str(exc):
                # No daemon can listen on a path the system refuses: none runs there.
                raise DaemonNotRunning(f"the daemon is not running: the control socket's path {path} is too long",
                                       hint="set [bridge] control_socket to a shorter path") from None
            raise ControlError(f"cannot reach the daemon on {path}: {exc.strerror or exc}") from None
        try:
            try:
                connection.sendall(encode_request(command, args))
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the request was read (a caller it does not serve): its reply says why
            line = _read_line(connection)
        except TimeoutError:
            raise ControlTimeout(f"the daemon did not answer within {timeout:g} s",
                                 hint="it may be overloaded or stuck: see journalctl -u channel-bridge") from None
        except OSError as exc:
            raise ControlError(f"the daemon closed the control connection: {exc.strerror or exc}",
                               hint="see journalctl -u channel-bridge") from None
    finally:
        connection.close()
    if not line:
        raise ControlError(f"the daemon closed the control connection on {path} without an answer",
                           hint="see journalctl -u channel-bridge")
    try:
        return decode_reply(line)
    except ReplyError as exc:
        if exc.code == VERSION_MISMATCH:
            raise ProtocolMismatch(str(exc), hint=exc.hint) from None
        raise ControlRefused(exc.code, str(exc), hint=exc.hint) from None
    except ProtocolError as exc:
        raise ProtocolMismatch(str(exc), hint=exc.hint) from None


def _read_line(connection: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = connection.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk:
            break
        if size > MAX_REPLY:
            raise ProtocolMismatch(f"the daemon's reply is longer than {MAX_REPLY} bytes")
    return b"".join(chunks).partition(b"\n")[0]
