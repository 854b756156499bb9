"""Console logins: sessions that expire, and login attempts throttled per account and per
address. In memory only (a restart of the daemon logs everyone out); pure over a clock
(`now`, monotonic seconds) that tests drive.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# After this many failed logins within FAILURE_WINDOW, for one account or from one address,
# logins are refused until the oldest of them is FAILURE_WINDOW old: a password cannot be
# guessed at more than a few tries an hour, and one address cannot lock out every account
# for longer than that.
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60.0


@dataclass(slots=True)
class Session:
    """One login. `form_token` is put in every form the session's pages hold and must come back
    with each form posted (a page of another site cannot read it); `notice` is the one line the
    next page shows after an action (then forgotten)."""

    token: str  # the cookie's value: 256 random bits
    name: str
    role: str
    last_use: float
    form_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    notice: str | None = None


class Sessions:
    """Open sessions by token; each ends `timeout` seconds after its last use."""

    def __init__(self, timeout: float, now: Callable[[], float]) -> None:
        self.timeout = timeout
        self._now = now
        self._open: dict[str, Session] = {}

    def open(self, name: str, role: str) -> Session:
        self._expire()
        session = Session(secrets.token_urlsafe(32), name, role, self._now())
        self._open[session.token] = session
        return session

    def find(self, token: str | None) -> Session | None:
        """The live session of `token`, its use recorded; None for an unknown or expired one."""
        if not token:
            return None
        session = self._open.get(token)
        if session is None:
            return None
        now = self._now()
        if now - session.last_use > self.timeout:
            del self._open[token]
            return None
        session.last_use = now
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._open.pop(token, None)

    def close_account(self, name: str) -> int:
        """End every session of the account `name` (its password changed, it was removed);
        return how many there were."""
        tokens = [t for t, s in self._open.items() if s.name == name]
        for token in tokens:
            del self._open[token]
        return len(tokens)

    def _expire(self) -> None:
        now = self._now()
        for token in [t for t, s in self._open.items() if now - s.last_use > self.timeout]:
            del self._open[token]

    def __len__(self) -> int:
        return len(self._open)


class LoginThrottle:
    """Failed logins per account and per address, within FAILURE_WINDOW."""

    def __init__(self, now: Callable[[], float], *, max_failures: int = MAX_FAILURES,
                 window: float = FAILURE_WINDOW) -> None:
        self._now = now
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, name: str, address: str) -> float | None:
        """Seconds until a login for `name` from `address` may be tried, None if it may now."""
        now = self._now()
        waits = []
        for key in (f"account:{name}", f"address:{address}"):
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                waits.append(times[0] + self.window - now)
        return max(waits) if waits else None

    def failed(self, name: str, address: str) -> None:
        now = self._now()
        for key in (f"account:{name}", f"address:{address}"):
            self._recent(key, now).append(now)

    def succeeded(self, name: str) -> None:
        """A correct password clears the account's count (not the address's)."""
        self._failures.pop(f"account:{name}", None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(self._failures) > 10_000:  # an address scan must not grow this without bound
            for stale in [k for k, v in self._failures.items() if not v]:
                del self._failures[stale]
        return times
