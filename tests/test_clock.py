"""Steps of the wall clock (NTP, a VM restore): polls and retries keep their monotonic rhythm.

The jump watch is driven by a `FakeClock`; so is the whole daemon in-process, against the
loopback feed server and the fake WAHA. The test moves the clocks to exact moments and then
waits, bounded, for what must have happened by then: a poll or a post that the daemon fails to
make is a timeout, never a race.

apscheduler 3 reads the system clock itself and cannot be driven by a fake one. The daemon
here runs on a wall clock decades ahead of the system's: its poll jobs, phased from that wall
clock, never come due by the system clock during a test, and the test plays the scheduler's
part, running a job at its run time on the fake clock and setting its next one from its own
trigger, as apscheduler does. The real scheduler on the real clocks is tested against the real
daemon under libfaketime (tests/test_clock_faketime.py).
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
from bridge.daemon import CLOCK_CHECK_EVERY, FIRST_POLLS_PER_SECOND, Bridge, _phase
from bridge.outbox import FIRST_RETRY
from bridge.store import Store

# 12:00 in Rome, decades after any system clock a test runs on (see above).
NOON = datetime(2099, 11, 20, 11, 0, tzinfo=UTC)
START = 1000.0  # the fake monotonic clock at the daemon's start
INTERVAL = 300.0
HOUR = 3600.0
API_KEY = "clock-key-1234"
CHAT = "120363000000000012@newsletter"


# -- the jump watch ---------------------------------------------------------------------------


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


def feed_table(feed_id: str, url: str, interval: float) -> str:
    return f"""
[[feeds]]
id = "{feed_id}"
url = "{url}"
interval = "{interval:g}s"
"""


class Daemon:
    """Feeds (the first one, "notizie", every 300 s, is the one the tests publish on) to a
    fake WAHA, run in-process on a fake clock. `backfill = 1`: the first poll at start queues
    the newest item, so a test has a delivery without waiting for a scheduled poll."""

    def __init__(self, tmp: Path, feeds: FeedServer, waha: FakeWaha, *, alerts: str = "",
                 more_feeds: tuple[tuple[str, float], ...] = ()) -> None:
        self.feeds = feeds
        self.waha = waha
        waha.api_key = API_KEY
        self.path = tmp / "config.toml"
        self.write_config([("notizie", INTERVAL), *more_feeds], alerts)
        self.config = load_config(self.path, {**os.environ, "WAHA_API_KEY": API_KEY})
        self.store = Store.open(self.config.bridge.state_dir)
        self.clock = FakeClock(NOON, START)
        self.bridge = Bridge(self.config, self.store, clock=self.clock)
        self.items = [news(1)]
        feeds.set_feed("/feed.xml", rss(self.items))

    def write_config(self, feeds: list[tuple[str, float]], alerts: str = "") -> None:
        tables = "".join(feed_table(feed_id, self.feeds.url("/feed.xml" if feed_id == "notizie" else f"/{feed_id}.xml"),
                                    interval) for feed_id, interval in feeds)
        self.path.write_text(
            f"""
[bridge]
state_dir = "state"

[defaults]
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"
backfill = 1

[alerts]
{alerts}
{tables}
[channels.whatsapp]
type = "waha"
url = "{self.waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""",
            encoding="utf-8",
        )

    def publish(self, n: int) -> None:
        self.items.insert(0, news(n))
        self.feeds.set_feed("/feed.xml", rss(self.items))

    def polls(self) -> int:
        return len(self.feeds.requests("/feed.xml"))

    def posts(self) -> int:
        return len(self.waha.posts)

    def attempts(self) -> int:
        return sum(d.attempts for d in self.store.deliveries())

    def jobs(self) -> dict[str, Any]:
        """The scheduler's jobs by id."""
        assert self.bridge._scheduler is not None
        return {job.id: job for job in self.bridge._scheduler.get_jobs()}

    def job(self) -> Any:
        """The poll job of "notizie" (the only one unless the test added feeds)."""
        return self.jobs()[f"poll every {INTERVAL:g}s at +{_phase(self.config.feeds[0])[1]}s"]

    def next_runs(self) -> dict[str, datetime]:
        return {job_id: job.next_run_time for job_id, job in self.jobs().items()}

    def wait_for_job(self, job: Any) -> float:
        """Seconds from now until `job` runs: apscheduler waits that long on the event loop's
        (monotonic) clock."""
        wait: float = (job.next_run_time - self.clock.wall()).total_seconds()
        return wait

    def advance_to(self, moment: float) -> None:
        self.clock.advance(moment - self.clock.monotonic())

    def idle(self) -> bool:
        return not self.bridge._polls and not self.bridge._first_polls

    async def run_job(self) -> None:
        """Do the scheduler's part: have the real scheduler look at its jobs (the daemon
        checks the clock for a step first), move the clocks to the "notizie" job's next run,
        run the job, let its poll end, and set its next run from its trigger (previous +
        interval)."""
        assert self.bridge._scheduler is not None
        self.bridge._scheduler.wakeup()
        await asyncio.sleep(0)  # the wakeup was called soon: it has run when this returns
        job = self.job()
        wait = self.wait_for_job(job)
        assert 0 <= wait <= INTERVAL, f"the next poll is {wait} s away"
        self.clock.advance(wait)
        await job.func(*job.args, **job.kwargs)
        assert await settle(self.idle), "the poll did not end"
        job.modify(next_run_time=job.trigger.get_next_fire_time(job.next_run_time, self.clock.wall()))

    async def start(self, *, first_poll: bool = True) -> asyncio.Future[int]:
        """Start the daemon; with `first_poll`, let its first poll (spread over a few ms) end."""
        running = asyncio.ensure_future(self.bridge.run())
        # Started: the scheduler runs, and the first polls wait on the fake clock.
        assert await settle(lambda: self.bridge._scheduler is not None and self.bridge._scheduler.running
                            and (self.clock.next_deadline() or math.inf) < START + 1), "the daemon did not start"
        if first_poll:
            self.clock.advance(0.01)
            assert await settle(lambda: self.polls() == 1 and self.idle()), "no first poll"
        return running

    async def stop(self, running: asyncio.Future[int]) -> None:
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


# -- the poll jobs ----------------------------------------------------------------------------


@pytest.mark.parametrize("step", [-HOUR, HOUR])
def test_a_step_moves_every_poll_job_and_the_epoch_by_as_much(
    tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch, step: float
) -> None:
    """Noticed at the scheduler's own next look at its jobs, before it compares them with the
    new time: every job runs after the same wait as before the step (back: not an hour late;
    forward: not at once), the first-poll plan is the same, and a job added by a reload after
    the step keeps the phase of its feed."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WAHA_API_KEY", API_KEY)  # for the reload
    daemon = Daemon(tmp_path, feed_server, waha_server,
                    more_feeds=(("avvisi", 60.0), ("eventi", 3600.0), ("albo", 420.0)))

    async def scenario() -> None:
        running = await daemon.start(first_poll=False)
        bridge, scheduler = daemon.bridge, daemon.bridge._scheduler
        assert scheduler is not None
        before = daemon.next_runs()
        waits = {job_id: daemon.wait_for_job(job) for job_id, job in daemon.jobs().items()}
        plan = bridge._first_poll_plan(daemon.config.feeds)
        epoch = bridge._epoch
        assert len(before) == 4 and len(plan) == 4
        spread = len(daemon.config.feeds) / FIRST_POLLS_PER_SECOND
        by_id = {feed.id: feed for feed in daemon.config.feeds}
        for delay, feed_id in plan:  # the plan follows the jobs: a feed's place is its job's
            interval, phase = _phase(by_id[feed_id])
            assert delay == pytest.approx(waits[f"poll every {interval:g}s at +{phase}s"] / interval * spread)

        daemon.clock.step_wall(step)
        scheduler.wakeup()
        await asyncio.sleep(0)  # the wakeup was called soon: it has run when this returns
        assert daemon.next_runs() == {job_id: at + timedelta(seconds=step) for job_id, at in before.items()}, \
            "the jobs were not moved by the step before the scheduler's look"
        assert {job_id: daemon.wait_for_job(job) for job_id, job in daemon.jobs().items()} == waits
        assert bridge._first_poll_plan(daemon.config.feeds) == plan
        assert bridge._epoch == epoch + timedelta(seconds=step)

        daemon.write_config([("notizie", INTERVAL), ("avvisi", 60.0), ("eventi", 3600.0), ("albo", 420.0),
                             ("bandi", 420.0)])
        await bridge.reload()
        bandi = _phase(bridge.config.feed("bandi"))
        added = daemon.jobs()[f"poll every 420s at +{bandi[1]}s"]
        assert 0 < daemon.wait_for_job(added) <= 420
        since_epoch = (added.next_run_time - bridge._epoch).total_seconds()
        assert since_epoch % 420 == bandi[1], "the added job is off its feed's phase"
        await daemon.stop(running)

    with structlog.testing.capture_logs() as logs:
        try:
            asyncio.run(scenario())
        finally:
            daemon.store.close()
    direction = "back" if step < 0 else "forward"
    assert jumps(logs) == [f"wall clock jumped {direction} by 3600 s; schedule rebuilt"]


# -- retries and backoff: wall-clock deadlines kept in the state -------------------------------


def test_a_step_back_of_an_hour_delays_neither_the_retry_nor_the_next_poll(daemon: Daemon) -> None:
    async def scenario() -> None:
        daemon.waha.fail_next(1, 503)
        running = await daemon.start()
        assert await settle(lambda: daemon.attempts() == 1), "the send was not tried"
        failed_at = daemon.clock.monotonic()
        assert daemon.posts() == 0
        next_run = daemon.job().next_run_time
        daemon.clock.step_wall(-HOUR)

        daemon.advance_to(failed_at + FIRST_RETRY.total_seconds() - 1)
        await quiet_for_a_while()
        assert daemon.posts() == 0, "retried before its delay"
        pending = daemon.store.deliveries()
        assert [d.next_attempt for d in pending] == [daemon.clock.wall() + timedelta(seconds=1)], \
            "the retry's deadline was not moved with the wall clock"
        daemon.advance_to(failed_at + FIRST_RETRY.total_seconds())
        assert await settle(lambda: daemon.posts() == 1), "no retry within its delay after the step back"

        assert daemon.job().next_run_time == next_run - timedelta(hours=1), "the poll job was not moved"
        daemon.publish(2)
        await daemon.run_job()  # within its interval after the step back
        assert daemon.polls() == 2
        assert await settle(lambda: daemon.posts() == 2), "no post of a new item after the step back"
        await daemon.stop(running)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    assert jumps(logs) == ["wall clock jumped back by 3600 s; schedule rebuilt"]
    assert [p.text.splitlines()[0] for p in daemon.waha.posts] == [
        "*Avviso numero 1: potatura degli alberi in viale Europa*",
        "*Avviso numero 2: potatura degli alberi in viale Europa*",
    ]


def test_a_step_forward_of_an_hour_fires_no_retry_early_and_no_extra_poll(daemon: Daemon) -> None:
    async def scenario() -> None:
        daemon.waha.fail_next(1, 503)
        running = await daemon.start()
        assert await settle(lambda: daemon.attempts() == 1), "the send was not tried"
        failed_at = daemon.clock.monotonic()
        wait = daemon.wait_for_job(daemon.job())
        daemon.clock.step_wall(HOUR)
        daemon.clock.advance(CLOCK_CHECK_EVERY)  # the step is noticed
        await quiet_for_a_while()
        assert (daemon.posts(), daemon.polls()) == (0, 1), "the step forward made a retry or a poll due"
        assert daemon.wait_for_job(daemon.job()) == wait - CLOCK_CHECK_EVERY, "the poll job was not moved"
        daemon.advance_to(failed_at + FIRST_RETRY.total_seconds() - 1)
        await quiet_for_a_while()
        assert daemon.posts() == 0, "retried before its delay"
        daemon.advance_to(failed_at + FIRST_RETRY.total_seconds())
        assert await settle(lambda: daemon.posts() == 1), "no retry within its delay after the step forward"
        assert daemon.polls() == 1
        await daemon.run_job()
        assert daemon.polls() == 2
        await daemon.stop(running)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    assert jumps(logs) == ["wall clock jumped forward by 3600 s; schedule rebuilt"]


def test_a_step_back_does_not_stretch_a_failing_feeds_backoff(daemon: Daemon) -> None:
    """A failing feed rests one interval after its first failure: the step back must not add
    the hour to that rest (its retry_at is a wall time kept in the state)."""

    async def scenario() -> None:
        daemon.feeds.set_fault("/feed.xml", "503")
        running = await daemon.start()
        state = daemon.store.feed_state("notizie")
        assert state.failures == 1 and state.retry_at == daemon.clock.wall() + timedelta(seconds=INTERVAL)
        daemon.clock.step_wall(-HOUR)
        daemon.feeds.set_fault("/feed.xml", None)
        await daemon.run_job()  # the scheduled poll inside the rest: the feed rests
        assert daemon.polls() == 1 and daemon.store.feed_state("notizie").failures == 1
        await daemon.run_job()  # one interval later: the rest is over
        assert daemon.polls() == 2
        assert daemon.store.feed_state("notizie").failures == 0, "the feed was not tried again after its backoff"
        await daemon.stop(running)

    asyncio.run(scenario())


def test_quiet_hours_follow_the_wall_clock_when_it_steps(
    tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quiet hours are a rule of the wall clock: a step forward past their end lets the held
    alert out within a clock check, without waiting the hour the step skipped."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    daemon = Daemon(tmp_path, feed_server, waha_server, alerts='quiet_hours = "11:30-13:30"')  # Rome time

    async def scenario() -> None:
        running = await daemon.start()  # 12:00 in Rome: the first poll's item is held
        assert len(daemon.store.deliveries()) == 1
        daemon.clock.advance(30 * 60)  # 12:30
        await quiet_for_a_while()
        assert daemon.posts() == 0
        daemon.clock.step_wall(2 * HOUR)  # 14:30 on the new wall clock: quiet hours are over
        daemon.clock.advance(CLOCK_CHECK_EVERY)
        assert await settle(lambda: daemon.posts() == 1), "the held alert waited for the old end of quiet hours"
        await daemon.stop(running)

    try:
        asyncio.run(scenario())
    finally:
        daemon.store.close()
