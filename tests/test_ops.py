"""Ops alerts: one log line and one message per `min_interval`, queued in the outbox for the
ops channel like any alert (history, retries, quiet hours), never queued to a channel that is
the one broken. The daemon runs in-process on a clock the test drives (tests/clocks.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clocks import FakeClock
from filesystems import read_only
from servers.feeds import FeedServer, rss
from servers.webhook import FakeWebhook
from structlog.testing import capture_logs

from bridge.config import Config, load_config
from bridge.daemon import Bridge
from bridge.ops import OPS_FEED
from bridge.outbox import DrainResult
from bridge.store import STATE_PROBLEM, Store

NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 13:00 in Rome
POLL = 300.0  # seconds between two polls, as a 5-minute interval makes them


@pytest.fixture
def ops_hook() -> Iterator[FakeWebhook]:
    """The IT office's webhook, apart from the citizens' one (`webhook_server`)."""
    with FakeWebhook() as server:
        yield server


def _config(tmp: Path, feeds: FeedServer, hook: FakeWebhook, office: FakeWebhook | None) -> Config:
    ops = f'\n[channels.ufficio]\ntype = "webhook"\nurl = "{office.url}/ops"\n\n[ops]\nchannel = "ufficio"\n' \
        if office else ""
    path = tmp / "config.toml"
    path.write_text(f"""
[bridge]
state_dir = "state"

[alerts]
quiet_hours = "22:00-07:00"

[[feeds]]
id = "notizie"
url = "{feeds.url('/feed.xml')}"
channels = ["avvisi"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"

[channels.avvisi]
type = "webhook"
url = "{hook.url}/avvisi"
{ops}""", encoding="utf-8")
    return load_config(path)


def _stale_feed(feeds: FeedServer) -> None:
    """A feed that answers with the same old items: stale from its first poll."""
    feeds.set_feed("/feed.xml", rss([{
        "title": f"Avviso numero {n} del Comune di Esempio", "link": f"https://www.comune.esempio.it/a/{n}",
        "pubDate": NOON - timedelta(days=60 + n)} for n in range(3)]))


def _reports(logs: list[dict[str, Any]], subject: str) -> int:
    return sum(1 for e in logs if e["event"] == "ops alert" and e["subject"] == subject and e["log_level"] == "warning")


class _Daemon:
    def __init__(self, config: Config, store: Store, clock: FakeClock) -> None:
        self.clock = clock
        self.bridge = Bridge(config, store, clock=clock)
        self.bridge._open_channels()

    async def poll_every_5m(self, times: int) -> None:
        for _ in range(times):
            await self.bridge._poll(self.bridge.config.feeds[0], force=True)
            self.clock.advance(POLL)


def _ops_posts(office: FakeWebhook) -> list[str]:
    return [json.loads(r.body)["title"] for r in office.deliveries]


def test_a_stale_feed_is_reported_once_per_min_interval_in_the_log(
    tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook
) -> None:
    # No ops channel: the log is the only report, and it must not say it at every poll.
    _stale_feed(feed_server)
    config = _config(tmp_path, feed_server, webhook_server, None)
    store = Store.open(config.bridge.state_dir)
    daemon = _Daemon(config, store, FakeClock(NOON))

    async def go() -> tuple[int, int]:
        with capture_logs() as logs:
            await daemon.poll_every_5m(12)  # one hour of polls: 12, at 12:00 ... 12:55
            first_hour = _reports(logs, "feed notizie stale")
            await daemon.poll_every_5m(12)
        await daemon.bridge.aclose()
        return first_hour, _reports(logs, "feed notizie stale")

    assert asyncio.run(go()) == (1, 2)  # min_interval (1 h) bounds the log line
    store.close()


def test_ops_alerts_go_through_the_outbox_into_the_history_held_by_quiet_hours_when_routine(
    tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook, ops_hook: FakeWebhook
) -> None:
    _stale_feed(feed_server)
    config = _config(tmp_path, feed_server, webhook_server, ops_hook)
    store = Store.open(config.bridge.state_dir)
    clock = FakeClock(NOON)
    daemon = _Daemon(config, store, clock)

    async def go() -> None:
        await daemon.poll_every_5m(6)
        [queued] = store.deliveries("ufficio")
        assert (queued.feed_id, queued.urgent, queued.alert.title) == (
            OPS_FEED, False, "channel-bridge: feed notizie stale")
        assert (await daemon.bridge._drain("ufficio")).sent == 1
        # 22:30 in Rome, an hour and more later: the routine report waits for the morning.
        clock.advance((datetime(2026, 11, 20, 21, 30, tzinfo=UTC) - clock.wall()).total_seconds())
        await daemon.poll_every_5m(1)
        held = await daemon.bridge._drain("ufficio")
        assert (held.sent, held.waiting) == (0, 1)
        assert held.next_due == datetime(2026, 11, 21, 6, 0, tzinfo=UTC)  # 07:00 in Rome
        # A paused channel is urgent: it goes out in quiet hours, ahead of the routine one.
        await daemon.bridge._report("avvisi", DrainResult(channel="avvisi", down="avvisi: 401 unauthorized"))
        urgent = await daemon.bridge._drain("ufficio")
        assert (urgent.sent, urgent.waiting) == (1, 1)
        await daemon.bridge.aclose()

    asyncio.run(go())
    assert _ops_posts(ops_hook) == ["channel-bridge: feed notizie stale", "channel-bridge: channel avvisi paused"]
    first = json.loads(ops_hook.deliveries[0].body)
    assert "noticed 2026-11-20 13:00 CET" in first["text"]
    history = [(p.channel, p.feed_id, p.title) for p in store.posts()]
    assert history == [("ufficio", OPS_FEED, "channel-bridge: feed notizie stale"),
                       ("ufficio", OPS_FEED, "channel-bridge: channel avvisi paused")]
    store.close()


def test_an_ops_alert_is_retried_and_never_duplicated_across_runs(
    tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook, ops_hook: FakeWebhook
) -> None:
    # `run --once` from cron every 5 minutes: each run is a new process that finds the feed stale.
    _stale_feed(feed_server)
    config = _config(tmp_path, feed_server, webhook_server, ops_hook)
    store = Store.open(config.bridge.state_dir)
    clock = FakeClock(NOON + timedelta(minutes=1))
    ops_hook.fail_next(503)  # the office's first answer: a transient failure

    async def runs(count: int) -> None:
        for _ in range(count):
            await Bridge(config, store, clock=clock).run_once()
            clock.advance(POLL)

    asyncio.run(runs(6))
    assert _ops_posts(ops_hook) == ["channel-bridge: feed notizie stale"]  # retried, posted once
    assert [p.title for p in store.posts()] == ["channel-bridge: feed notizie stale"]
    assert store.deliveries("ufficio") == []
    store.close()


def test_an_ops_alert_about_the_ops_channel_is_never_queued_to_it(
    tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook, ops_hook: FakeWebhook
) -> None:
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server, webhook_server, ops_hook)
    store = Store.open(config.bridge.state_dir)
    daemon = _Daemon(config, store, FakeClock(NOON))

    async def go() -> list[dict[str, Any]]:
        with capture_logs() as logs:
            for result in (DrainResult(channel="ufficio", down="ufficio: 401 unauthorized"),
                           DrainResult(channel="ufficio", failed=1, errors=["ufficio: 503"])):
                await daemon.bridge._report("ufficio", result)
        await daemon.bridge.aclose()
        return logs

    logs = asyncio.run(go())
    assert store.deliveries("ufficio", state=None) == []
    said = [e for e in logs if e["event"].startswith("ops alert about the ops channel itself")]
    assert [e["subject"] for e in said] == ["channel ufficio paused", "channel ufficio failing"]
    assert all(e["log_level"] == "error" for e in said)
    store.close()


def test_with_the_state_not_writable_the_ops_alert_is_sent_directly(
    tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook, ops_hook: FakeWebhook
) -> None:
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server, webhook_server, ops_hook)
    store = Store.open(config.bridge.state_dir)
    daemon = _Daemon(config, store, FakeClock(NOON))

    async def go() -> None:
        with read_only(config.bridge.state_dir):
            await daemon.bridge._poll_job("notizie")  # its record cannot be written
            for _ in range(500):  # the report runs in the background; bounded
                if ops_hook.deliveries:
                    break
                await asyncio.sleep(0.01)
        await daemon.bridge.aclose()

    asyncio.run(go())
    assert _ops_posts(ops_hook) == [f"channel-bridge: {STATE_PROBLEM}"]
    store.close()


def test_an_urgent_alert_not_posted_within_two_minutes_is_reported_at_once(
    tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook, ops_hook: FakeWebhook
) -> None:
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server, webhook_server, ops_hook)
    config = replace(config, feeds=(replace(config.feeds[0], urgent=True),))
    store = Store.open(config.bridge.state_dir)
    clock = FakeClock(NOON)
    daemon = _Daemon(config, store, clock)
    subject = "channel avvisi urgent alert late"

    async def go() -> list[tuple[float, int]]:
        await daemon.poll_every_5m(1)  # the first poll: nothing new yet
        feed_server.set_feed("/feed.xml", rss([{"title": "Allerta meteo: scuole chiuse domani",
                                                "link": "https://www.comune.esempio.it/allerta",
                                                "pubDate": clock.wall()}]))
        await daemon.bridge._poll(config.feeds[0], force=True)
        webhook_server.fail_next(503, n=1000)
        queued = []
        start = clock.wall()
        for _ in range(14):  # at 0 s, 2 s, 6 s, 14 s, 29 s, 44 s, ...: the urgent backoff
            result = await daemon.bridge._drain("avvisi")
            await daemon.bridge._report("avvisi", result)
            reports = [d for d in store.deliveries("ufficio") if d.alert.title.endswith(subject)]
            queued.append(((clock.wall() - start).total_seconds(), len(reports)))
            assert result.next_due is not None
            clock.advance((result.next_due - clock.wall()).total_seconds())
        await daemon.bridge.aclose()
        return queued

    queued = asyncio.run(go())
    # Not before two minutes (the urgent retries run meanwhile), then at once, and once.
    assert {reports for at, reports in queued if at < 120} == {0}, queued
    assert {reports for at, reports in queued if at >= 120} == {1}, queued
    [report] = [d for d in store.deliveries("ufficio") if d.alert.title.endswith(subject)]
    assert report.urgent and "Allerta meteo: scuole chiuse domani" in report.alert.summary
    store.close()
