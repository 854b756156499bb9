"""Slots that urgent work takes first: the poll limits (per host, in all) as a queue with two
lanes.

`asyncio.Semaphore` serves its waiters in turn, which is what routine polls need: a feed that
has just had its turn queues behind the others of its host, so one slow feed of a comune's
server cannot starve the rest. An urgent poll (a feed marked `urgent`, an official alert
source) must not wait behind them: `Slots` hands a freed slot to the oldest urgent waiter
first, then to the oldest routine one. Nothing ever takes a slot from a poll holding one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

__all__ = ["Slots"]


class Slots:
    """At most `limit` holders at once; waiters served urgent first, each lane in arrival order."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a limit of at least one slot")
        self.limit = limit
        self._held = 0
        self._lanes: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())

    @property
    def held(self) -> int:
        return self._held

    def waiting(self, *, urgent: bool | None = None) -> int:
        """How many wait: the urgent ones, the routine ones, or (None) all."""
        urgent_lane, routine_lane = self._lanes
        if urgent is None:
            return len(urgent_lane) + len(routine_lane)
        return len(urgent_lane if urgent else routine_lane)

    @contextlib.asynccontextmanager
    async def take(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold a slot for the block: at once when one is free and nobody waits, else in turn."""
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if self._held < self.limit and not self.waiting():
            self._held += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane = self._lanes[0 if urgent else 1]
        lane.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed a slot just as it was cancelled: pass the slot on.
                self._release()
            else:
                with contextlib.suppress(ValueError):  # already passed over by a release
                    lane.remove(waiter)
            raise

    def _release(self) -> None:
        # A freed slot goes straight to the next waiter (it stays counted as held).
        for lane in self._lanes:
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held -= 1
