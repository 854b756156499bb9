"""The "answers 2xx with garbage" fault the fake gateways share: a proxy's login page, a health
check's `{"status": "ok"}`, an empty body, JSON of another shape, all with a success status.

    fake.garble_next(3)                                   # the next 3 sends get the login page
    fake.garble_next(None, body=b'{"status":"ok"}', content_type="application/json")  # until cleared
    fake.garble_next(1, forward=True)   # the send is handled (the post exists), the answer is garbage
    fake.garble_next(None, every_request=True)            # a proxy in front of every route
    fake.clear_garbage()                                  # the gateway answers for itself again

`forward=True` is the proxy that passed the request on and replaced the answer: the post is
on the channel, the client cannot know it. Without it the request never reached the platform.
`BODIES` names the kinds the tests run through.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from servers.loopback import Reply, Request

LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html lang=\"it\"><head><meta charset=\"utf-8\"><title>Accesso alla rete comunale"
    b"</title></head>\n<body><form method=\"post\" action=\"/login\"><input name=\"utente\">"
    b"<input type=\"password\" name=\"password\"><button>Entra</button></form></body></html>\n"
)

#: name -> (body, content type): what a misconfigured `url` answers with a 200.
BODIES: dict[str, tuple[bytes, str]] = {
    "login page": (LOGIN_PAGE, "text/html; charset=utf-8"),
    "status ok": (b'{"status":"ok"}', "application/json"),
    "empty body": (b"", "text/plain"),
    "wrong shape": (b'{"data":[{"id":1}],"count":1}', "application/json; charset=utf-8"),
}


@dataclass(frozen=True, slots=True)
class Garbage:
    """One answer that is a success by its status only."""

    status: int = 200
    body: bytes = LOGIN_PAGE
    content_type: str = "text/html; charset=utf-8"
    forward: bool = False  # the request was handled first: only the answer is lost
    every_request: bool = False  # all routes, not only the sends


class GarbageSwitch:
    """Thread-safe: how many more requests get `Garbage` (None: until cleared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._garbage: Garbage | None = None
        self._left: int | None = 0

    def set(self, garbage: Garbage, n: int | None) -> None:
        with self._lock:
            self._garbage, self._left = garbage, n

    def clear(self) -> None:
        with self._lock:
            self._garbage, self._left = None, 0

    def take(self, *, send: bool) -> Garbage | None:
        """The garbage for this request (a send when `send`), counting it, or None."""
        with self._lock:
            garbage = self._garbage
            if garbage is None or (not send and not garbage.every_request):
                return None
            if self._left is not None:
                if self._left <= 0:
                    return None
                self._left -= 1
            return garbage


def loopback_reply(garbage: Garbage) -> Reply:
    """The garbage as a `servers.loopback.Reply`."""
    return Reply(garbage.status, raw=garbage.body, content_type=garbage.content_type)


class Garbling:
    """Mixin for a fake gateway: the `garble_next` and `clear_garbage` switches over the
    fake's `_garbage`."""

    _garbage: GarbageSwitch

    def garble_next(self, n: int | None = 1, *, body: bytes = LOGIN_PAGE,
                    content_type: str = "text/html; charset=utf-8", status: int = 200,
                    forward: bool = False, every_request: bool = False) -> None:
        """Answer the next `n` sends (None: every one until `clear_garbage`) with `status` and
        `body`; `forward` handles each first, `every_request` garbles all routes."""
        self._garbage.set(Garbage(status, body, content_type, forward, every_request), n)

    def clear_garbage(self) -> None:
        """The gateway answers for itself again."""
        self._garbage.clear()


class GarblingServer(Garbling):
    """Mixin for a `LoopbackServer` fake: its `handle` becomes `_handle`, and `_is_send(request)`
    says which requests are sends."""

    def handle(self, request: Request) -> Reply:
        garbage = self._garbage.take(send=self._is_send(request))
        if garbage is None:
            return self._handle(request)
        if garbage.forward:
            self._handle(request)
        return loopback_reply(garbage)

    def _handle(self, request: Request) -> Reply:  # pragma: no cover - implemented by the fake
        raise NotImplementedError

    def _is_send(self, request: Request) -> bool:  # pragma: no cover - implemented by the fake
        raise NotImplementedError
