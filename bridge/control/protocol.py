"""The control protocol, pure: requests and replies as JSON lines, their bounds, the named
errors, and who may be served. Both ends use it: `bridge.control.server` in the daemon,
`bridge.control.client` in the commands.
"""

from __future__ import annotations

import json
import pwd
from dataclasses import dataclass, field
from typing import Any

VERSION = 1

# Named errors of a reply (`error`), each with a one-line `message` and maybe a `hint`.
BAD_REQUEST = "bad_request"  # not a JSON object, or the wrong fields
VERSION_MISMATCH = "version"  # the request speaks another version of the protocol
UNKNOWN_COMMAND = "unknown_command"
TOO_LARGE = "too_large"  # a request line longer than Limits.max_request
TOO_MANY_REQUESTS = "too_many_requests"  # more than Limits.max_requests on one connection
BUSY = "busy"  # Limits.max_connections are open already
FORBIDDEN = "forbidden"  # neither root nor the daemon's user
TIMEOUT = "timeout"  # no whole request within Limits.read_timeout
UNKNOWN_CHANNEL = "unknown_channel"
UNAVAILABLE = "unavailable"  # the daemon is stopping


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection may cost the daemon."""

    max_request: int = 64 * 1024  # bytes of one request line
    max_requests: int = 100  # requests on one connection; then it is closed
    max_connections: int = 16  # open at once; more are told BUSY and closed
    read_timeout: float = 10.0  # seconds to send each whole request line
    write_timeout: float = 30.0  # seconds for the caller to read a reply


MAX_REPLY = 256 * 1024 * 1024  # bytes of a reply the client reads: a queue of 100,000 alerts fits


class ProtocolError(ValueError):
    """A request or reply that breaks the protocol; `code` is the named error."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


class ReplyError(ProtocolError):
    """A well-formed reply that is the daemon's named error."""


@dataclass(frozen=True, slots=True)
class Request:
    command: str
    args: dict[str, Any] = field(default_factory=dict)


def encode_request(command: str, args: dict[str, Any] | None = None) -> bytes:
    """The line that asks `command` with `args`."""
    return _line({"version": VERSION, "command": command, "args": args or {}})


def decode_request(line: bytes) -> Request:
    """The request of one line (its newline included or not). Raise ProtocolError with
    BAD_REQUEST for anything but `{"version", "command", "args"?}`, VERSION_MISMATCH for
    another version."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(BAD_REQUEST, "a request is one JSON object on one line") from None
    if not isinstance(data, dict):
        raise ProtocolError(BAD_REQUEST, "a request is one JSON object on one line")
    if data.get("version") != VERSION:
        raise ProtocolError(VERSION_MISMATCH, f"this daemon speaks control protocol version {VERSION}, "
                            f"the request version {data.get('version')!r}",
                            hint="run the channel-bridge of the same installation as the daemon")
    command, args = data.get("command"), data.get("args", {})
    if not isinstance(command, str) or not isinstance(args, dict) or set(data) - {"version", "command", "args"}:
        raise ProtocolError(BAD_REQUEST, 'a request has "version", "command" (a string) and "args" (an object)')
    return Request(command, args)


def encode_reply(result: Any) -> bytes:
    return _line({"version": VERSION, "ok": True, "result": result})


def encode_error(code: str, message: str, hint: str = "") -> bytes:
    reply: dict[str, Any] = {"version": VERSION, "ok": False, "error": code, "message": message}
    if hint:
        reply["hint"] = hint
    return _line(reply)


def decode_reply(line: bytes) -> Any:
    """The result of a reply line. Raise ProtocolError: VERSION_MISMATCH when the daemon speaks
    another version, BAD_REQUEST for a line that is no reply; ReplyError with the reply's own
    named error (its `code`, `message` and `hint`) when it is one."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict) or "version" not in data:
        raise ProtocolError(BAD_REQUEST, "the daemon's answer is not a control reply",
                            hint="is control_socket the socket of a channel-bridge daemon?")
    if data["version"] != VERSION:
        raise ProtocolError(VERSION_MISMATCH, f"the running daemon speaks control protocol version "
                            f"{data['version']!r}, this command version {VERSION}",
                            hint="restart the daemon after an upgrade: systemctl restart channel-bridge")
    if data.get("ok") is True:
        return data.get("result")
    raise ReplyError(str(data.get("error", BAD_REQUEST)), str(data.get("message", "refused")),
                     str(data.get("hint", "")))


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def peer_allowed(peer_uid: int, daemon_uid: int) -> bool:
    """Whether a caller of uid `peer_uid` is served by a daemon running as `daemon_uid`: root,
    and the daemon's own user (the service's, or whoever runs it from a checkout)."""
    return peer_uid in (0, daemon_uid)


def user_name(uid: int) -> str:
    """The Unix user name of `uid` (recorded with every request), or "uid N" without one."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
