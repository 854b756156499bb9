"""An HTTPS image host on loopback, for `bridge.images.ImageLoader` and the channels' images.

It serves with the test certificate (tests/fixtures/tls); `image_loader()` builds a loader
that trusts it and allows loopback. Routes are set by the test: `serve(path, data,
content_type)`, `redirect(path, to)`; anything else answers 404. `delay` slows every answer.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.images import ImageLoader
from servers.loopback import LoopbackServer, Reply, Request, client_tls_context, tls_context

# The smallest valid PNG: one transparent pixel.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class FakeImageHost(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(tls=tls_context())
        self._routes: dict[str, Reply] = {}
        self._state = threading.Lock()

    def serve(self, path: str, data: bytes = PNG, content_type: str = "image/png", *, status: int = 200,
              headers: dict[str, str] | None = None, send_length: bool = True) -> str:
        """Answer GET `path` with `data`; return its full URL."""
        with self._state:
            self._routes[path] = Reply(status, raw=data, content_type=content_type, headers=dict(headers or {}),
                                       send_length=send_length)
        return self.url + path

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        """Answer GET `path` with a redirect to `to`; return its full URL."""
        with self._state:
            self._routes[path] = Reply(status, raw=b"", headers={"Location": to})
        return self.url + path

    def handle(self, request: Request) -> Reply:
        with self._state:
            reply = self._routes.get(request.path)
        if reply is None:
            return Reply(404, raw=b"not found", content_type="text/plain")
        return reply

    def hits(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)


def image_loader(**options: Any) -> ImageLoader:
    """An `ImageLoader` for tests: trusts the test certificate and allows loopback."""
    options.setdefault("allow_private", True)
    options.setdefault("verify", client_tls_context())
    return ImageLoader(**options)


@pytest.fixture
def image_host() -> Iterator[FakeImageHost]:
    """A running HTTPS `FakeImageHost` on 127.0.0.1, closed after."""
    with FakeImageHost() as server:
        yield server
