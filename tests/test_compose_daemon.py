"""Composed alerts and the test message in the daemon (`Bridge.compose`, the one path of the
control socket and the console).

The daemon (`Bridge.run`) runs in-process on a `FakeClock` (see tests/test_approval_timeout.py)
with a feed in approval mode on the loopback feed server and the fake WAHA, and quiet hours
around the fake noon. A composed alert posts once, without approval; in quiet hours a routine
one waits for their end and an urgent one goes at once; an off-domain link is refused with
nothing queued; the audit trail names the author; the test message reaches the fake now.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from clocks import FakeClock
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from test_clock import NOON, START, quiet_for_a_while, settle

from bridge.approval import ActionRefused
from bridge.compose import BAD_LINK, TEST_TEXT, Composition, delivery_id
from bridge.config import MANUAL_FEED, load_config
from bridge.daemon import Bridge
from bridge.store import Store

API_KEY = "compose-key-4242"
CHAT = "120363000000000042@newsletter"
HOUR = 3600.0
LINK = "https://www.comune.esempio.it/novita/neve/"


class Daemon:
    """One feed in approval mode to one WhatsApp channel; quiet hours 11:00-14:00 (Rome: the
    fake noon, 11:00 UTC, is 12:00 there)."""

    def __init__(self, tmp: Path, feeds: FeedServer, waha: FakeWaha) -> None:
        self.feeds, self.waha = feeds, waha
        waha.api_key = API_KEY
        path = tmp / "config.toml"
        path.write_text(f"""
[bridge]
state_dir = "state"

[alerts]
quiet_hours = "11:00-14:00"

[[feeds]]
id = "notizie"
url = "{feeds.url('/feed.xml')}"
interval = "300s"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"
approve = true

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""", encoding="utf-8")
        feeds.set_feed("/feed.xml", rss([]))
        self.config = load_config(path, {**os.environ, "WAHA_API_KEY": API_KEY})
        self.store = Store.open(self.config.bridge.state_dir)
        self.clock = FakeClock(NOON, START)
        self.bridge = Bridge(self.config, self.store, clock=self.clock)

    def posts(self) -> list[str]:
        return [post.text.splitlines()[0] for post in self.waha.posts if post.chat_id == CHAT]

    async def start(self) -> asyncio.Future[int]:
        running = asyncio.ensure_future(self.bridge.run())
        assert await settle(lambda: self.bridge._scheduler is not None and self.bridge._scheduler.running
                            and (self.clock.next_deadline() or 1e18) < START + 1), "the daemon did not start"
        self.clock.advance(0.01)
        assert await settle(lambda: len(self.feeds.requests("/feed.xml")) == 1 and not self.bridge._first_polls)
        return running

    async def stop(self, running: asyncio.Future[int]) -> None:
        import signal

        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(running, 30) == 0


@pytest.fixture
def daemon(tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Daemon]:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    made = Daemon(tmp_path, feed_server, waha_server)
    yield made
    made.store.close()


def run(scenario: Any) -> None:
    with structlog.testing.capture_logs():
        asyncio.run(scenario())


def alert(compose_id: str, title: str, *, urgent: bool = False, link: str = LINK) -> Composition:
    return Composition(compose_id, title=title, text="Domani le scuole restano chiuse per neve.", link=link,
                       urgent=urgent)


def test_in_quiet_hours_a_routine_composed_alert_waits_an_urgent_one_goes_each_once(daemon: Daemon) -> None:
    async def scenario() -> None:
        running = await daemon.start()
        routine = await daemon.bridge.compose(alert("r1", "Mercato spostato"), who="anna", where="console")
        urgent = await daemon.bridge.compose(alert("u1", "Neve: scuole chiuse", urgent=True), who="anna",
                                             where="console")
        assert [d.id for d in routine.deliveries] == [delivery_id("r1", "whatsapp")]
        # Durable before the answer: the outbox's files on disk already have both.
        state = daemon.config.bridge.state_dir
        written = b"".join(path.read_bytes() for path in state.glob("outbox*"))
        assert routine.deliveries[0].id.encode() in written and urgent.deliveries[0].id.encode() in written
        assert await settle(lambda: daemon.posts() == ["*Neve: scuole chiuse*"]), "the urgent one did not go"
        await quiet_for_a_while()
        assert daemon.posts() == ["*Neve: scuole chiuse*"], "the routine one went in quiet hours"
        assert [d.alert.title for d in daemon.store.deliveries(state="pending")] == ["Mercato spostato"]
        daemon.clock.advance(2 * HOUR + 60)  # 14:01 in Rome: quiet hours are over
        assert await settle(lambda: len(daemon.posts()) == 2), "the routine one did not go after quiet hours"
        daemon.clock.advance(HOUR)
        await quiet_for_a_while()
        assert daemon.posts() == ["*Neve: scuole chiuse*", "*Mercato spostato*"], "posted more than once"
        again = None
        try:
            await daemon.bridge.compose(alert("u1", "Neve: scuole chiuse", urgent=True), who="anna", where="console")
        except ActionRefused as refusal:
            again = refusal.code
        assert again == "already_queued"
        await daemon.stop(running)
        assert urgent.deliveries[0].urgent

    run(scenario)
    trail = [(e.action, e.who, e.where, e.feed_id, e.title, (e.after or {}).get("state"))
             for e in daemon.store.audit_entries()]
    assert trail == [("compose", "anna", "console", MANUAL_FEED, "Mercato spostato", "pending"),
                     ("compose", "anna", "console", MANUAL_FEED, "Neve: scuole chiuse", "pending")]
    assert [p.feed_id for p in daemon.store.posts()] == [MANUAL_FEED, MANUAL_FEED]


def test_an_off_domain_link_is_refused_and_nothing_is_queued_or_audited(daemon: Daemon) -> None:
    async def scenario() -> None:
        running = await daemon.start()
        with pytest.raises(ActionRefused) as caught:
            await daemon.bridge.compose(alert("x1", "Truffa", urgent=True, link="https://comune-esempio.example/x"),
                                        who="anna", where="console")
        assert caught.value.code == BAD_LINK
        await quiet_for_a_while()
        assert daemon.store.deliveries(state=None) == [] and daemon.posts() == []
        await daemon.stop(running)

    run(scenario)
    assert daemon.store.audit_entries() == []


def test_the_test_message_reaches_the_channel_now_in_quiet_hours(daemon: Daemon) -> None:
    async def scenario() -> None:
        running = await daemon.start()
        await daemon.bridge.compose(Composition("t1", channels=("whatsapp",), test=True), who="root", where="cli")
        assert await settle(lambda: len(daemon.posts()) == 1), "the test message did not go"
        await daemon.stop(running)

    run(scenario)
    (post,) = daemon.waha.posts
    assert TEST_TEXT in post.text.replace("\n", " ")
    assert [(e.action, e.who, e.where) for e in daemon.store.audit_entries()] == [("test", "root", "cli")]
