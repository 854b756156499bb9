"""Correctness at scale (issue 7), not timing: the real daemon over 50 feeds on 5 loopback hosts.

The feed farm of `bench/scale_feeds.py` serves the feeds from 127.0.1.1-127.0.1.5 (ten feeds per
host, each answer 50-150 ms late, a few 0.3-0.5 s) and records how many requests each host had
in flight at once. After the first cycle (everything recorded, nothing posted) five feeds get a
new item each: every one of them must reach the fake WAHA exactly once, nothing else may be
posted, and no host may ever see more than two polls at once. The others start 400 feeds
in-process: all are first-polled, spread in phase order on a clock the test drives, and a disk
that stops answering holds the polls that wait to record, never the others' fetches. Order
and bounds only: the spread's figures in time are bench/scale.py's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clocks import FakeClock
from daemons import Daemon, bridge_environment
from servers.waha import FakeWaha
from waiting import wait_for

from bridge.config import Config, load_config
from bridge.daemon import FIRST_POLLS_PER_SECOND, MAX_CONCURRENT_POLLS, Bridge
from bridge.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from scale_feeds import FarmSpec, FarmStats, FeedFarm, parse_item_link

FEEDS = 50
HOSTS = 5
CHANGED = (3, 11, 24, 37, 49)
API_KEY = "scale-small-key"
CHAT = "120363000000000050@newsletter"


@pytest.fixture
def farm() -> Iterator[FeedFarm]:
    spec = FarmSpec(feeds=FEEDS, hosts=HOSTS, latency=(0.05, 0.15), slow_share=0.1, slow_latency=(0.3, 0.5),
                    lifetime=180)
    with FeedFarm(spec) as running:
        yield running


def write_config(path: Path, farm: FeedFarm, waha: FakeWaha) -> None:
    lines = [
        "[bridge]",
        'state_dir = "state"',
        "",
        "[defaults]",
        'interval = "4s"',
        'channels = ["whatsapp"]',
        'link_domains = ["example.it"]',
        'fetch_article = "never"',
        "",
    ]
    for index, url in enumerate(farm.urls()):
        lines += ["[[feeds]]", f'id = "c{index:05d}"', f'url = "{url}"', ""]
    lines += ["[channels.whatsapp]", 'type = "waha"', f'url = "{waha.url}"', f'chat_id = "{CHAT}"',
              'api_key = "env:WAHA_API_KEY"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.e2e
def test_every_changed_feed_posted_once_and_two_polls_per_host_at_most(
    tmp_path: Path, farm: FeedFarm, waha_server: FakeWaha
) -> None:
    waha_server.api_key = API_KEY
    config = tmp_path / "config.toml"
    write_config(config, farm, waha_server)
    env = bridge_environment({"WAHA_API_KEY": API_KEY})
    seen: list[FarmStats] = []

    def polled_all() -> bool:
        stats = farm.stats()
        seen.append(stats)
        return len(stats.per_feed) == FEEDS

    farm.mark()
    daemon = Daemon(config, tmp_path / "daemon.log", env=env, stdout_too=True, cwd=tmp_path)
    try:
        assert wait_for(polled_all, 30, every=0.1), "timed out waiting for the first cycle"
        time.sleep(0.5)  # the last polls' parse and commit
        assert waha_server.posts == [], "a first poll must record its items, not post them"

        farm.change(list(CHANGED))
        assert wait_for(lambda: len(waha_server.posts) >= len(CHANGED), 30, every=0.1), \
            "timed out waiting for the changed items' posts"
        # One more full cycle after the posts: nothing may be posted again.
        seen.append(farm.stats())
        farm.mark()
        assert wait_for(polled_all, 30, every=0.1), "timed out waiting for a cycle after the posts"
        time.sleep(0.5)
        assert daemon.running(), "the daemon stopped by itself"
    finally:
        code = daemon.stop(timeout=30)

    assert code == 0
    posted = Counter(key for post in waha_server.posts for word in post.text.split()
                     if (key := parse_item_link(word.strip("()<>"))) is not None)
    expected = {(feed, number) for feed, number, _ in farm.changes()}
    assert {feed for feed, _ in expected} == set(CHANGED)
    assert set(posted) == expected, f"posted {sorted(posted)}, expected {sorted(expected)}"
    assert all(count == 1 for count in posted.values()), f"double posts: {posted}"
    assert len(waha_server.posts) == len(CHANGED)
    assert max(stats.max_per_host for stats in seen) == 2, "polls per host: at most 2 (and the limit was reached)"


def test_a_start_polls_every_feed_first_and_shares_jobs_between_feeds_of_one_phase(
    tmp_path: Path, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 feeds at a 30 s interval, the real daemon in-process: every one is first-polled, and
    the schedule holds one job per second of the interval that has feeds, not one per feed. A
    feed whose scheduled poll falls in the first seconds is polled twice, as the interval must
    hold from the first poll; none more. (How the first polls are spread in time is asserted on
    a clock the test drives, below; the spread's figures are bench/scale.py's.)"""
    feeds = 400
    spec = FarmSpec(feeds=feeds, hosts=20, latency=(0.05, 0.1), slow_share=0.0, lifetime=120)
    monkeypatch.setenv("WAHA_API_KEY", API_KEY)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    with FeedFarm(spec) as farm:
        config = farm_config(tmp_path, farm, waha_server, interval="30s")
        store = Store.open(config.bridge.state_dir)
        farm.mark()

        async def scenario() -> tuple[int, FarmStats]:
            bridge = Bridge(config, store)
            running = asyncio.ensure_future(bridge.run())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(farm.stats().per_feed) < feeds:
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # a second more: a feed polled a third time would show
            stats = farm.stats()
            assert bridge._scheduler is not None
            jobs = len(bridge._scheduler.get_jobs())
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(running, 30) == 0
            return jobs, stats

        try:
            jobs, stats = asyncio.run(scenario())
        finally:
            store.close()
    assert len(stats.per_feed) == feeds
    # The window is shorter than the interval: a feed is polled by its first poll and at most
    # once more, at its phase.
    assert max(stats.per_feed.values()) <= 2, "a feed polled more than its first poll and its phase"
    assert jobs <= 30


def test_first_polls_start_in_phase_order_each_at_its_moment_of_the_spread(
    tmp_path: Path, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a clock the test drives: the first polls of 400 feeds start one by one in the order
    of the plan, none before its moment, all within len(feeds) / FIRST_POLLS_PER_SECOND
    seconds; and at no moment of the spread have more started than the rate allows."""
    monkeypatch.setenv("WAHA_API_KEY", API_KEY)
    spec = FarmSpec(feeds=400, hosts=20, latency=(0.05, 0.1), slow_share=0.0, lifetime=60)
    with FeedFarm(spec) as farm:
        config = farm_config(tmp_path, farm, waha_server, interval="30s")
    store = Store.open(config.bridge.state_dir)
    clock = FakeClock(datetime(2026, 11, 20, 11, 0, tzinfo=UTC))
    started: list[tuple[float, str]] = []

    async def scenario() -> list[tuple[float, str]]:
        bridge = Bridge(config, store, clock=clock)
        origin = clock.monotonic()
        monkeypatch.setattr(bridge, "_start_poll", lambda feed_id: started.append((clock.monotonic() - origin,
                                                                                   feed_id)))
        plan = bridge._first_poll_plan(list(config.feeds))
        spreading = asyncio.ensure_future(bridge._poll_first(list(config.feeds)))
        for _ in range(len(plan) + 10):  # one step per planned moment, and a few to spare
            await asyncio.sleep(0)
            if spreading.done():
                break
            due = clock.next_deadline()
            assert due is not None, "the spread neither sleeps nor ends"
            clock.advance(due - clock.monotonic())
        assert spreading.done(), "the spread did not end after its last moment"
        await spreading
        return plan

    try:
        plan = asyncio.run(scenario())
    finally:
        store.close()
    spread = len(config.feeds) / FIRST_POLLS_PER_SECOND
    assert [feed_id for _, feed_id in started] == [feed_id for _, feed_id in plan], "not in the plan's order"
    assert len(plan) > len(config.feeds) * 0.8, "most feeds are first-polled (the rest wait for their phase)"
    for (at, feed_id), (delay, _) in zip(started, plan, strict=True):
        assert delay - 1e-9 <= at <= spread, f"{feed_id} started at {at:.3f} s, planned at {delay:.3f} s"
    for at, _ in started:  # the rate: by any moment, at most the polls of the time elapsed (+1)
        assert sum(1 for moment, _ in started if moment <= at) <= at * FIRST_POLLS_PER_SECOND + 1


def test_polls_waiting_for_a_disk_that_does_not_answer_hold_no_fetch_slot(
    tmp_path: Path, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More feeds than fetch slots (MAX_CONCURRENT_POLLS), and the disk stops answering right
    after the store opens: every sync waits until the test lets it go. Every feed is still
    fetched, as a poll whose record waits for the disk has left its slots; had it kept them,
    the fetches would stop at MAX_CONCURRENT_POLLS until the disk came back and then start all
    at once. Once the disk answers, every poll is recorded."""
    feeds = MAX_CONCURRENT_POLLS + 36
    monkeypatch.setenv("WAHA_API_KEY", API_KEY)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    disk = threading.Event()
    spec = FarmSpec(feeds=feeds, hosts=50, latency=(0.01, 0.02), slow_share=0.0, lifetime=120)
    with FeedFarm(spec) as farm:
        config = farm_config(tmp_path, farm, waha_server, interval="1h")
        store = Store.open(config.bridge.state_dir)
        for name in ("fsync", "fdatasync"):
            monkeypatch.setattr(os, name, held_until(disk, getattr(os, name)))
        farm.mark()

        async def scenario() -> tuple[int, int]:
            bridge = Bridge(config, store)
            running = asyncio.ensure_future(bridge.run())
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and len(farm.stats().per_feed) < feeds:
                    await asyncio.sleep(0.1)
                fetched = len(farm.stats().per_feed)
            finally:
                disk.set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and recorded(store, config) < feeds:
                await asyncio.sleep(0.1)
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(running, 30) == 0
            return fetched, recorded(store, config)

        try:
            fetched, done = asyncio.run(scenario())
        finally:
            disk.set()
            store.close()
    assert fetched == feeds, f"{fetched} of {feeds} feeds fetched while the disk held the records"
    assert done == feeds


def held_until(disk: threading.Event, sync: Callable[[int], None]) -> Callable[[int], None]:
    """`sync`, made only once `disk` is set (bounded: a minute at most)."""
    def held(fd: int) -> None:
        disk.wait(60)
        sync(fd)
    return held


def recorded(store: Store, config: Config) -> int:
    return sum(1 for feed in config.feeds if store.feed_state(feed.id).last_poll is not None)


def farm_config(tmp_path: Path, farm: FeedFarm, waha: FakeWaha, *, interval: str) -> Config:
    path = tmp_path / "config.toml"
    write_config(path, farm, waha)
    path.write_text(path.read_text().replace('interval = "4s"', f'interval = "{interval}"'))
    return load_config(path, os.environ)
