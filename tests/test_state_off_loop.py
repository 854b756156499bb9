"""The state is written off the event loop, in turn, and still on disk before what depends on it.

A disk whose syncs are slow (a shared virtual disk takes 0.3-2 s for one now and then) is played
by `HeldSyncs`: once armed, every fsync and fdatasync of the process waits, in whatever thread
makes it, until the test lets it go. It stands for the disk's latency only: the real files are
written and the real syncs made. The daemon's code runs on an asyncio loop beside it, and the
test looks, from that loop, at what can be seen while a sync is held: that the loop runs, that
memory shows nothing that is not on disk yet, that no request leaves before its in-flight mark
is synced. Code that synced on the event loop would block the loop in the held sync, and the
test with it, until the gate gives up (HOLD_LIMIT seconds): the tests say so as their failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from test_systemd_notify import FakeNotifySocket

from bridge.channels import WahaChannel
from bridge.config import AlertSettings, ChannelConfig, Secret, load_config, parse_config
from bridge.daemon import Bridge
from bridge.fetch import Fetcher
from bridge.item import Alert
from bridge.outbox import drain
from bridge.poll import poll_feed
from bridge.store import Delivery, Store

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")
HOLD_LIMIT = 20.0  # seconds a held sync waits for the test before it gives up (see the module)
BLOCKED = f"the event loop was blocked in a held sync for {HOLD_LIMIT:g} s: the write was made on the loop"


@dataclass
class Sync:
    name: str  # the file's name, a journal's generation as N ("outbox.N.journal"), a month as M
    entered: float  # time.monotonic()
    left: float | None = None


class HeldSyncs:
    """Every fsync and fdatasync of the process, held while `armed` until `release`d."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.gave_up = False  # a sync waited HOLD_LIMIT: nobody could let it go
        self.syncs: list[Sync] = []  # held ones, in the order they came
        self._permits = 0
        self._open = False
        self._cond = threading.Condition()
        monkeypatch.setattr(os, "fsync", self._held(os.fsync))
        monkeypatch.setattr(os, "fdatasync", self._held(os.fdatasync))

    def _held(self, sync: Callable[[int], None]) -> Callable[[int], None]:
        def held(fd: int) -> None:
            if self.armed:
                self._wait(Sync(_name(fd), time.monotonic()))
            sync(fd)
        return held

    def _wait(self, entry: Sync) -> None:
        with self._cond:
            self.syncs.append(entry)
            deadline = entry.entered + HOLD_LIMIT
            while not (self._open or self._permits or self.gave_up):
                if time.monotonic() >= deadline:
                    self.gave_up = True  # and every later sync goes through
                    break
                self._cond.wait(deadline - time.monotonic())
            if self._permits and not self._open:
                self._permits -= 1
            entry.left = time.monotonic()
            self._cond.notify_all()

    @property
    def waiting(self) -> list[str]:
        """The files whose sync is held now."""
        with self._cond:
            return [s.name for s in self.syncs if s.left is None]

    @property
    def names(self) -> list[str]:
        with self._cond:
            return [s.name for s in self.syncs]

    def release(self, count: int = 1) -> None:
        with self._cond:
            self._permits += count
            self._cond.notify_all()

    def open(self) -> None:
        """Let every sync through, now and from now on."""
        with self._cond:
            self._open = True
            self._cond.notify_all()


def _name(fd: int) -> str:
    name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    return re.sub(r"^history-\d{4}-\d\d\.jsonl$", "history-M.jsonl", re.sub(r"\.\d+\.journal$", ".N.journal", name))


async def until(condition: Callable[[], bool], disk: HeldSyncs) -> bool:
    """Let the loop run until `condition` holds (True) or the held sync gave up (False)."""
    deadline = time.monotonic() + HOLD_LIMIT * 2
    while not condition():
        if disk.gave_up or time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return not disk.gave_up


class Ticks:
    """Counts the event loop's turns while it runs: proof that the loop is not blocked."""

    def __init__(self) -> None:
        self.count = 0
        self._task = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)

    async def go_on(self, disk: HeldSyncs, turns: int = 50) -> bool:
        """True once the loop has turned `turns` more times (False if the held sync gave up first)."""
        target = self.count + turns
        return await until(lambda: self.count >= target, disk)

    def stop(self) -> None:
        self._task.cancel()


def delivery(n: int) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=f"Avviso {n}", summary="Testo dell'avviso.",
                  link=f"https://www.comune.esempio.it/n/{n}")
    return Delivery(id=f"d{n}", channel="wa", feed_id="notizie", alert=alert, created=NOW, order=float(n))


def outbox_view(store: Store) -> tuple[object, ...]:
    return ([d.to_dict() for d in store.deliveries(state=None)], store.last_post("wa"), store.channel_pause("wa"),
            [p.delivery_id for p in store.posts()])


def on_disk(state_dir: Path) -> tuple[object, ...]:
    reader = Store.open(state_dir, read_only=True)
    try:
        return outbox_view(reader)
    finally:
        reader.close()


def news(n: int) -> dict[str, object]:
    return {"title": f"Avviso numero {n}: lavori in via Roma", "link": f"https://www.comune.esempio.it/n/{n}",
            "description": f"Cantiere numero {n} in via Roma, da lunedì.", "pubDate": NOW - timedelta(minutes=n)}


# -- a poll -------------------------------------------------------------------------------------


def test_a_poll_on_a_slow_disk_leaves_the_loop_free_and_marks_keys_seen_only_once_its_alerts_are_on_disk(
        tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    feed_server.set_feed("/feed.xml", rss([news(1)]))
    config = parse_config(
        {"bridge": {"state_dir": str(tmp_path / "state")},
         "feeds": [{"id": "notizie", "url": feed_server.url("/feed.xml"), "channels": ["wa"],
                    "link_domains": ["comune.esempio.it"], "fetch_article": "never"}],
         "channels": {"wa": {"type": "console"}}},
        path=tmp_path / "config.toml", env={},
    )
    store = Store.open(config.bridge.state_dir)
    disk = HeldSyncs(monkeypatch)

    async def scenario() -> None:
        async with Fetcher(user_agent="test") as fetcher:
            async def poll() -> list[str]:
                result = await poll_feed(config.feeds[0], config=config, fetcher=fetcher, store=store,
                                         now=lambda: NOW)
                assert result.ok, result.error
                return [d.alert.title for d in result.queued]

            assert await poll() == []  # the first poll records what the feed lists
            known = store.seen_count("notizie")
            feed_server.set_feed("/feed.xml", rss([news(2), news(1)]))
            disk.armed = True
            ticks = Ticks()
            polling = asyncio.ensure_future(poll())
            # The outbox's journal is created (its directory synced), then the new alert's line
            # written, its sync held: the loop goes on, and neither the delivery nor the keys are
            # in memory, since they are not on disk yet.
            for step in ("state", "outbox.N.journal"):
                assert await until(lambda step=step: disk.waiting == [step], disk), (BLOCKED, disk.names)
                assert await ticks.go_on(disk), BLOCKED
                assert store.deliveries() == [] and store.seen_count("notizie") == known
                disk.release()
            assert await until(lambda: disk.waiting == [".notizie.json.tmp"], disk), (BLOCKED, disk.names)
            # On disk now, so queued in memory; its keys wait for the feed's file.
            assert [d.alert.title for d in store.deliveries()] == ["Avviso numero 2: lavori in via Roma"]
            assert store.seen_count("notizie") == known
            assert await ticks.go_on(disk), BLOCKED
            disk.open()
            assert await polling == ["Avviso numero 2: lavori in via Roma"]
            assert store.seen_count("notizie") > known
            ticks.stop()

    asyncio.run(scenario())
    assert not disk.gave_up, BLOCKED
    # The deliveries' line was synced before the feed's file was written (and its directory).
    assert disk.names == ["state", "outbox.N.journal", ".notizie.json.tmp", "feeds"]
    view = outbox_view(store)
    store.close()
    assert on_disk(config.bridge.state_dir) == view


def test_two_polls_showing_the_same_news_at_once_queue_it_once_though_the_first_is_still_being_written(
        tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    story = news(1)
    feed_server.set_feed("/a.xml", rss([]))
    feed_server.set_feed("/b.xml", rss([]))
    config = parse_config(
        {"bridge": {"state_dir": str(tmp_path / "state")},
         "defaults": {"link_domains": ["comune.esempio.it"], "fetch_article": "never", "channels": ["wa"]},
         "feeds": [{"id": "a", "url": feed_server.url("/a.xml")}, {"id": "b", "url": feed_server.url("/b.xml")}],
         "channels": {"wa": {"type": "console"}}},
        path=tmp_path / "config.toml", env={},
    )
    store = Store.open(config.bridge.state_dir)
    disk = HeldSyncs(monkeypatch)

    async def scenario() -> tuple[list[str], list[str]]:
        async with Fetcher(user_agent="test") as fetcher:
            async def poll(index: int) -> list[str]:
                result = await poll_feed(config.feeds[index], config=config, fetcher=fetcher, store=store,
                                         now=lambda: NOW)
                assert result.ok, result.error
                return [d.feed_id for d in result.queued]

            assert (await poll(0), await poll(1)) == ([], [])  # first polls: recorded
            # The same page in both, under different guids: two delivery ids, one link.
            feed_server.set_feed("/a.xml", rss([{**story, "guid": "https://www.comune.esempio.it/?p=1"}]))
            feed_server.set_feed("/b.xml", rss([{**story, "guid": "urn:uuid:7f1c",
                                                 "link": f"{story['link']}?utm_source=x"}]))
            disk.armed = True
            ticks = Ticks()
            first = asyncio.ensure_future(poll(0))
            assert await until(lambda: bool(disk.waiting), disk), BLOCKED  # a's record under way
            second = asyncio.ensure_future(poll(1))
            # b fetched and parsed its feed, and waits for its turn to decide what is new.
            assert await until(lambda: store.changes_waiting == 1, disk), BLOCKED
            assert await ticks.go_on(disk), BLOCKED
            disk.open()
            ticks.stop()
            return await first, await second

    assert asyncio.run(scenario()) == (["a"], [])
    assert [d.feed_id for d in store.deliveries()] == ["a"]
    store.close()


# -- a send -------------------------------------------------------------------------------------


def waha_channel(waha: FakeWaha, http: httpx.AsyncClient) -> WahaChannel:
    config = ChannelConfig(name="wa", type="waha", url=waha.url, chat_id="1@newsletter",
                           api_key=Secret("env:K", "k"), timeout=timedelta(seconds=5))
    return WahaChannel(config, http=http)


def test_a_send_on_a_slow_disk_leaves_after_its_in_flight_mark_is_synced_and_its_post_reaches_the_history_first(
        tmp_path: Path, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch) -> None:
    waha_server.api_key = "k"
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    disk = HeldSyncs(monkeypatch)

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            disk.armed = True
            ticks = Ticks()
            draining = asyncio.ensure_future(drain(waha_channel(waha_server, http), store=store,
                                                   alerts=AlertSettings(), timezone=ROME, now=lambda: NOW))
            assert await until(lambda: bool(disk.waiting), disk), BLOCKED
            # The in-flight mark (with its message id) is being synced: no send has left, the
            # loop goes on, and memory does not have the mark yet.
            assert disk.waiting == ["outbox.N.journal"]
            assert await ticks.go_on(disk), BLOCKED
            assert waha_server.posts == []
            assert not store.deliveries()[0].in_flight
            disk.release()
            assert await until(lambda: disk.waiting == ["history-M.jsonl"], disk), (BLOCKED, disk.names)
            # Sent; its post is being synced into the history: until then it stays in the outbox.
            assert len(waha_server.posts) == 1
            assert [(d.id, d.in_flight) for d in store.deliveries()] == [("d1", True)]
            assert await ticks.go_on(disk), BLOCKED
            disk.open()
            result = await draining
            assert (result.sent, result.waiting) == (1, 0)
            ticks.stop()

    asyncio.run(scenario())
    assert not disk.gave_up, BLOCKED
    # The history (and its new directory entry) before the delivery leaves the outbox.
    assert disk.names == ["outbox.N.journal", "history-M.jsonl", tmp_path.name, "outbox.N.journal"]
    view = outbox_view(store)
    assert view[0] == [] and view[3] == ["d1"]
    store.close()
    assert on_disk(tmp_path) == view


# -- changes in turn ----------------------------------------------------------------------------


def test_changes_asked_at_once_are_decided_and_made_in_the_order_asked(tmp_path: Path) -> None:
    store = Store.open(tmp_path)

    async def scenario() -> list[object]:
        asked = [store.acommit(store.plan_add_deliveries([delivery(n) for n in (1, 2, 3)]))]
        asked += [store.acommit(store.plan_update_deliveries([replace(delivery(1), attempts=n)])) for n in (1, 2, 3)]
        asked.append(store.acommit(store.plan_channel_pause("wa", "token rejected")))
        asked.append(store.acommit(store.plan_record_posts([delivery(2)], "wamid-2", NOW)))
        asked.append(store.acommit(store.plan_channel_pause("wa", None)))
        # Decided at its turn, after the post: d2 is known (posted), so only d4 is queued.
        asked.append(store.acommit(store.plan_add_deliveries([delivery(2), delivery(4)])))
        return list(await asyncio.gather(*asked))

    results = asyncio.run(scenario())
    assert [d.id for d in results[-1]] == ["d4"]  # type: ignore[attr-defined]
    view = outbox_view(store)
    assert [(d["id"], d["attempts"]) for d in view[0]] == [("d1", 3), ("d3", 0), ("d4", 0)]  # type: ignore[index]
    assert view[1:] == (NOW, None, ["d2"])
    store.close()
    assert on_disk(tmp_path) == view


def test_a_change_under_way_is_made_though_its_caller_gives_up_and_one_not_begun_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(tmp_path)
    disk = HeldSyncs(monkeypatch)

    async def scenario() -> None:
        async def caller(deliveries: list[Delivery]) -> list[Delivery]:
            return await store.acommit(store.plan_add_deliveries(deliveries))

        disk.armed = True
        under_way = asyncio.ensure_future(caller([delivery(1)]))
        not_begun = asyncio.ensure_future(caller([delivery(2)]))
        assert await until(lambda: bool(disk.waiting), disk), BLOCKED
        under_way.cancel()
        not_begun.cancel()
        await asyncio.wait([under_way, not_begun])
        assert store.deliveries() == []  # d1's line is not synced yet
        # Nothing else may write meanwhile: a change made at once is refused, and changes nothing.
        with pytest.raises(RuntimeError, match="in turn"):
            store.add_deliveries([delivery(3)])
        disk.open()
        await store.settled()
        assert [d.id for d in store.deliveries()] == ["d1"]

    asyncio.run(scenario())
    view = outbox_view(store)
    store.close()
    assert on_disk(tmp_path) == view


def test_a_change_under_way_when_the_loop_ends_is_finished_there(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    disk = HeldSyncs(monkeypatch)

    def release_once_cancelled() -> None:
        # The loop, ending, cancels the store's task taking the turns: the held sync goes on
        # only then, so the change is finished by the loop's last moments.
        deadline = time.monotonic() + HOLD_LIMIT
        while time.monotonic() < deadline:
            taking = store._taking  # the only way to see that moment from outside the loop
            if taking is not None and (taking.cancelling() or taking.done()):
                break
            time.sleep(0.002)
        disk.open()

    async def scenario() -> None:
        disk.armed = True
        asked = store.acommit(store.plan_record_posts([delivery(1)], "wamid-1", NOW))
        assert await until(lambda: disk.waiting == ["history-M.jsonl"], disk), BLOCKED
        threading.Thread(target=release_once_cancelled, daemon=True).start()
        del asked  # the caller leaves without waiting: the loop ends with the change under way

    asyncio.run(scenario())
    assert not disk.gave_up
    # Both writes made (history, then outbox), and memory changed after each: it is the disk.
    assert disk.names[0] == "history-M.jsonl" and disk.names[-1] == "outbox.N.journal"
    view = outbox_view(store)
    assert view[0] == [] and view[3] == ["d1"]
    store.close()
    assert on_disk(tmp_path) == view


def test_a_step_of_the_wall_clock_moves_the_deadlines_of_changes_asked_before_it_and_not_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    disk = HeldSyncs(monkeypatch)
    back = timedelta(hours=-1)

    async def scenario() -> None:
        disk.armed = True
        # Planned on the old clock, and being written when the step is noticed.
        before = store.acommit(store.plan_update_deliveries([replace(delivery(1), next_attempt=NOW + timedelta(
            seconds=30))]))
        assert await until(lambda: bool(disk.waiting), disk), BLOCKED
        moving = store.amove_deadlines(back)
        # Planned on the new clock, after the step was noticed.
        after = store.acommit(store.plan_update_deliveries([replace(delivery(2), next_attempt=NOW + back + timedelta(
            seconds=30))]))
        reader = asyncio.ensure_future(store.deadlines_settled())
        await asyncio.sleep(0)
        assert not reader.done()  # a drain waits for the move before it looks at the deadlines
        disk.open()
        await asyncio.gather(before, moving, after)
        assert await reader

    asyncio.run(scenario())
    attempts = {d.id: d.next_attempt for d in store.deliveries()}
    assert attempts == {"d1": NOW + back + timedelta(seconds=30), "d2": NOW + back + timedelta(seconds=30)}
    view = outbox_view(store)
    store.close()
    assert on_disk(tmp_path) == view


# -- the daemon ---------------------------------------------------------------------------------


def test_the_daemon_pings_the_watchdog_while_the_disk_holds_a_write_and_posts_once_when_it_lets_go(
        tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch) -> None:
    waha_server.api_key = "k"
    # Dated now: the daemon reads the real clock, and max_age holds.
    feed_server.set_feed("/feed.xml", rss([{**news(1), "pubDate": datetime.now(UTC) - timedelta(minutes=1)}]))
    path = tmp_path / "config.toml"
    path.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"
backfill = 1

[[feeds]]
id = "notizie"
url = "{feed_server.url('/feed.xml')}"

[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "1@newsletter"
api_key = "env:WAHA_API_KEY"
""", encoding="utf-8")
    config = load_config(path, {**os.environ, "WAHA_API_KEY": "k"})
    notify = FakeNotifySocket(abstract=True)
    monkeypatch.setenv("NOTIFY_SOCKET", notify.address)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # a ping every 50 ms
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    store = Store.open(config.bridge.state_dir)
    disk = HeldSyncs(monkeypatch)
    disk.armed = True  # from the daemon's first write on: its first poll's queued alert

    def pings_while_held() -> int:
        first = disk.syncs[0]
        return sum(1 for d in notify.received if d.text == "WATCHDOG=1"
                   and d.at > first.entered and (first.left is None or d.at < first.left))

    async def scenario() -> None:
        bridge = Bridge(config, store)
        running = asyncio.ensure_future(bridge.run())
        try:
            assert await until(lambda: bool(disk.waiting), disk), BLOCKED
            assert await until(lambda: pings_while_held() >= 3, disk), BLOCKED
            assert waha_server.posts == []
            disk.open()
            assert await until(lambda: len(waha_server.posts) == 1 and not store.deliveries(), disk), disk.names
        finally:
            disk.open()
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(running, 30) == 0

    try:
        asyncio.run(scenario())
    finally:
        notify.close()
        store.close()
    assert not disk.gave_up, BLOCKED
    assert [p.text.splitlines()[0] for p in waha_server.posts] == ["*Avviso numero 1: lavori in via Roma*"]
    view = on_disk(config.bridge.state_dir)
    assert view[0] == [] and len(view[3]) == 1  # type: ignore[arg-type]
