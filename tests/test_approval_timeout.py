"""`approve_timeout` and the ops announcement "N avvisi da approvare", in the daemon.

The daemon (`Bridge.run`) runs in-process on a `FakeClock` (see tests/test_clock.py: its loop,
scheduler, workers and approval check are the real ones; the test moves the clocks), with a
feed in approval mode on the loopback feed server and the fake WAHA, whose second chat is the
ops channel. The test moves the clocks to exact moments and then waits, bounded, for what
must have happened by then; what must not happen is looked for after the daemon had its
chance (`quiet_for_a_while`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from clocks import FakeClock
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from test_clock import NOON, START, quiet_for_a_while, settle

from bridge.approval import APPROVE, DROP, Action
from bridge.config import load_config
from bridge.daemon import APPROVAL_CHECK, Bridge
from bridge.store import Store

API_KEY = "approval-timeout-key-77"
CHAT = "120363000000000077@newsletter"
OPS_CHAT = "120363000000000078@newsletter"
MINUTE = 60.0
HOUR = 3600.0


def news(n: int, *, urgent: bool = False) -> dict[str, Any]:
    title = f"Avviso numero {n}: lavori in via Roma" if not urgent else f"Allerta meteo numero {n}: vento forte"
    return {
        "title": title,
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": f"Da lunedì via Roma resta chiusa per lavori, cantiere numero {n}.",
        "pubDate": NOON - timedelta(hours=5) + timedelta(minutes=n),
    }


class Daemon:
    """One feed, "notizie", in approval mode (`timeout`: its approve_timeout, TOML), to the
    WhatsApp channel; ops alerts to a second WAHA chat, at most once per `min_interval`. The
    first poll at start queues the newest item (`backfill = 1`)."""

    def __init__(self, tmp: Path, feeds: FeedServer, waha: FakeWaha, *, timeout: str = "",
                 min_interval: str = "1h") -> None:
        self.feeds, self.waha = feeds, waha
        waha.api_key = API_KEY
        path = tmp / "config.toml"
        path.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"
backfill = 1

[alerts]
urgent_keywords = ["allerta"]

[[feeds]]
id = "notizie"
url = "{feeds.url('/feed.xml')}"
interval = "300s"
approve = true
{f'approve_timeout = {timeout}' if timeout else ''}

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"

[channels.ops]
type = "waha"
url = "{waha.url}"
chat_id = "{OPS_CHAT}"
api_key = "env:WAHA_API_KEY"

[ops]
channel = "ops"
min_interval = "{min_interval}"
""", encoding="utf-8")
        self.config = load_config(path, {**os.environ, "WAHA_API_KEY": API_KEY})
        self.store = Store.open(self.config.bridge.state_dir)
        self.clock = FakeClock(NOON, START)
        self.bridge = Bridge(self.config, self.store, clock=self.clock)
        self.items: list[dict[str, Any]] = []

    def publish(self, *items: dict[str, Any]) -> None:
        self.items = [*items, *self.items]
        self.feeds.set_feed("/feed.xml", rss(self.items))

    def posts(self) -> list[str]:
        """The first line of each post on the comune's channel."""
        return [post.text.splitlines()[0] for post in self.waha.posts if post.chat_id == CHAT]

    def announcements(self) -> list[str]:
        """Each ops post's line that says how many alerts wait."""
        return [line for post in self.waha.posts if post.chat_id == OPS_CHAT for line in post.text.splitlines()
                if line[:1].isdigit() and line.endswith("da approvare")]

    def awaiting(self) -> list[str]:
        return [d.alert.title for d in self.store.deliveries(state="awaiting")]

    def idle(self) -> bool:
        return not self.bridge._polls and not self.bridge._first_polls

    async def start(self) -> asyncio.Future[int]:
        running = asyncio.ensure_future(self.bridge.run())
        assert await settle(lambda: self.bridge._scheduler is not None and self.bridge._scheduler.running
                            and (self.clock.next_deadline() or 1e18) < START + 1), "the daemon did not start"
        self.clock.advance(0.01)
        assert await settle(lambda: len(self.feeds.requests("/feed.xml")) == 1 and self.idle()), "no first poll"
        return running

    async def poll(self) -> None:
        """A poll of "notizie" now (what its scheduled job does), ended."""
        await self.bridge._poll(self.config.feeds[0])
        assert await settle(self.idle), "the poll did not end"

    def advance(self, seconds: float) -> None:
        """Move both clocks by `seconds`, in steps of the approval check, so that every check
        due on the way is woken (as on a real clock)."""
        step = APPROVAL_CHECK.total_seconds()
        while seconds > 0:
            self.clock.advance(min(step, seconds))
            seconds -= step

    async def stop(self, running: asyncio.Future[int]) -> None:
        import signal

        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(running, 30) == 0


@pytest.fixture
def make(tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[Any]:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    made: list[Daemon] = []

    def factory(**options: Any) -> Daemon:
        made.append(Daemon(tmp_path, feed_server, waha_server, **options))
        return made[-1]

    yield factory
    for daemon in made:
        daemon.store.close()


def run(scenario: Any) -> list[dict[str, Any]]:
    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    return logs


def test_an_unattended_routine_alert_is_sent_once_its_approve_timeout_has_passed(make: Any) -> None:
    daemon = make(timeout='{ routine = "send after 1h" }')
    daemon.publish(news(1))

    async def scenario() -> None:
        running = await daemon.start()
        assert await settle(lambda: daemon.awaiting() == ["Avviso numero 1: lavori in via Roma"])
        daemon.advance(HOUR - MINUTE)
        await quiet_for_a_while()
        assert daemon.posts() == [] and len(daemon.awaiting()) == 1, "sent before its approve_timeout"
        daemon.advance(MINUTE + APPROVAL_CHECK.total_seconds())
        assert await settle(lambda: len(daemon.posts()) == 1), "not sent after its approve_timeout"
        daemon.advance(HOUR)
        await quiet_for_a_while()
        assert daemon.posts() == ["*Avviso numero 1: lavori in via Roma*"], "sent more than once"
        await daemon.stop(running)

    run(scenario)
    trail = [(e.action, e.who, e.where, e.reason) for e in daemon.store.audit_entries()]
    assert trail == [("timeout-send", "channel-bridge", "daemon", "approve_timeout")]


def test_an_unattended_alert_is_dropped_by_its_approve_timeout_and_never_sent(make: Any) -> None:
    daemon = make(timeout='{ routine = "drop after 2h" }')
    daemon.publish(news(1))

    async def scenario() -> None:
        running = await daemon.start()
        assert await settle(lambda: len(daemon.awaiting()) == 1)
        daemon.advance(2 * HOUR + APPROVAL_CHECK.total_seconds())
        assert await settle(lambda: daemon.awaiting() == []), "not dropped after its approve_timeout"
        daemon.advance(HOUR)
        await quiet_for_a_while()
        assert daemon.posts() == [] and daemon.store.deliveries(state=None) == []
        await daemon.stop(running)

    run(scenario)
    assert [(e.action, e.after) for e in daemon.store.audit_entries()] == [("timeout-drop", None)]


def test_by_default_a_routine_alert_waits_for_an_editor_and_an_urgent_one_goes_after_30_minutes(make: Any) -> None:
    daemon = make()
    daemon.publish(news(1))

    async def scenario() -> None:
        running = await daemon.start()
        assert await settle(lambda: len(daemon.awaiting()) == 1)
        daemon.publish(news(2, urgent=True))
        await daemon.poll()
        assert len(daemon.awaiting()) == 2
        daemon.advance(30 * MINUTE - MINUTE)
        await quiet_for_a_while()
        assert daemon.posts() == [], "the urgent alert went before its 30 minutes"
        daemon.advance(MINUTE + APPROVAL_CHECK.total_seconds())
        assert await settle(lambda: len(daemon.posts()) == 1), "the urgent alert did not go after 30 minutes"
        daemon.advance(2 * 24 * HOUR)
        await quiet_for_a_while()
        assert len(daemon.posts()) == 1, "a routine alert was sent unapproved by default"
        assert daemon.awaiting() == ["Avviso numero 1: lavori in via Roma"]
        await daemon.stop(running)

    run(scenario)
    assert "Allerta meteo numero 2" in daemon.posts()[0]


def test_alerts_to_approve_are_announced_at_most_once_per_min_interval_and_again_after_none_waited(
        make: Any) -> None:
    daemon = make(min_interval="1h")
    daemon.publish(news(1))

    async def scenario() -> None:
        running = await daemon.start()
        assert await settle(lambda: daemon.announcements() == ["1 avviso da approvare"]), daemon.waha.posts
        daemon.publish(news(3), news(2))
        await daemon.poll()
        daemon.advance(HOUR - MINUTE)  # checks every APPROVAL_CHECK all the while: within min_interval
        await quiet_for_a_while()
        assert daemon.announcements() == ["1 avviso da approvare"], "announced again within min_interval"
        daemon.advance(MINUTE + APPROVAL_CHECK.total_seconds())
        assert await settle(lambda: len(daemon.announcements()) == 2), "not announced again after min_interval"
        assert daemon.announcements()[1] == "3 avvisi da approvare"

        ids = [d.id for d in daemon.store.deliveries(state="awaiting")]
        await daemon.bridge.act(Action(APPROVE, ids[0]), who="anna", where="cli")
        for alert_id in ids[1:]:
            await daemon.bridge.act(Action(DROP, alert_id, reason="doppione"), who="anna", where="cli")
        assert await settle(lambda: len(daemon.posts()) == 1)
        # None waits: cleared. The next one is announced at once, within the same min_interval.
        daemon.advance(APPROVAL_CHECK.total_seconds())
        await quiet_for_a_while()
        daemon.publish(news(4))
        await daemon.poll()
        assert await settle(lambda: len(daemon.announcements()) == 3), "a new wait after none was not announced"
        assert daemon.announcements()[2] == "1 avviso da approvare"
        await daemon.stop(running)

    run(scenario)


@pytest.mark.parametrize("step", [HOUR, -HOUR])
def test_a_step_of_the_wall_clock_neither_hastens_nor_delays_an_approve_timeout(make: Any, step: float) -> None:
    """NTP correcting the clock by an hour, forward or back, 10 minutes after an alert was
    queued: it is still sent unapproved after an hour of waiting (as retries keep their
    real wait), not at once nor an hour late."""
    daemon = make(timeout='{ routine = "send after 1h" }')
    daemon.publish(news(1))

    async def scenario() -> None:
        running = await daemon.start()
        assert await settle(lambda: len(daemon.awaiting()) == 1)
        daemon.advance(10 * MINUTE)
        daemon.clock.step_wall(step)
        daemon.advance(APPROVAL_CHECK.total_seconds())  # the step is noticed
        await quiet_for_a_while()
        daemon.advance(50 * MINUTE - 2 * APPROVAL_CHECK.total_seconds())
        await quiet_for_a_while()
        assert daemon.posts() == [], "the step of the wall clock hastened the approve_timeout"
        daemon.advance(2 * APPROVAL_CHECK.total_seconds())
        assert await settle(lambda: len(daemon.posts()) == 1), "the step of the wall clock delayed the approve_timeout"
        await daemon.stop(running)

    logs = run(scenario)
    assert any(str(entry.get("event", "")).startswith("wall clock jumped") for entry in logs)
