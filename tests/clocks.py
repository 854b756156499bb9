"""A clock the test drives, for the daemon's time logic (see bridge/clock.py).

    clock = FakeClock(datetime(2026, 11, 20, 11, 0, tzinfo=UTC))
    bridge = Bridge(config, store, clock=clock)
    clock.advance(30)          # both clocks move 30 s: sleepers due by then wake up
    clock.step_wall(-3600)     # the wall clock alone steps back an hour, as NTP does

Only waits that go through the clock are driven by it; network I/O runs in real time, and so
does apscheduler, which reads the system clock (see tests/test_clock.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bridge.clock import Clock


class FakeClock(Clock):
    def __init__(self, wall: datetime, monotonic: float = 1000.0) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def wall(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float | None, wake: asyncio.Event | None = None) -> bool:
        if wake is not None and wake.is_set():
            await asyncio.sleep(0)
            return True
        if seconds is not None and seconds <= 0:
            await asyncio.sleep(0)
            return wake is not None and wake.is_set()
        waits: list[asyncio.Future[object]] = []
        timer: asyncio.Future[None] | None = None
        if seconds is not None:
            timer = asyncio.get_running_loop().create_future()
            entry = (self._monotonic + seconds, timer)
            self._sleepers.append(entry)
            waits.append(timer)  # type: ignore[arg-type]
        woken: asyncio.Future[object] | None = None
        if wake is not None:
            woken = asyncio.ensure_future(wake.wait())
            waits.append(woken)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if woken is not None:
                woken.cancel()
            if timer is not None:
                self._sleepers.remove(entry)
        return wake is not None and wake.is_set()

    def next_deadline(self) -> float | None:
        """The earliest monotonic time a sleeper waits for, if any."""
        return min((due for due, _ in self._sleepers), default=None)

    def advance(self, seconds: float) -> None:
        """Move both clocks ahead by `seconds` and wake the sleepers due by then."""
        self._monotonic += seconds
        self._wall += timedelta(seconds=seconds)
        for due, future in self._sleepers:
            if due <= self._monotonic and not future.done():
                future.set_result(None)

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone (NTP, a VM restore); the monotonic clock does not move."""
        self._wall += timedelta(seconds=seconds)
