"""The real daemon under libfaketime: its wall clock steps back an hour mid-run, as an NTP
correction or a VM restore does, then forward again, and it keeps polling and posting, without
making up for the hour skipped.

libfaketime (Debian package `faketime`) is preloaded into the daemon only, never into pytest
or the fake servers. Settings, each needed:

- `FAKETIME_TIMESTAMP_FILE` + `FAKETIME_NO_CACHE=1`: the offset is read from a file at every
  clock reading, so the test can step the clock while the daemon runs (without NO_CACHE the
  file is re-read only every 10 s);
- `FAKETIME_DONT_FAKE_MONOTONIC=1`: only CLOCK_REALTIME steps, as with NTP. Without it the
  monotonic clock steps back too, which no real system does, and asyncio's timers (on the
  monotonic clock) would stall for the hour instead;
- the multi-threaded library `libfaketimeMT.so.1`: the daemon has threads (name resolution);
- `NO_FAKE_STAT=1` and `PYTHONDONTWRITEBYTECODE=1`: file times are left alone, so Python does
  not rewrite the checkout's bytecode caches with shifted times.

What libfaketime 0.9.10 (Debian 12) gets wrong, and how the test copes:

- with `FAKETIME_DONT_FAKE_MONOTONIC=1`, every `time.sleep()` fails with EINVAL (Python 3.11
  sleeps with clock_nanosleep on CLOCK_MONOTONIC, which that version mangles:
  wolfcw/libfaketime#426). The event loop never calls it, but the stop does, waiting for a
  killed parser worker: the exit status is therefore checked to be 0 or that failure, and the
  clean stop itself is tested without libfaketime (tests/test_e2e.py);
- it leaves a shared-memory segment and a semaphore named after the preloaded process in
  /dev/shm, and a later process that reuses that pid fails to start: the test removes them.

`FAKETIME_DONT_RESET` is not needed: it matters for "start at" dates, not for offsets.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemons import Daemon, bridge_environment
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from waiting import wait_for

API_KEY = "faketime-key-1234"
CHAT = "120363000000000011@newsletter"
INTERVAL = 1.0  # seconds
LIBRARY_PATTERNS = ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1",
                    "/usr/local/lib/faketime/libfaketimeMT.so.1")


def libfaketime() -> str | None:
    for pattern in LIBRARY_PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def news(n: int) -> dict[str, Any]:
    return {
        "title": f"Avviso numero {n}: lavori in via Garibaldi",
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": f"Da lunedì via Garibaldi resta chiusa per lavori, cantiere numero {n}.",
        "pubDate": datetime.now(UTC) - timedelta(hours=3) + timedelta(minutes=n),
    }


@pytest.fixture
def library() -> str:
    path = libfaketime()
    if path is None:
        pytest.skip("libfaketime is not installed (Debian: apt-get install faketime; .ci/run installs it)")
    return path


@pytest.fixture
def shm_cleanup() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        for name in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
            Path("/dev/shm", name).unlink(missing_ok=True)


def set_offset(path: Path, offset: str) -> None:
    """Replace the offset file at once: libfaketime reads it at every clock reading, and a
    half-written file would be a step of its own."""
    new = path.with_name(path.name + ".new")
    new.write_text(offset + "\n", encoding="utf-8")
    os.replace(new, path)


def log_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def test_a_wall_clock_stepped_back_then_forward_an_hour_keeps_polls_and_posts_going(
    tmp_path: Path, library: str, shm_cleanup: list[int], feed_server: FeedServer, waha_server: FakeWaha
) -> None:
    waha_server.api_key = API_KEY
    config = tmp_path / "config.toml"
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
min_gap = "1s"  # a last post "in the future" after the step must not hold the next one

[[feeds]]
id = "notizie"
url = "{feed_server.url('/feed.xml')}"

[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""",
        encoding="utf-8",
    )
    offset = tmp_path / "faketime"
    set_offset(offset, "+0")
    env = bridge_environment(dict(
        WAHA_API_KEY=API_KEY, LD_PRELOAD=library, FAKETIME_TIMESTAMP_FILE=str(offset), FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1", NO_FAKE_STAT="1", PYTHONDONTWRITEBYTECODE="1"))
    items = [news(1)]
    feed_server.set_feed("/feed.xml", rss(items))

    def polls() -> int:
        return len(feed_server.requests("/feed.xml"))

    log = tmp_path / "daemon.log"
    daemon = Daemon(config, log, env=env, stdout_too=True, cwd=tmp_path)
    shm_cleanup.append(daemon.pid)
    try:
        assert wait_for(lambda: polls() >= 2, 30), "the daemon never polled"
        items.insert(0, news(2))
        feed_server.set_feed("/feed.xml", rss(items))
        assert wait_for(lambda: len(waha_server.posts) == 1, 30), "the first new item was not posted"

        set_offset(offset, "-3600")  # the step back, as NTP makes it
        stepped = polls()
        assert wait_for(lambda: polls() >= stepped + 3, 30), "no poll after the wall clock stepped back"
        items.insert(0, news(3))
        feed_server.set_feed("/feed.xml", rss(items))
        assert wait_for(lambda: len(waha_server.posts) == 2, 30), "no post after the wall clock stepped back"

        set_offset(offset, "+0")  # and forward by the hour again, as the next correction may
        stepped, since = polls(), time.monotonic()
        assert wait_for(lambda: polls() >= stepped + 3, 30), "no poll after the wall clock stepped forward"
        items.insert(0, news(4))
        feed_server.set_feed("/feed.xml", rss(items))
        assert wait_for(lambda: len(waha_server.posts) == 3, 30), "no post after the wall clock stepped forward"
        # The hour skipped is 3,600 intervals: none is made up for. A busy machine polls less
        # often than once an interval, never more.
        assert polls() - stepped <= (time.monotonic() - since) / INTERVAL + 2, "polls made up for the hour skipped"
        assert daemon.running(), "the daemon stopped by itself"
    finally:
        code = daemon.stop(timeout=30)
    output = log.read_text(encoding="utf-8", errors="replace")
    libfaketime_bug = "time.sleep(delay)" in output and "OSError: [Errno 22] Invalid argument" in output
    assert code == 0 or (code == 1 and libfaketime_bug), output[-3000:]
    assert [post.text.splitlines()[0] for post in waha_server.posts] == [
        "*Avviso numero 2: lavori in via Garibaldi*", "*Avviso numero 3: lavori in via Garibaldi*",
        "*Avviso numero 4: lavori in via Garibaldi*"]
    events = [r.get("event", "") for r in log_records(log)]
    assert [e for e in events if e.startswith("wall clock jumped")] == [
        "wall clock jumped back by 3600 s; schedule rebuilt", "wall clock jumped forward by 3600 s; schedule rebuilt"
    ], events
