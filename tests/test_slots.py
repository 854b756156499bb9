"""The poll slots' order: urgent waiters first, each lane in arrival order, never more holders
than the limit, and a waiter cancelled while it waits (or just as it is served) loses no slot."""

from __future__ import annotations

import asyncio

import pytest

from bridge.slots import Slots


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _served_order(arrivals: list[tuple[str, bool]], limit: int) -> tuple[list[str], int]:
    """Hold every slot, queue `arrivals` (name, urgent) in that order, then free the slots one
    by one: the order the waiters were served in, and the most holders seen at once."""
    slots = Slots(limit)
    order: list[str] = []
    most = 0
    gates = [asyncio.Event() for _ in range(limit)]

    async def blocker(gate: asyncio.Event) -> None:
        async with slots.take():
            await gate.wait()

    async def waiter(name: str, urgent: bool) -> None:
        nonlocal most
        async with slots.take(urgent=urgent):
            order.append(name)
            most = max(most, slots.held)
            await asyncio.sleep(0)

    blockers = [asyncio.ensure_future(blocker(gate)) for gate in gates]
    await _settle()
    assert slots.held == limit
    waiters = []
    for name, urgent in arrivals:
        waiters.append(asyncio.ensure_future(waiter(name, urgent)))
        await _settle()
    assert order == [] and slots.waiting() == len(arrivals)
    for gate in gates:
        gate.set()
    await asyncio.gather(*blockers, *waiters)
    assert slots.held == 0 and slots.waiting() == 0
    return order, most


@pytest.mark.parametrize("limit", [1, 2])
def test_urgent_waiters_are_served_first_and_each_lane_in_arrival_order(limit: int) -> None:
    arrivals = [("slow-1", False), ("slow-2", False), ("allerta", True), ("eventi", False), ("dpc", True)]
    order, most = asyncio.run(_served_order(arrivals, limit))
    assert order == ["allerta", "dpc", "slow-1", "slow-2", "eventi"]
    assert most <= limit


def test_a_free_slot_is_taken_at_once_and_never_more_than_the_limit() -> None:
    async def scenario() -> tuple[int, int]:
        slots = Slots(2)
        most = 0

        async def poll() -> None:
            nonlocal most
            async with slots.take():
                most = max(most, slots.held)
                await asyncio.sleep(0)

        await asyncio.gather(*(poll() for _ in range(10)))
        return most, slots.held

    assert asyncio.run(scenario()) == (2, 0)


def test_a_waiter_cancelled_while_waiting_leaves_the_queue_and_loses_no_slot() -> None:
    async def scenario() -> list[str]:
        slots = Slots(1)
        served: list[str] = []
        gate = asyncio.Event()

        async def holder() -> None:
            async with slots.take():
                await gate.wait()

        async def waiter(name: str) -> None:
            async with slots.take(urgent=name == "urgent"):
                served.append(name)

        first = asyncio.ensure_future(holder())
        await _settle()
        gone = asyncio.ensure_future(waiter("urgent"))
        kept = asyncio.ensure_future(waiter("routine"))
        await _settle()
        gone.cancel()
        await _settle()
        assert slots.waiting() == 1
        gate.set()
        await asyncio.gather(first, kept)
        assert gone.cancelled()
        assert slots.held == 0
        return served

    assert asyncio.run(scenario()) == ["routine"]


def test_a_waiter_cancelled_just_as_it_is_served_passes_the_slot_on() -> None:
    async def scenario() -> list[str]:
        slots = Slots(1)
        served: list[str] = []
        release = asyncio.Event()

        async def holder() -> None:
            async with slots.take():
                await release.wait()

        async def waiter(name: str) -> None:
            async with slots.take():
                served.append(name)

        first = asyncio.ensure_future(holder())
        await _settle()
        unlucky = asyncio.ensure_future(waiter("unlucky"))
        after = asyncio.ensure_future(waiter("after"))
        await _settle()
        release.set()
        await asyncio.sleep(0)  # the holder leaves: the slot is handed to "unlucky"...
        assert slots.waiting() == 1 and slots.held == 1
        unlucky.cancel()  # ...which is cancelled before it runs
        await asyncio.gather(first, after)
        assert slots.held == 0 and slots.waiting() == 0
        return served

    assert asyncio.run(scenario()) == ["after"]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        Slots(0)
