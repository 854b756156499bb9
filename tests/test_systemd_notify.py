"""sd_notify against a fake `NOTIFY_SOCKET`: the module alone, then the real daemon.

The fake is what systemd is on the other end: an AF_UNIX datagram socket (a path, or a name
in the abstract namespace) that records every datagram with its arrival time and the
sender's pid (SO_PASSCRED), because systemd only believes the main process.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servers.feeds import FeedServer, rss
from waiting import wait_for

from bridge import systemd

# -- the fake systemd end ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Datagram:
    text: str
    at: float  # time.monotonic() at arrival
    pid: int | None  # the sender, from SCM_CREDENTIALS

    def fields(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.text.splitlines() if "=" in line)


class FakeNotifySocket:
    """Receives sd_notify datagrams in a background thread; bounded waits to read them."""

    def __init__(self, *, abstract: bool) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        if abstract:
            name = f"channel-bridge-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # A short directory: an AF_UNIX path must fit in 108 bytes, pytest's tmp_path may not.
            self._dir = tempfile.TemporaryDirectory(prefix="sdnotify-")
            self.address = os.path.join(self._dir.name, "notify")
            self.sock.bind(self.address)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.05)
        self._lock = threading.Lock()
        self._received: list[Datagram] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="fake-notify-socket", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        ucred = struct.calcsize("3i")
        while not self._closing.is_set():
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
            except TimeoutError:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:ucred])[0]
            with self._lock:
                self._received.append(Datagram(data.decode("utf-8"), time.monotonic(), pid))

    @property
    def received(self) -> list[Datagram]:
        with self._lock:
            return list(self._received)

    def wait_for(self, predicate: Callable[[Datagram], bool], *, after: int = 0, timeout: float = 15.0) -> int:
        """Index of the first datagram at or after `after` matching `predicate`; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for index, datagram in enumerate(self.received[after:], start=after):
                if predicate(datagram):
                    return index
            if time.monotonic() > deadline:
                texts = [d.text for d in self.received]
                raise AssertionError(f"no matching notification within {timeout}s; received: {texts}")
            time.sleep(0.02)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self.sock.close()
        if self._dir is not None:
            self._dir.cleanup()


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNotifySocket]:
    fake = FakeNotifySocket(abstract=request.param == "abstract")
    monkeypatch.setenv("NOTIFY_SOCKET", fake.address)
    try:
        yield fake
    finally:
        fake.close()


def is_(text: str) -> Callable[[Datagram], bool]:
    return lambda d: text in d.text.splitlines()


# -- the module ----------------------------------------------------------------------------


def test_notify_sends_one_datagram(notify_socket: FakeNotifySocket) -> None:
    assert systemd.notify("READY=1\nSTATUS=3 feeds, 0 failing")
    notify_socket.wait_for(is_("READY=1"))
    [datagram] = notify_socket.received
    assert datagram.text == "READY=1\nSTATUS=3 feeds, 0 failing"
    assert datagram.pid == os.getpid()


def test_notify_sends_utf8(notify_socket: FakeNotifySocket) -> None:
    assert systemd.notify("STATUS=ultimo avviso: Città chiusa")
    notify_socket.wait_for(is_("STATUS=ultimo avviso: Città chiusa"))


def test_outside_systemd_notify_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert systemd.notify("READY=1") is False


@pytest.mark.parametrize("address", ["/nonexistent/notify", "@channel-bridge-test-nobody-listens", "relative"])
def test_a_socket_that_is_gone_is_not_an_error(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert systemd.notify("WATCHDOG=1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        (None, None, None),
        ("", None, None),
        ("20000000", None, 10.0),
        ("20000000", "self", 10.0),
        ("20000000", "other", None),  # inherited by a child: not its job to ping
        ("1000", None, 0.0005),
        ("0", None, None),  # would ping in a tight loop
        ("-5", None, None),
        ("soon", None, None),
    ],
)
def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None,
                           expected: float | None) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            value = {"self": str(os.getpid()), "other": str(os.getpid() + 1)}.get(value, value)
            monkeypatch.setenv(name, value)
    assert systemd.watchdog_interval() == expected


def test_status_line_is_one_line() -> None:
    assert systemd.status_line("2 feeds,\n0 failing\t queue 0") == "STATUS=2 feeds, 0 failing queue 0"


def test_reloading_message_carries_clock_monotonic() -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    message = systemd.reloading_message()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = message.splitlines()
    assert first == "RELOADING=1"
    assert second.startswith("MONOTONIC_USEC=")
    assert before <= int(second.removeprefix("MONOTONIC_USEC=")) <= after


# -- the real daemon -----------------------------------------------------------------------

WATCHDOG_USEC = 600_000  # pings expected every 0.3 s
NOW = datetime.now(UTC).replace(microsecond=0)


def news(n: int, *, hours_ago: float) -> dict[str, object]:
    return {
        "title": f"Avviso numero {n}: chiusura temporanea di via Roma",
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": "Da lunedì via Roma resta chiusa per lavori alla rete idrica.",
        "pubDate": NOW - timedelta(hours=hours_ago),
    }


def config_text(feed_urls: list[str]) -> str:
    feeds = "".join(
        f'\n[[feeds]]\nid = "feed-{n}"\nname = "Feed {n}"\nurl = "{url}"\n' for n, url in enumerate(feed_urls)
    )
    return f"""
[bridge]
state_dir = "state"

[defaults]
interval = "1s"
channels = ["console"]
{feeds}
[channels.console]
type = "console"
"""


class Daemon:
    """`channel-bridge run` as a subprocess with a fake NOTIFY_SOCKET."""

    def __init__(self, tmp: Path, feeds: FeedServer, notify: FakeNotifySocket, *, stallable: bool = False) -> None:
        self.tmp = tmp
        self.notify = notify
        self.config = tmp / "config.toml"
        feeds.set_feed("/one.xml", rss([news(1, hours_ago=3)]))
        feeds.set_feed("/two.xml", rss([news(2, hours_ago=2)]))
        self.urls = [feeds.url("/one.xml"), feeds.url("/two.xml")]
        self.config.write_text(config_text(self.urls[:1]), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_PID", "JOURNAL_STREAM", "STATE_DIRECTORY")}
        env.update(NOTIFY_SOCKET=notify.address, WATCHDOG_USEC=str(WATCHDOG_USEC))
        # With `stallable`, SIGUSR2 stalls its event loop (see tests/stallable_daemon.py).
        entry = [str(Path(__file__).with_name("stallable_daemon.py"))] if stallable else ["-m", "bridge"]
        self.stderr = tmp / "stderr.log"
        with self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, *entry, "--config", str(self.config), "run"],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError("the daemon did not stop within 20 s of SIGTERM") from None


@pytest.fixture
def daemon_factory(tmp_path: Path, feed_server: FeedServer,
                   notify_socket: FakeNotifySocket) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(**options: bool) -> Daemon:
        daemon = Daemon(tmp_path, feed_server, notify_socket, **options)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=10)


def test_daemon_lifecycle_ready_status_watchdog_reload_stopping(daemon_factory: Callable[..., Daemon]) -> None:
    daemon = daemon_factory()
    sock = daemon.notify
    ready = sock.wait_for(is_("READY=1"))
    # READY only once config and state are open: the state's lock is already held.
    assert (daemon.tmp / "state" / "lock").exists()
    assert all(d.pid == daemon.process.pid for d in sock.received), "only the main process may notify"
    sock.wait_for(lambda d: d.text.startswith("STATUS=") or "\nSTATUS=" in d.text)
    assert not [d for d in sock.received[:ready] if "STOPPING=1" in d.text or "RELOADING=1" in d.text]

    # WATCHDOG=1 every half WATCHDOG_USEC, from the event loop.
    first_ping = sock.wait_for(is_("WATCHDOG=1"))
    time.sleep(2.0)
    pings = [d.at for d in sock.received[first_ping:] if is_("WATCHDOG=1")(d)]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert len(pings) >= 5, pings
    half = WATCHDOG_USEC / 2e6
    assert max(gaps) < WATCHDOG_USEC / 1e6, f"a gap reached the watchdog timeout: {gaps}"
    assert half * 0.7 < sorted(gaps)[len(gaps) // 2] < half * 1.5, gaps

    # A valid reload: RELOADING=1 with MONOTONIC_USEC on our clock, then READY=1.
    daemon.config.write_text(config_text(daemon.urls), encoding="utf-8")
    mark = len(sock.received)
    sent_at = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    daemon.process.send_signal(signal.SIGHUP)
    reloading = sock.wait_for(is_("RELOADING=1"), after=mark)
    usec = int(sock.received[reloading].fields()["MONOTONIC_USEC"])
    assert sent_at <= usec <= sent_at + 10_000_000
    again = sock.wait_for(is_("READY=1"), after=reloading + 1)
    status = sock.wait_for(lambda d: "STATUS" in d.fields(), after=reloading + 1)
    assert sock.received[status].fields()["STATUS"].startswith("2 feeds")
    assert again >= reloading

    # An invalid reload: RELOADING=1, READY=1 again (the old config keeps running), the reason in STATUS.
    daemon.config.write_text("[bridge\nbroken = ", encoding="utf-8")
    mark = len(sock.received)
    daemon.process.send_signal(signal.SIGHUP)
    reloading = sock.wait_for(is_("RELOADING=1"), after=mark)
    sock.wait_for(is_("READY=1"), after=reloading + 1)
    rejected = sock.wait_for(lambda d: "STATUS" in d.fields(), after=reloading + 1)
    assert "reload rejected" in sock.received[rejected].fields()["STATUS"]
    assert daemon.process.poll() is None
    ping = sock.wait_for(is_("WATCHDOG=1"), after=rejected + 1)
    assert ping > rejected

    # SIGTERM: STOPPING=1, then a clean exit.
    mark = len(sock.received)
    assert daemon.stop() == 0, daemon.log()
    sock.wait_for(is_("STOPPING=1"), after=mark, timeout=2)
    assert '"reload rejected' in daemon.log()


# The example is "12 feeds, 0 failing, queue 0, last post 10:32"; before any post there is no time.
STATUS_FORMAT = re.compile(r"^\d+ feeds?, \d+ failing, queue \d+, (last post \d\d:\d\d|no post yet)")


def test_status_says_feeds_failing_queue_and_last_post(daemon_factory: Callable[..., Daemon]) -> None:
    """The issue's one-line summary: "12 feeds, 0 failing, queue 0, last post 10:32"."""
    daemon = daemon_factory()
    sock = daemon.notify
    index = sock.wait_for(lambda d: "STATUS" in d.fields())
    status = sock.received[index].fields()["STATUS"]
    assert STATUS_FORMAT.match(status), status
    assert daemon.stop() == 0, daemon.log()


def test_a_stalled_event_loop_stops_the_watchdog_pings(daemon_factory: Callable[..., Daemon]) -> None:
    daemon = daemon_factory(stallable=True)
    sock = daemon.notify
    sock.wait_for(is_("READY=1"))
    sock.wait_for(is_("WATCHDOG=1"))
    daemon.process.send_signal(signal.SIGUSR2)  # stalls its event loop (tests/stallable_daemon.py)
    time.sleep(0.5)
    mark = len(sock.received)
    time.sleep(4 * WATCHDOG_USEC / 1e6)
    assert not [d for d in sock.received[mark:] if is_("WATCHDOG=1")(d)], "pinged while the loop was stalled"
    assert daemon.process.poll() is None
    daemon.process.kill()
    daemon.process.wait(timeout=10)


def test_a_notify_socket_that_is_gone_does_not_stop_the_daemon(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_server.set_feed("/one.xml", rss([news(1, hours_ago=3)]))
    config = tmp_path / "config.toml"
    config.write_text(config_text([feed_server.url("/one.xml")]), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_PID", "JOURNAL_STREAM", "STATE_DIRECTORY")}
    env.update(NOTIFY_SOCKET=str(tmp_path / "gone"), WATCHDOG_USEC="200000")
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(config), "run"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while len(feed_server.requests("/one.xml")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(feed_server.requests("/one.xml")) >= 2, "the daemon never polled twice"
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
            raise
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_status_line_says_one_feed(daemon_factory: Callable[..., Daemon]) -> None:
    daemon = daemon_factory()  # one feed
    sock = daemon.notify
    index = sock.wait_for(lambda d: "STATUS" in d.fields())
    status = sock.received[index].fields()["STATUS"]
    assert status.startswith("1 feed, "), status
    assert daemon.stop() == 0, daemon.log()


def test_status_soon_after_the_first_poll_does_not_say_not_polled(
    daemon_factory: Callable[..., Daemon], feed_server: FeedServer
) -> None:
    """Poll states reach disk every minute, but a poll that changes its feed's health (here
    the first) has them written within seconds: `status`, another process, reads them."""
    daemon = daemon_factory()
    assert wait_for(lambda: len(feed_server.requests("/one.xml")) >= 1, 15), daemon.log()
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "NOTIFY_SOCKET")}
    seen: list[str] = []

    def polled() -> bool:
        result = subprocess.run([sys.executable, "-m", "bridge", "--config", str(daemon.config), "status", "--json"],
                                capture_output=True, text=True, timeout=30, env=env, check=False)
        seen.append(result.stdout + result.stderr)
        return result.returncode == 0 and json.loads(result.stdout)["feeds"][0]["health"] == "ok"

    # Bounded well below the minute of the periodic write, which would also make it pass.
    assert wait_for(polled, 20, every=0.5), seen[-1]
    assert daemon.stop() == 0, daemon.log()
