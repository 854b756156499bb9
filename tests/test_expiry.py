"""`max_age` at send time, with a clock the test controls, against the fake WAHA on loopback: an
alert that waited in the queue until its item is too old is marked expired, never posted stale;
one that already went out before a crash is still recorded as posted."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from servers.waha import FakeWaha

from bridge.channels import WahaChannel
from bridge.config import AlertSettings, ChannelConfig, Secret
from bridge.item import Alert
from bridge.outbox import DrainResult, Pacing, drain
from bridge.store import Delivery, Store, history_path

ROME = ZoneInfo("Europe/Rome")
NOON = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment


def delivery(n: int, *, published: datetime | None, created: datetime = NOON) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=f"Avviso {n}", summary="Testo dell'avviso.",
                  link=f"https://www.comune.esempio.it/n/{n}", published=published)
    return Delivery(id=f"d{n}", channel="wa", feed_id="notizie", alert=alert, created=created, order=float(n))


def run_drain(waha: FakeWaha, store: Store, clock: Clock) -> DrainResult:
    config = ChannelConfig(name="wa", type="waha", url=waha.url, chat_id="1@newsletter",
                           api_key=Secret("env:K", "k"), timeout=timedelta(seconds=2))

    async def go() -> DrainResult:
        async with httpx.AsyncClient() as http:
            return await drain(WahaChannel(config, http=http), store=store, alerts=AlertSettings(), timezone=ROME,
                               now=clock, pacing=Pacing(), max_age=lambda feed_id: WEEK)

    return asyncio.run(go())


def test_alerts_that_waited_past_max_age_are_marked_expired_and_the_rest_go(tmp_path: Path,
                                                                            waha_server: FakeWaha) -> None:
    waha_server.api_key = "k"
    store = Store.open(tmp_path)
    store.add_deliveries([
        delivery(1, published=NOON - timedelta(days=2)),
        delivery(2, published=None, created=NOON - timedelta(hours=1)),  # undated: its age is the queue's
        delivery(3, published=NOON - timedelta(hours=2)),
    ])
    clock = Clock(NOON + timedelta(days=6))  # the channel was down for six days
    result = run_drain(waha_server, store, clock)
    assert (result.sent, result.expired, result.failed) == (2, 1, 0)
    assert [p.text.splitlines()[0] for p in waha_server.posts] == ["*Avviso 2*", "*Avviso 3*"]
    (failed,) = store.deliveries("wa", state="failed")
    assert failed.id == "d1"
    assert failed.last_error == "expired: older than its feed's max_age (7d) when it could be sent; not posted"
    assert store.deliveries("wa") == []
    store.close()


def test_an_alert_in_flight_that_went_out_before_a_crash_is_recorded_as_posted_however_old(
        tmp_path: Path, waha_server: FakeWaha) -> None:
    waha_server.api_key = "k"
    store = Store.open(tmp_path)
    clock = Clock(NOON)
    store.add_deliveries([delivery(1, published=NOON - timedelta(days=6))])
    assert run_drain(waha_server, store, clock).sent == 1
    posted = waha_server.posts[0]
    # As if killed after the send and before it was recorded, then down for two days.
    (post,) = list(store.posts())
    store.close()
    history_path(tmp_path, post.posted_at).unlink()
    store = Store.open(tmp_path)
    store.add_deliveries([replace(delivery(1, published=NOON - timedelta(days=6)), in_flight=True,
                                  token=posted.id)])
    clock.moment = NOON + timedelta(days=2)
    result = run_drain(waha_server, store, clock)
    assert (result.sent, result.expired) == (1, 0)
    assert len(waha_server.posts) == 1, "sent again"
    assert [p.delivery_id for p in store.posts()] == [post.delivery_id]
    store.close()
