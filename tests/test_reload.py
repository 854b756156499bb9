"""A reload storm: SIGHUPs with valid and invalid config files interleaved leave the daemon running
the last valid config, and every rejection is logged with its reason.

Each valid config polls one feed of its own (`/cfg-N.xml`), so the feed server shows which
config the daemon runs. Config files are replaced atomically, as an editor or a deploy tool
does, so a reload never reads half a file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import daemons
import pytest
from daemons import bridge_environment
from servers.feeds import FeedServer, rss
from waiting import wait_for

SITE = "https://www.comune.esempio.it"

# Broken on purpose, one way each: what staff get wrong.
INVALID: list[tuple[str, str]] = [
    ("toml syntax", '[bridge\nstate_dir = "state"\n'),
    ("unknown key", '[bridge]\nstate_dir = "state"\n\n[[feeds]]\nid = "x"\nurl = "{url}"\nintervall = "1s"\n'),
    ("bad duration", '[bridge]\nstate_dir = "state"\n\n[[feeds]]\nid = "x"\nurl = "{url}"\ninterval = "5 minuti"\n'),
    ("unknown channel", '[bridge]\nstate_dir = "state"\n\n[[feeds]]\nid = "x"\nurl = "{url}"\n'
                        'channels = ["nessuno"]\n'),
    ("duplicate ids", '[bridge]\nstate_dir = "state"\n\n[[feeds]]\nid = "x"\nurl = "{url}"\n\n[[feeds]]\nid = "x"\n'
                      'url = "{url}"\n'),
    ("missing secret", '[bridge]\nstate_dir = "state"\n\n[[feeds]]\nid = "x"\nurl = "{url}"\nchannels = ["w"]\n\n'
                       '[channels.w]\ntype = "waha"\nurl = "http://127.0.0.1:9"\nchat_id = "1@newsletter"\n'
                       'api_key = "env:CHANNEL_BRIDGE_TEST_UNSET_SECRET"\n'),
    ("bad quiet hours", '[bridge]\nstate_dir = "state"\n\n[alerts]\nquiet_hours = "25:00-07:00"\n\n[[feeds]]\n'
                        'id = "x"\nurl = "{url}"\n'),
    ("empty file", ""),
    ("binary garbage", "\x00\x01\x02 not toml at all \xff"),
]


def valid(feeds: FeedServer, n: int, *, bridge: str = "") -> str:
    return f"""
[bridge]
state_dir = "state"
{bridge}

[defaults]
interval = "1s"
channels = ["console"]
fetch_article = "never"

[[feeds]]
id = "cfg-{n}"
name = "Config {n}"
url = "{feeds.url(f'/cfg-{n}.xml')}"

[channels.console]
type = "console"
"""


def replace_file(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, path)


def records(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def outcomes(log: Path) -> list[dict[str, Any]]:
    return [r for r in records(log) if r.get("event") in ("config reloaded",
                                                          "reload rejected; still running the previous config")]


def reloads_seen(log: Path, count: int) -> Callable[[], bool]:
    return lambda: len(outcomes(log)) >= count


def polled_paths(feeds: FeedServer, seconds: float) -> set[str]:
    """The feed paths the daemon asks for during the next `seconds` (its interval is 1 s)."""
    feeds.clear_requests()
    time.sleep(seconds)
    return {request.path for request in feeds.requests()}


class Daemon:
    def __init__(self, tmp: Path, feeds: FeedServer) -> None:
        self.config = tmp / "config.toml"
        self.log = tmp / "daemon.log"
        self.feeds = feeds
        for n in range(201):
            feeds.set_feed(f"/cfg-{n}.xml", rss([{"title": f"Notizia {n}", "link": f"{SITE}/n/{n}/"}]))
        replace_file(self.config, valid(feeds, 0))
        env = bridge_environment(without=("JOURNAL_STREAM", "CHANNEL_BRIDGE_TEST_UNSET_SECRET"))
        self.running = daemons.Daemon(self.config, self.log, env=env)
        self.process = self.running.process

    def started(self) -> bool:
        return any(r.get("event") == "channel-bridge started" for r in records(self.log))

    def hup(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> int:
        return self.running.stop(timeout=20)


@pytest.fixture
def daemon(tmp_path: Path, feed_server: FeedServer) -> Iterator[Daemon]:
    running = Daemon(tmp_path, feed_server)
    try:
        assert wait_for(running.started, 15), running.log.read_text()
        yield running
    finally:
        running.stop()


def test_a_hundred_reloads_one_at_a_time_end_on_the_last_valid_config(daemon: Daemon, feed_server: FeedServer) -> None:
    rng = random.Random(100)
    kinds = ["valid" if rng.random() < 0.5 else "invalid" for _ in range(99)] + ["valid"]
    last_valid = 0
    for index, kind in enumerate(kinds, start=1):
        if kind == "valid":
            last_valid = index
            replace_file(daemon.config, valid(feed_server, index))
        else:
            _, text = INVALID[index % len(INVALID)]
            replace_file(daemon.config, text.replace("{url}", feed_server.url(f"/cfg-{index}.xml")))
        daemon.hup()
        assert wait_for(reloads_seen(daemon.log, index), 10), f"reload {index} ({kind}) unseen"
        assert daemon.process.poll() is None, f"the daemon died at reload {index} ({kind})"

    seen = outcomes(daemon.log)
    assert [r["event"] == "config reloaded" for r in seen] == [kind == "valid" for kind in kinds]
    for record in seen:
        if record["event"] != "config reloaded":
            assert record["level"] == "error"
            assert record["errors"] and all(isinstance(e, str) and e for e in record["errors"])
    # Each rejection says what is wrong, e.g. the TOML line or the key's place.
    reasons = [" ".join(r["errors"]) for r in seen if r["event"] != "config reloaded"]
    assert any("line" in reason for reason in reasons)
    assert any('feeds[0] (id="x").intervall' in reason for reason in reasons)

    assert wait_for(lambda: polled_paths(feed_server, 1.5) == {f"/cfg-{last_valid}.xml"}, 10)
    assert daemon.stop() == 0
    tail = records(daemon.log)
    assert tail[-1]["event"] == "stopped"
    assert not [r for r in tail if r.get("level") in ("critical",) or "crashed" in str(r.get("event"))]


def test_a_storm_of_reloads_leaves_the_daemon_on_the_last_valid_config(daemon: Daemon,
                                                                       feed_server: FeedServer) -> None:
    # 100 SIGHUPs a few milliseconds apart: reloads overlap, some signals coalesce.
    for index in range(1, 101):
        if index % 2:
            _, text = INVALID[index % len(INVALID)]
            replace_file(daemon.config, text.replace("{url}", feed_server.url(f"/cfg-{index}.xml")))
        else:
            replace_file(daemon.config, valid(feed_server, 100 + index))
        daemon.hup()
        time.sleep(0.003)
    assert daemon.process.poll() is None, "the daemon died in the storm"
    # The last file written is valid (index 100): the daemon ends up polling its feed, and only it.
    assert wait_for(lambda: polled_paths(feed_server, 1.5) == {"/cfg-200.xml"}, 15), polled_paths(feed_server, 1.5)
    assert daemon.process.poll() is None
    assert daemon.stop() == 0
    tail = records(daemon.log)
    assert tail[-1]["event"] == "stopped"
    assert not [r for r in tail if "crashed" in str(r.get("event")) or "exception" in r]
    assert any(r["event"] == "reload rejected; still running the previous config" for r in outcomes(daemon.log))


def test_a_reload_applies_the_new_fetch_settings(daemon: Daemon, feed_server: FeedServer) -> None:
    agent = "channel-bridge-reloaded (+https://www.comune.esempio.it)"
    replace_file(daemon.config, valid(feed_server, 0, bridge=f'user_agent = "{agent}"\nmax_feed_bytes = 1024'))
    daemon.hup()
    assert wait_for(reloads_seen(daemon.log, 1), 10)
    assert outcomes(daemon.log)[0]["event"] == "config reloaded"
    feed_server.clear_requests()
    assert wait_for(lambda: len(feed_server.requests("/cfg-0.xml")) >= 2, 10)
    assert all(r.headers.get("user-agent") == agent for r in feed_server.requests("/cfg-0.xml")[1:])
