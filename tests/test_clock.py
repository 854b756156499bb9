"""Steps of the wall clock (NTP, a VM restore): polls and retries keep their monotonic rhythm.

The pure parts (the jump watch, the phase arithmetic, the poll schedule) are driven by a
`FakeClock`; so is the whole daemon in-process, against the loopback feed server and the fake
WAHA. The test moves the clocks to exact moments and then waits, bounded, for what must have
happened by then: a poll or a post that the daemon fails to make is a timeout, never a race.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from clocks import FakeClock
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha

from bridge.clock import JUMP_THRESHOLD, JumpWatch
from bridge.config import load_config
from bridge.daemon import CLOCK_CHECK_EVERY, Bridge, _phase
from bridge.outbox import FIRST_RETRY
from bridge.schedule import PollSchedule, next_run
from bridge.store import Store

NOON = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)  # 12:00 in Rome
START = 1000.0  # the fake monotonic clock at the daemon's start
INTERVAL = 60.0
HOUR = 3600.0
API_KEY = "clock-key-1234"
CHAT = "120363000000000012@newsletter"


# -- the pure parts ---------------------------------------------------------------------------


def test_the_jump_watch_reports_steps_of_the_wall_clock_and_nothing_else() -> None:
    clock = FakeClock(NOON)
    watch = JumpWatch(clock)
    clock.advance(30)
    assert watch.read() == (NOON + timedelta(seconds=30), 0.0)  # both clocks moved: no step
    clock.step_wall(-HOUR)
    assert watch.read()[1] == -HOUR
    assert watch.read()[1] == 0.0  # reported once
    clock.advance(5)
    clock.step_wall(HOUR)
    assert watch.read()[1] == HOUR
    for _ in range(100):  # slewing: a little at a time never adds up to a step
        clock.advance(1)
        clock.step_wall(JUMP_THRESHOLD / 4)
        assert watch.read()[1] == 0.0


@pytest.mark.parametrize(
    ("start", "interval", "moment", "expected"),
    [
        (10.0, 60.0, 0.0, 10.0),  # not started yet: the start itself
        (10.0, 60.0, 10.0, 70.0),  # strictly after
        (10.0, 60.0, 69.9, 70.0),
        (10.0, 60.0, 70.0, 130.0),
        (10.0, 60.0, 10.0 + 600.5, 670.0),  # ten intervals late: the next one, not the missed ones
    ],
)
def test_next_run_keeps_the_phase(start: float, interval: float, moment: float, expected: float) -> None:
    assert next_run(start, interval, moment) == expected


def test_the_poll_schedule_runs_on_the_monotonic_clock_and_coalesces_late_runs() -> None:
    async def spin() -> None:  # let every woken task run (the fake clock standing still)
        for _ in range(20):
            await asyncio.sleep(0)

    async def scenario() -> list[tuple[float, tuple[float, int]]]:
        clock = FakeClock(NOON, START)
        fired: list[tuple[float, tuple[float, int]]] = []
        schedule = PollSchedule(clock, lambda key: fired.append((clock.monotonic() - START, key)))
        schedule.set_jobs([(60.0, 5), (60.0, 20)])
        running = asyncio.ensure_future(schedule.run())
        for moment in (5, 20, 65):
            await spin()
            clock.advance(START + moment - clock.monotonic())
        await spin()
        clock.step_wall(-HOUR)  # ignored: the schedule never reads the wall clock
        await spin()
        clock.advance(80 - 65)
        await spin()
        clock.advance(600)  # the loop was stuck for ten intervals: each job runs once, late
        await spin()
        schedule.set_jobs([(60.0, 20)])  # a reload removes a job
        await spin()
        clock.advance(next_run(START + 20, 60.0, clock.monotonic()) - clock.monotonic())
        await spin()
        running.cancel()
        return fired

    fired = asyncio.run(scenario())
    assert fired == [(5.0, (60.0, 5)), (20.0, (60.0, 20)), (65.0, (60.0, 5)), (80.0, (60.0, 20)),
                     (680.0, (60.0, 5)), (680.0, (60.0, 20)), (740.0, (60.0, 20))]


# -- the daemon, in-process, with its clocks driven --------------------------------------------


def news(n: int) -> dict[str, Any]:
    return {
        "title": f"Avviso numero {n}: potatura degli alberi in viale Europa",
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": f"Da lunedì in viale Europa si potano gli alberi, lotto numero {n}.",
        "pubDate": NOON - timedelta(hours=5) + timedelta(minutes=n),
    }


async def settle(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Let the event loop run (the fake clock standing still) until `condition` holds, for at
    most `timeout` real seconds; return its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


async def quiet_for_a_while() -> None:
    """Let the event loop run a little: long enough for a poll or a post that should not
    happen to show up, when nothing else is awaited."""
    await asyncio.sleep(0.3)


class Daemon:
    """One feed (interval 60 s) to a fake WAHA, run in-process on a fake clock."""

    def __init__(self, tmp: Path, feeds: FeedServer, waha: FakeWaha, *, alerts: str = "") -> None:
        self.feeds = feeds
        self.waha = waha
        waha.api_key = API_KEY
        config = tmp / "config.toml"
        config.write_text(
            f"""
[bridge]
state_dir = "state"

[defaults]
interval = "{INTERVAL:g}s"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"

[alerts]
{alerts}

[[feeds]]
id = "notizie"
url = "{feeds.url('/feed.xml')}"

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""",
            encoding="utf-8",
        )
        self.config = load_config(config, {**os.environ, "WAHA_API_KEY": API_KEY})
        self.store = Store.open(self.config.bridge.state_dir)
        self.clock = FakeClock(NOON, START)
        self.items = [news(1)]
        feeds.set_feed("/feed.xml", rss(self.items))
        interval, self.phase = _phase(self.config.feeds[0])
        assert interval == INTERVAL

    def publish(self, n: int) -> None:
        self.items.insert(0, news(n))
        self.feeds.set_feed("/feed.xml", rss(self.items))

    def polls(self) -> int:
        return len(self.feeds.requests("/feed.xml"))

    def posts(self) -> int:
        return len(self.waha.posts)

    def attempts(self) -> int:
        return sum(d.attempts for d in self.store.deliveries())

    def next_poll(self) -> float:
        """The next scheduled poll after now, on the monotonic clock."""
        return next_run(START + self.phase, INTERVAL, self.clock.monotonic())

    def advance_to(self, moment: float) -> None:
        self.clock.advance(moment - self.clock.monotonic())

    def polled_now(self) -> bool:
        """A poll started at the current (standing) fake time is complete."""
        return self.store.feed_state("notizie").last_poll == self.clock.wall()

    async def poll_at(self, moment: float) -> None:
        """Move the clocks to `moment`, when a poll is due, and let that poll complete."""
        polls = self.polls()
        self.advance_to(moment)
        assert await settle(lambda: self.polls() == polls + 1 and self.polled_now()), "no poll when it was due"

    async def start(self) -> asyncio.Future[int]:
        """Start the daemon and let its first poll (spread over a few ms) happen."""
        running = asyncio.ensure_future(Bridge(self.config, self.store, clock=self.clock).run())
        assert await settle(lambda: (self.clock.next_deadline() or math.inf) < START + 1), "the daemon did not start"
        self.clock.advance(0.01)
        assert await settle(lambda: self.polls() == 1 and self.polled_now()), "no first poll"
        if self.phase:  # the first scheduled poll: at the phase
            await self.poll_at(START + self.phase)
        return running

    async def fail_a_send(self) -> float:
        """Publish an item, have its first send fail (503) at the next scheduled poll; return
        when that was on the monotonic clock."""
        self.publish(2)
        self.waha.fail_next(1, 503)
        await self.poll_at(self.next_poll())
        failed_at = self.clock.monotonic()
        assert await settle(lambda: self.attempts() == 1), "the send was not tried"
        assert self.posts() == 0
        return failed_at

    @staticmethod
    async def stop(running: asyncio.Future[int]) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(running, 30) == 0


@pytest.fixture
def daemon(tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Daemon]:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    running = Daemon(tmp_path, feed_server, waha_server)
    yield running
    running.store.close()


def jumps(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["event"] for entry in logs if str(entry.get("event", "")).startswith("wall clock jumped")]


def test_a_step_back_of_an_hour_delays_neither_the_retry_nor_the_next_poll(daemon: Daemon) -> None:
    async def scenario() -> None:
        running = await daemon.start()
        failed_at = await daemon.fail_a_send()
        daemon.clock.step_wall(-HOUR)

        daemon.advance_to(failed_at + FIRST_RETRY.total_seconds() - 1)
        await quiet_for_a_while()
        assert daemon.posts() == 0, "retried before its delay"
        pending = daemon.store.deliveries()
        assert [d.next_attempt for d in pending] == [daemon.clock.wall() + timedelta(seconds=1)], \
            "the retry's deadline was not moved with the wall clock"
        daemon.advance_to(failed_at + FIRST_RETRY.total_seconds())
        assert await settle(lambda: daemon.posts() == 1), "no retry within its delay after the step back"

        polls = daemon.polls()
        next_poll = daemon.next_poll()
        assert next_poll - failed_at <= INTERVAL
        daemon.advance_to(next_poll - 1)
        await quiet_for_a_while()
        assert daemon.polls() == polls
        await daemon.poll_at(next_poll)  # within its interval after the step back
        daemon.publish(3)
        await daemon.poll_at(daemon.next_poll())
        assert await settle(lambda: daemon.posts() == 2), "no post of a new item after the step back"
        await Daemon.stop(running)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    assert jumps(logs) == ["wall clock jumped back by 3600 s; schedule rebuilt"]
    assert [p.text.splitlines()[0] for p in daemon.waha.posts] == [
        "*Avviso numero 2: potatura degli alberi in viale Europa*",
        "*Avviso numero 3: potatura degli alberi in viale Europa*",
    ]


def test_a_step_forward_of_an_hour_fires_no_retry_early_and_no_extra_poll(daemon: Daemon) -> None:
    async def scenario() -> None:
        running = await daemon.start()
        failed_at = await daemon.fail_a_send()
        polls = daemon.polls()
        daemon.clock.step_wall(HOUR)
        daemon.clock.advance(CLOCK_CHECK_EVERY)  # the step is noticed
        await quiet_for_a_while()
        assert (daemon.posts(), daemon.polls()) == (0, polls), "the step forward made a retry or a poll due"
        daemon.advance_to(failed_at + FIRST_RETRY.total_seconds() - 1)
        await quiet_for_a_while()
        assert daemon.posts() == 0, "retried before its delay"
        daemon.advance_to(failed_at + FIRST_RETRY.total_seconds())
        assert await settle(lambda: daemon.posts() == 1), "no retry within its delay after the step forward"
        assert daemon.polls() == polls
        next_poll = daemon.next_poll()
        daemon.advance_to(next_poll - 1)
        await quiet_for_a_while()
        assert daemon.polls() == polls, "polled off its phase"
        await daemon.poll_at(next_poll)
        await quiet_for_a_while()
        assert daemon.polls() == polls + 1, "one interval, more than one poll"
        await Daemon.stop(running)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    assert jumps(logs) == ["wall clock jumped forward by 3600 s; schedule rebuilt"]


def test_a_step_back_does_not_stretch_a_failing_feeds_backoff(daemon: Daemon) -> None:
    """A failing feed rests one interval after its first failure: the step back must not add
    the hour to that rest (its retry_at is a wall time kept in the state)."""

    async def scenario() -> None:
        running = await daemon.start()
        daemon.feeds.set_fault("/feed.xml", "503")
        await daemon.poll_at(daemon.next_poll())
        state = daemon.store.feed_state("notizie")
        assert state.failures == 1 and state.retry_at == daemon.clock.wall() + timedelta(seconds=INTERVAL)
        daemon.clock.step_wall(-HOUR)
        daemon.feeds.set_fault("/feed.xml", None)
        await daemon.poll_at(daemon.next_poll())  # one interval later: the rest is over
        assert daemon.store.feed_state("notizie").failures == 0, "the feed was not tried again after its backoff"
        await Daemon.stop(running)

    asyncio.run(scenario())


def test_quiet_hours_follow_the_wall_clock_when_it_steps(
    tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quiet hours are a rule of the wall clock: a step forward past their end lets the held
    alert out within a clock check, without waiting the hour the step skipped."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    daemon = Daemon(tmp_path, feed_server, waha_server, alerts='quiet_hours = "11:30-13:30"')  # 12:30-14:30 Rome

    async def scenario() -> None:
        running = await daemon.start()
        daemon.publish(2)
        await daemon.poll_at(daemon.next_poll())
        assert len(daemon.store.deliveries()) == 1
        daemon.clock.advance(30 * 60)  # 12:30 Rome: quiet
        await quiet_for_a_while()
        assert daemon.posts() == 0
        daemon.clock.step_wall(2 * HOUR)  # 14:30 on the new wall clock: quiet hours are over
        daemon.clock.advance(CLOCK_CHECK_EVERY)
        assert await settle(lambda: daemon.posts() == 1), "the held alert waited for the old end of quiet hours"
        await Daemon.stop(running)

    try:
        asyncio.run(scenario())
    finally:
        daemon.store.close()
