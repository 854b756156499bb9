"""The state directory failing under the real daemon: a full disk, a read-only mount, the
directory removed. Each is said in one clear line, in `status`, the log and the systemd status
line; a daemon that can go on resumes by itself; one that must stop exits non-zero.

The file systems are real (tests/filesystems.py: a small tmpfs filled by a ballast file, a
read-only bind mount); these tests need root and are skipped, with the reason, without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemons import Daemon as BridgeDaemon
from daemons import bridge_environment, run_bridge
from filesystems import SmallFs, read_only
from servers.feeds import FeedServer, rss
from servers.webhook import FakeWebhook
from test_systemd_notify import FakeNotifySocket
from waiting import wait_for

from bridge.item import Alert
from bridge.store import STATE_PROBLEM, Delivery, Store

SITE = "https://www.comune.esempio.it"
NOW = datetime.now(UTC).replace(microsecond=0)
WATCHDOG_USEC = 1_000_000


class Feed:
    """A loopback feed that gains items on demand."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.count = 0
        self._lock = threading.Lock()

    def publish(self, n: int = 1) -> None:
        with self._lock:
            self.count += n
            self.server.set_feed("/stream.xml", rss([{
                "title": f"Avviso {i}: lavori sulla rete idrica",
                "link": f"{SITE}/avviso/{i}/",
                "guid": f"{SITE}/?p={i}",
                "description": f"Cantiere numero {i}: la strada resta chiusa per lavori.",
                "pubDate": NOW - timedelta(minutes=30) + timedelta(seconds=i),
            } for i in range(self.count, 0, -1)]))

    @staticmethod
    def link(n: int) -> str:
        return f"{SITE}/avviso/{n}/"


def write_config(tmp: Path, feeds: FeedServer, webhook: FakeWebhook, state: Path) -> Path:
    config = tmp / "config.toml"
    config.write_text(f"""
[bridge]
state_dir = "{state}"

[defaults]
interval = "1s"
channels = ["hook"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"

[[feeds]]
id = "stream"
name = "Avvisi"
url = "{feeds.url('/stream.xml')}"

[channels.hook]
type = "webhook"
url = "{webhook.url}/hook"
""", encoding="utf-8")
    return config


def environment(notify: FakeNotifySocket | None = None) -> dict[str, str]:
    env = bridge_environment(without=("JOURNAL_STREAM", "STATE_DIRECTORY"))
    if notify is not None:
        env.update(NOTIFY_SOCKET=notify.address, WATCHDOG_USEC=str(WATCHDOG_USEC))
    return env


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_bridge(config, *args, env=environment())


def said(stderr: str) -> list[str]:
    """What the command said to people: its lines that are not JSON log records."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


class Daemon(BridgeDaemon):
    """`channel-bridge run` as a subprocess, its stderr in a file, told of `notify` if given."""

    def __init__(self, config: Path, log: Path, notify: FakeNotifySocket | None = None) -> None:
        super().__init__(config, log, env=environment(notify))


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


@pytest.fixture
def notify() -> Iterator[FakeNotifySocket]:
    fake = FakeNotifySocket(abstract=True)
    try:
        yield fake
    finally:
        fake.close()


def remove(directory: Path) -> None:
    """`rm -rf directory` while a daemon may be writing a file in it (bounded retries)."""
    for _ in range(100):
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists():
            return
    raise AssertionError(f"{directory} could not be removed")


def posted(webhook: FakeWebhook) -> list[str]:
    return [str(json.loads(request.body)["link"]) for request in webhook.deliveries]


def status(config: Path) -> dict[str, Any]:
    done = cli(config, "status", "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def status_line(notify: FakeNotifySocket, after: int = 0) -> str:
    lines = [d.fields()["STATUS"] for d in notify.received[after:] if "STATUS" in d.fields()]
    return lines[-1] if lines else ""


# -- a full disk, then space back -------------------------------------------------------------


def test_a_full_disk_is_said_everywhere_and_the_daemon_resumes_when_space_is_back(
        tmp_path: Path, small_fs: SmallFs, feed_server: FeedServer, webhook_server: FakeWebhook,
        notify: FakeNotifySocket, daemons: list[Daemon]) -> None:
    state = small_fs.path / "state"
    feed = Feed(feed_server)
    feed.publish(2)
    config = write_config(tmp_path, feed_server, webhook_server, state)
    daemon = Daemon(config, tmp_path / "daemon.log", notify)
    daemons.append(daemon)
    assert wait_for(lambda: (state / "feeds" / "stream.json").exists()), daemon.log()
    assert status(config)["state"]["problem"] is None

    small_fs.fill()
    feed.publish()  # item 3: it cannot be recorded while the disk is full
    assert wait_for(lambda: STATE_PROBLEM in daemon.log(), 20), daemon.log()
    record = next(e for e in events(daemon.log()) if e["event"] == STATE_PROBLEM)
    assert record["level"] == "error" and "No space left on device" in record["error"]
    assert str(state) in record["path"] and "df -h" in record["hint"]
    report = status(config)["state"]
    assert report["ok"] is False
    assert report["problem"].startswith(f"{STATE_PROBLEM}: {state}/") and "No space left on device" in report["problem"]
    text = cli(config, "status").stdout.splitlines()
    assert text[0].startswith(f"state: {STATE_PROBLEM}: {state}/") and "No space left on device" in text[0]
    assert "df -h" in text[1]
    notify.wait_for(lambda d: STATE_PROBLEM in d.fields().get("STATUS", ""))
    assert "No space left on device" in status_line(notify)
    assert posted(webhook_server) == []  # nothing goes out that could not be recorded first

    mark = len(notify.received)
    small_fs.free()
    assert wait_for(lambda: posted(webhook_server) == [feed.link(3)], 40), daemon.log()
    assert wait_for(lambda: status(config)["state"]["problem"] is None, 30)
    assert wait_for(lambda: STATE_PROBLEM not in status_line(notify, mark) and status_line(notify, mark), 30)
    assert "state directory writable again; polls and deliveries resume" in daemon.log()
    feed.publish()  # and it goes on as before
    assert wait_for(lambda: posted(webhook_server) == [feed.link(3), feed.link(4)], 20), daemon.log()
    assert daemon.process.poll() is None, "the daemon restarted"
    assert daemon.stop() == 0, daemon.log()
    assert "Traceback" not in daemon.log()


def test_a_poll_that_cannot_record_its_items_still_wakes_the_delivery_worker(
        tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook, daemons: list[Daemon]) -> None:
    # The outbox can be written, the feed's own file cannot: the poll fails after queueing.
    state = tmp_path / "state"
    feed = Feed(feed_server)
    feed.publish(2)
    config = write_config(tmp_path, feed_server, webhook_server, state)
    daemon = Daemon(config, tmp_path / "daemon.log")
    daemons.append(daemon)
    assert wait_for(lambda: (state / "feeds" / "stream.json").exists()), daemon.log()
    with read_only(state / "feeds"):
        feed.publish()
        assert wait_for(lambda: posted(webhook_server) == [feed.link(3)], 20), daemon.log()
        record = next(e for e in events(daemon.log()) if e["event"] == STATE_PROBLEM)
        assert record["where"] == "feed stream" and f"{state}/feeds/" in record["error"]
        assert "Read-only file system" in record["error"] and "remount it read-write" in record["hint"]
    assert wait_for(lambda: status(config)["state"]["problem"] is None, 30), daemon.log()
    feed.publish()
    assert wait_for(lambda: posted(webhook_server) == [feed.link(3), feed.link(4)], 20), daemon.log()
    assert daemon.stop() == 0, daemon.log()


# -- the state directory removed under a running daemon ---------------------------------------


def test_a_state_directory_removed_under_the_daemon_stops_it_and_a_second_one_is_the_only_poster(
        tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook, notify: FakeNotifySocket,
        daemons: list[Daemon]) -> None:
    state = tmp_path / "state"
    feed = Feed(feed_server)
    feed.publish(2)
    config = write_config(tmp_path, feed_server, webhook_server, state)
    first = Daemon(config, tmp_path / "first.log", notify)
    daemons.append(first)
    assert wait_for(lambda: (state / "feeds" / "stream.json").exists()), first.log()
    feed.publish()
    assert wait_for(lambda: posted(webhook_server) == [feed.link(3)]), first.log()

    remove(state)  # an operator's mistake, a cleanup script
    second = Daemon(config, tmp_path / "second.log")  # on the same path, at once
    daemons.append(second)
    assert wait_for(lambda: (state / "feeds" / "stream.json").exists(), 20), second.log()
    feed.publish()  # item 4: new for both of them
    assert wait_for(lambda: feed.link(4) in posted(webhook_server), 20), second.log()
    assert first.process.wait(timeout=30) == 1, first.log()
    lines = said(first.log())
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"channel-bridge: the state directory {state} was removed or replaced while running")
    assert "systemctl restart channel-bridge" in lines[0]
    assert "Traceback" not in first.log()
    # Once it knew, it told systemd and never pinged the watchdog again.
    stopping = notify.wait_for(lambda d: d.fields().get("STATUS", "").startswith("stopping: the state directory"))
    assert not [d for d in notify.received[stopping:] if "WATCHDOG=1" in d.text.splitlines()]
    assert not [d for d in notify.received[stopping:] if "READY=1" in d.text.splitlines()]

    feed.publish()  # item 5: only the second one is left
    assert wait_for(lambda: feed.link(5) in posted(webhook_server), 20), second.log()
    links = posted(webhook_server)
    assert sorted(links) == sorted({feed.link(3), feed.link(4), feed.link(5)}), f"posted twice: {links}"
    assert second.stop() == 0, second.log()


# -- read-only or full at start and at stop ---------------------------------------------------


def test_a_read_only_state_directory_at_start_is_one_line(
        tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook) -> None:
    state = tmp_path / "state"
    Feed(feed_server).publish(1)
    config = write_config(tmp_path, feed_server, webhook_server, state)
    assert cli(config, "run", "--once").returncode == 0
    with read_only(state):
        for command in (["run"], ["run", "--once"]):
            done = cli(config, *command)
            assert done.returncode == 1, done.stderr
            assert "Traceback" not in done.stderr
            (line,) = said(done.stderr)
            assert line.startswith(f"channel-bridge: {STATE_PROBLEM}: {state}/lock: Read-only file system; ")
            assert "remount it read-write" in line
        report = status(config)["state"]  # status still reads it, and says why it cannot be written
        assert report["read_only"] is True
        assert report["problem"] == f"{STATE_PROBLEM}: {state}: Read-only file system"


def test_a_full_state_directory_at_start_is_one_line(
        tmp_path: Path, small_fs: SmallFs, feed_server: FeedServer, webhook_server: FakeWebhook) -> None:
    state = small_fs.path / "state"
    Feed(feed_server).publish(1)
    config = write_config(tmp_path, feed_server, webhook_server, state)
    small_fs.fill()
    done = cli(config, "run")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = said(done.stderr)
    assert line.startswith("channel-bridge: ") and str(state) in line, line
    assert "No space left on device" in line and f"df -h {state}" in line
    assert status(config)["state"]["problem"] is not None


@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_a_full_or_read_only_state_directory_at_stop_is_one_line_and_a_failure(
        tmp_path: Path, small_fs: SmallFs, feed_server: FeedServer, webhook_server: FakeWebhook,
        daemons: list[Daemon], trouble: str) -> None:
    state = small_fs.path / "state"
    Feed(feed_server).publish(1)
    config = write_config(tmp_path, feed_server, webhook_server, state)
    daemon = Daemon(config, tmp_path / "daemon.log")
    daemons.append(daemon)
    assert wait_for(lambda: (state / "feeds" / "stream.json").exists()), daemon.log()
    assert wait_for(lambda: len(feed_server.requests("/stream.xml")) >= 3)  # poll states changed since
    if trouble == "full":
        small_fs.fill()
        code = daemon.stop()
    else:
        with read_only(state):
            code = daemon.stop()
    assert code == 1, daemon.log()
    assert "Traceback" not in daemon.log()
    (line,) = said(daemon.log())
    error = "No space left on device" if trouble == "full" else "Read-only file system"
    assert line.startswith(f"channel-bridge: {STATE_PROBLEM}: {state}/polls.json: {error}; "), line
    assert "nothing else is lost" in line


def test_status_warns_when_the_largest_state_file_could_no_longer_be_rewritten(
        tmp_path: Path, small_fs: SmallFs, feed_server: FeedServer, webhook_server: FakeWebhook) -> None:
    state = small_fs.path / "state"
    config = write_config(tmp_path, feed_server, webhook_server, state)
    store = Store.open(state)
    alert = Alert(feed_id="stream", feed_name="Avvisi", title="Avviso", summary="Testo. " * 40, link=f"{SITE}/a/")
    store.add_deliveries([Delivery(id=f"d{n}", channel="hook", feed_id="stream", alert=alert, created=NOW,
                                   order=float(n)) for n in range(300)])
    store.close()
    outbox = (state / "outbox.json").stat().st_size
    assert outbox > 64 * 1024
    assert status(config)["state"]["warning"] is None
    small_fs.fill(leave=32 * 1024)  # room for small writes, not for a new copy of the outbox
    report = status(config)["state"]
    assert report["problem"] is None and report["free_bytes"] < outbox
    assert report["warning"].startswith("nearly full: ") and "outbox.json" in report["warning"]
    assert "warning: nearly full" in cli(config, "status").stdout.splitlines()[0]
