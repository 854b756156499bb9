"""Correctness at scale (issue 7), not timing: the real daemon over 50 feeds on 5 loopback hosts.

The feed farm of `bench/scale_feeds.py` serves the feeds from 127.0.1.1-127.0.1.5 (ten feeds per
host, each answer 50-150 ms late, a few 0.3-0.5 s) and records how many requests each host had
in flight at once. After the first cycle (everything recorded, nothing posted) five feeds get a
new item each: every one of them must reach the fake WAHA exactly once, nothing else may be
posted, and no host may ever see more than two polls at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers.waha import FakeWaha

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


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_every_changed_feed_posted_once_and_two_polls_per_host_at_most(
    tmp_path: Path, farm: FeedFarm, waha_server: FakeWaha
) -> None:
    waha_server.api_key = API_KEY
    config = tmp_path / "config.toml"
    write_config(config, farm, waha_server)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["WAHA_API_KEY"] = API_KEY
    seen: list[FarmStats] = []

    def polled_all() -> bool:
        stats = farm.stats()
        seen.append(stats)
        return len(stats.per_feed) == FEEDS

    farm.mark()
    with (tmp_path / "daemon.log").open("wb") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(config), "run"],
                                  stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        wait_for(polled_all, 30, "the first cycle")
        time.sleep(0.5)  # the last polls' parse and commit
        assert waha_server.posts == [], "a first poll must record its items, not post them"

        farm.change(list(CHANGED))
        wait_for(lambda: len(waha_server.posts) >= len(CHANGED), 30, "the changed items' posts")
        # One more full cycle after the posts: nothing may be posted again.
        seen.append(farm.stats())
        farm.mark()
        wait_for(polled_all, 30, "a cycle after the posts")
        time.sleep(0.5)
        assert daemon.poll() is None, "the daemon stopped by itself"
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(10)
            raise

    assert code == 0
    posted = Counter(key for post in waha_server.posts for word in post.text.split()
                     if (key := parse_item_link(word.strip("()<>"))) is not None)
    expected = {(feed, number) for feed, number, _ in farm.changes()}
    assert {feed for feed, _ in expected} == set(CHANGED)
    assert set(posted) == expected, f"posted {sorted(posted)}, expected {sorted(expected)}"
    assert all(count == 1 for count in posted.values()), f"double posts: {posted}"
    assert len(waha_server.posts) == len(CHANGED)
    assert max(stats.max_per_host for stats in seen) == 2, "polls per host: at most 2 (and the limit was reached)"
