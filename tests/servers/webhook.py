"""A webhook receiver on loopback: records every request, optionally deduplicates.

Any path accepts `POST`. It answers `status` (200 by default) with `{"id": "<n>"}` (or no body
for 204). With `dedupe=True`, a request whose `Idempotency-Key` was seen before is answered
like the first one and not counted in `deliveries` again. With `secret`, a request whose
`X-Signature` is not `sha256=<hex HMAC-SHA256 of the body>` answers 401.

Switches: `status`, `dedupe`, `secret`, `fail_next(code, n=1, retry_after=None)`, `delay`.
`requests` holds every request; `deliveries` the accepted ones, first of each key.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
from collections import deque
from collections.abc import Iterator

import pytest

from servers.loopback import LoopbackServer, Reply, Request


class FakeWebhook(LoopbackServer):
    def __init__(self, *, dedupe: bool = False, secret: str | None = None, status: int = 200) -> None:
        super().__init__()
        self.dedupe = dedupe
        self.secret = secret
        self.status = status
        self._state = threading.Lock()
        self._failures: deque[tuple[int, float | None]] = deque()
        self._deliveries: list[Request] = []
        self._answers: dict[str, str] = {}
        self._ids = itertools.count(1)

    def fail_next(self, code: int, n: int = 1, retry_after: float | None = None) -> None:
        with self._state:
            self._failures.extend([(code, retry_after)] * n)

    @property
    def deliveries(self) -> list[Request]:
        with self._state:
            return list(self._deliveries)

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply(405, {"error": "method not allowed"})
        with self._state:
            failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                code, retry_after = failure
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                return Reply(code, {"error": f"failing on purpose ({code})"}, headers)
            if self.secret is not None:
                expected = "sha256=" + hmac.new(self.secret.encode(), request.body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(request.header("X-Signature") or "", expected):
                    return Reply(401, {"error": "bad signature"})
            key = request.header("Idempotency-Key")
            if self.dedupe and key is not None and key in self._answers:
                return self._reply(self._answers[key])
            ident = str(next(self._ids))
            self._deliveries.append(request)
            if key is not None:
                self._answers[key] = ident
            return self._reply(ident)

    def _reply(self, ident: str) -> Reply:
        if self.status == 204:
            return Reply(204)
        return Reply(self.status, {"id": ident})


@pytest.fixture
def webhook_server() -> Iterator[FakeWebhook]:
    """A running `FakeWebhook` (200, no dedupe, no secret), closed after."""
    with FakeWebhook() as server:
        yield server
