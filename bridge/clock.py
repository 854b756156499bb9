"""The daemon's two clocks, and the watch that notices when the wall clock is stepped.

The wall clock says what time it is for people and for the rules of the day (quiet hours,
`max_per_day`, what `status` and the history show); it can be stepped, back or forward, by an
NTP correction, a VM restore or an operator. The monotonic clock never steps: the daemon's
own waits (until the next retry, a pause between first polls) are measured on it. Deadlines
kept as wall times, those in the state (a delivery's next attempt, a failing feed's next try:
they must survive a restart) and the next runs of the poll jobs (apscheduler keeps wall
times), are moved by a step of the wall clock, which `JumpWatch` notices.

`Clock` is the system's pair; tests pass a subclass they drive (tests/clocks.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

# A smaller disagreement between the two clocks is NTP slewing or the noise of two readings,
# not a step: a deadline off by that much does no harm.
JUMP_THRESHOLD = 2.0  # seconds


class Clock:
    """The system's wall clock (UTC) and monotonic clock, and waiting on the latter."""

    def wall(self) -> datetime:
        """The wall time now, timezone-aware in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never steps (the event loop's own clock)."""
        return time.monotonic()

    async def sleep(self, seconds: float | None, wake: asyncio.Event | None = None) -> bool:
        """Wait `seconds` on the monotonic clock (None: until woken), or until `wake` is set.
        Return True when `wake` ended the wait."""
        if wake is None:
            if seconds is None:
                raise ValueError("a wait without a timeout needs an event to end it")
            await asyncio.sleep(max(seconds, 0.0))
            return False
        try:
            await asyncio.wait_for(wake.wait(), None if seconds is None else max(seconds, 0.0))
        except TimeoutError:
            return False
        return True


class JumpWatch:
    """Notices steps of the wall clock by comparing it with the monotonic one.

    Between two readings both clocks advance alike unless the wall clock was stepped; the
    difference is the step. Each reading is compared with the previous one only, so slow NTP
    slewing never adds up to a false step.
    """

    def __init__(self, clock: Clock, *, threshold: float = JUMP_THRESHOLD) -> None:
        self._clock = clock
        self._threshold = threshold
        self._wall = clock.wall()
        self._monotonic = clock.monotonic()

    def read(self) -> tuple[datetime, float]:
        """The wall time now, and by how many seconds the wall clock was stepped since the
        previous reading (negative: back; 0.0 when under the threshold)."""
        wall = self._clock.wall()
        monotonic = self._clock.monotonic()
        step = (wall - self._wall).total_seconds() - (monotonic - self._monotonic)
        self._wall, self._monotonic = wall, monotonic
        return wall, step if abs(step) >= self._threshold else 0.0
