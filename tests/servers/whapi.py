"""A fake Whapi.Cloud gateway on loopback (SPEC 6).

Routes (`Authorization: Bearer <token>`, else 401 `{"error": {"code": 401, "message": ...}}`):

- `POST /messages/text` `{"to", "body"}` -> 200 `{"sent": true, "message": {"id", ...}}`
- `POST /messages/image` `{"to", "media", "caption"?}`; `media` a URL or a base64 data URL
  (`data:image/png;name=x.png;base64,...`), decoded into `WhapiMessage.media_bytes`.
- `GET /health` -> `{"status": {"code", "text"}, ...}`.

A `to` other than `chat_id` answers 404; a missing field 400. Switches: `token`, `chat_id`,
`status` (AUTH, QR, INIT, LAUNCH, STOP, SYNC_ERROR, ERROR), `reject_media`,
`fail_next(code, n=1, retry_after=None)`, `not_sent_next(n)` (200 with `"sent": false`),
`garble_next(n=1, body=, content_type=, status=200, forward=False, every_request=False)` and
`clear_garbage()` (a 2xx that is not Whapi's answer, see `servers.garbage`; the message routes
only unless `every_request`), `delay`. Accepted messages are in `messages`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from servers.garbage import GarbageSwitch, GarblingServer
from servers.loopback import LoopbackServer, Reply, Request

_STATUS_CODES = {"INIT": 1, "LAUNCH": 2, "QR": 3, "AUTH": 4, "ERROR": 5, "STOP": 6, "SYNC_ERROR": 7}


@dataclass(frozen=True, slots=True)
class WhapiMessage:
    id: str
    kind: str  # "text" or "image"
    to: str
    text: str  # body, or caption
    media: str | None  # as sent
    media_bytes: bytes | None  # decoded when a data URL
    media_mimetype: str | None


class FakeWhapi(GarblingServer, LoopbackServer):
    def __init__(self, *, token: str = "whapi-test-token-0123456789",
                 chat_id: str = "120363000000000000@newsletter") -> None:
        super().__init__()
        self.token = token
        self.chat_id = chat_id
        self.status = "AUTH"
        self.reject_media = False
        self._garbage = GarbageSwitch()
        self._state = threading.Lock()
        self._failures: deque[tuple[int, float | None]] = deque()
        self._not_sent = 0
        self._messages: list[WhapiMessage] = []
        self._ids = itertools.count(1)

    def fail_next(self, code: int, n: int = 1, retry_after: float | None = None) -> None:
        with self._state:
            self._failures.extend([(code, retry_after)] * n)

    def not_sent_next(self, n: int) -> None:
        with self._state:
            self._not_sent += n

    @property
    def messages(self) -> list[WhapiMessage]:
        with self._state:
            return list(self._messages)

    def _is_send(self, request: Request) -> bool:
        return request.method == "POST" and request.path in ("/messages/text", "/messages/image")

    def _handle(self, request: Request) -> Reply:
        if request.header("Authorization") != f"Bearer {self.token}":
            return _error(401, "Unauthorized: wrong or missing token")
        if request.method == "GET" and request.path == "/health":
            text = self.status
            return Reply(200, {"channel_id": "ESEMPIO-A1B2C", "start_at": 1772355600, "uptime": 42,
                               "version": "test", "status": {"code": _STATUS_CODES.get(text, 0), "text": text}})
        if request.method == "POST" and request.path in ("/messages/text", "/messages/image"):
            return self._send("text" if request.path.endswith("text") else "image", request.json)
        return _error(404, "Not found")

    def _send(self, kind: str, body: Any) -> Reply:
        with self._state:
            failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                code, retry_after = failure
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                return _error(code, {429: "Too many requests", 402: "Payment required"}.get(code, "Error"), headers)
            if not isinstance(body, dict) or not isinstance(body.get("to"), str):
                return _error(400, "Parameter 'to' is required")
            if body["to"] != self.chat_id:
                return _error(404, "Specified chat not found")
            if self._not_sent > 0:
                self._not_sent -= 1
                return Reply(200, {"sent": False})
            media = body.get("media")
            data: bytes | None = None
            mimetype: str | None = None
            if kind == "text":
                if not isinstance(body.get("body"), str) or not body["body"]:
                    return _error(400, "Parameter 'body' is required")
                text = body["body"]
            else:
                if not isinstance(media, str) or not media:
                    return _error(400, "Parameter 'media' is required")
                if self.reject_media:
                    return _error(400, "Invalid media")
                if media.startswith("data:"):
                    header, _, encoded = media.partition(",")
                    mimetype = header[5:].split(";", 1)[0]
                    try:
                        data = base64.b64decode(encoded, validate=True)
                    except binascii.Error:
                        return _error(400, "Invalid media: bad base64")
                text = str(body.get("caption", ""))
            message = WhapiMessage(f"wamid.{next(self._ids):08d}", kind, body["to"], text,
                                   media if isinstance(media, str) else None, data, mimetype)
            self._messages.append(message)
        return Reply(200, {"sent": True, "message": {"id": message.id, "type": kind, "chat_id": message.to,
                                                    "from_me": True, "status": "pending"}})


def _error(code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(code, {"error": {"code": code, "message": message}}, headers or {})


@pytest.fixture
def whapi_server() -> Iterator[FakeWhapi]:
    """A running `FakeWhapi` (channel AUTH), closed after."""
    with FakeWhapi() as server:
        yield server
