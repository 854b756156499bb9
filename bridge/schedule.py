"""The poll schedule: jobs that fire at fixed phases of their interval, on the monotonic clock.

A job is a key (interval, phase) in seconds. It fires at epoch + phase, then every interval
after that, where the epoch is the schedule's creation on the monotonic clock: a step of the
wall clock (NTP, a VM restore) neither stops nor hurries a poll. A job that could not fire in
time (the event loop was busy) fires once, late, and then keeps its phase: late runs coalesce,
they are never skipped nor repeated.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable

from bridge.clock import Clock

JobKey = tuple[float, int]  # (interval, phase), seconds


def next_run(start: float, interval: float, moment: float) -> float:
    """The first of `start`, `start` + `interval`, `start` + 2·`interval`, … strictly after
    `moment`."""
    if moment < start:
        return start
    return start + (math.floor((moment - start) / interval) + 1) * interval


class PollSchedule:
    """Calls `fire(key)` for each job at its times; `run()` is the task that does it."""

    def __init__(self, clock: Clock, fire: Callable[[JobKey], None]) -> None:
        self._clock = clock
        self._fire = fire
        self.epoch = clock.monotonic()
        self._due: dict[JobKey, float] = {}
        self._changed = asyncio.Event()

    def get_jobs(self) -> list[JobKey]:
        """The jobs scheduled, in no particular order."""
        return list(self._due)

    def due(self, key: JobKey) -> float | None:
        """When `key` fires next, on the monotonic clock; None if it is not scheduled."""
        return self._due.get(key)

    def set_jobs(self, keys: Iterable[JobKey]) -> None:
        """Schedule exactly `keys`: new ones from their next time, gone ones dropped, the others
        kept as they are (a reload does not move a feed's polls)."""
        wanted = set(keys)
        now = self._clock.monotonic()
        for key in [k for k in self._due if k not in wanted]:
            del self._due[key]
        for key in wanted - self._due.keys():
            interval, phase = key
            self._due[key] = next_run(self.epoch + phase, interval, now)
        self._changed.set()

    async def run(self) -> None:
        """Fire jobs as they fall due, until cancelled."""
        while True:
            self._changed.clear()
            if not self._due:
                await self._clock.sleep(None, self._changed)
                continue
            first = min(self._due.values())
            if await self._clock.sleep(first - self._clock.monotonic(), self._changed):
                continue  # the jobs changed: look again
            now = self._clock.monotonic()
            for key, due in sorted(self._due.items(), key=lambda job: job[1]):
                if due <= now:
                    interval, phase = key
                    self._due[key] = next_run(self.epoch + phase, interval, now)
                    self._fire(key)
