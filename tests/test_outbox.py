"""The delivery engine with a controllable clock, against the fake WAHA on loopback."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from servers.waha import FakeWaha

from bridge.channels import WahaChannel
from bridge.channels.console import ConsoleChannel
from bridge.config import AlertSettings, ChannelConfig, Secret, TimeWindow, parse_time_window
from bridge.item import Alert
from bridge.ops import OpsReporter
from bridge.outbox import (
    MAX_RETRY,
    URGENT_DEADLINE,
    DrainResult,
    Pacing,
    day_start,
    drain,
    local_moment,
    next_day_start,
    overdue_urgent,
    quiet_hours_end,
    retry_delay,
)
from bridge.store import Delivery, Store

ROME = ZoneInfo("Europe/Rome")
NOON = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)  # 12:00 in Rome
NIGHT = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # 23:00 in Rome
PACED = Pacing()


class Clock:
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


def delivery(n: int, *, urgent: bool = False) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=f"Avviso {n}", summary="Testo dell'avviso.",
                  link=f"https://www.comune.esempio.it/n/{n}", urgent=urgent)
    return Delivery(id=f"d{n}", channel="wa", feed_id="notizie", alert=alert, created=NOON, order=float(n),
                    urgent=urgent)


def run_drain(waha: FakeWaha, store: Store, clock: Clock, alerts: AlertSettings | None = None,
              *, once: bool = False, key: str = "k", pacing: Pacing | None = PACED) -> DrainResult:
    config = ChannelConfig(name="wa", type="waha", url=waha.url, chat_id="1@newsletter",
                           api_key=Secret("env:K", key), timeout=timedelta(seconds=2))

    async def go() -> DrainResult:
        async with httpx.AsyncClient() as http:
            return await drain(WahaChannel(config, http=http), store=store, alerts=alerts or AlertSettings(),
                               timezone=ROME, now=clock, once=once, pacing=pacing)

    return asyncio.run(go())


def sent_titles(waha: FakeWaha) -> list[str]:
    return [p.text.splitlines()[0] for p in waha.posts]


def test_sends_in_order_and_records_history(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(2), delivery(1), delivery(3, urgent=True)])
    result = run_drain(waha_server, store, Clock(NOON))
    assert (result.sent, result.waiting, result.next_due) == (3, 0, None)
    assert sent_titles(waha_server) == ["*Avviso 3*", "*Avviso 1*", "*Avviso 2*"]
    assert [p.remote_id for p in store.posts()] == [p.id for p in waha_server.posts]
    store.close()


def test_transient_failure_keeps_order_and_retries_after_backoff(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    clock = Clock(NOON)
    waha_server.fail_next(1, 500)
    first = run_drain(waha_server, store, clock)
    assert (first.sent, first.failed, first.waiting) == (0, 1, 2)
    assert first.next_due == NOON + retry_delay(1)
    clock.advance(timedelta(seconds=10))
    assert run_drain(waha_server, store, clock).sent == 0  # not yet: nothing hammers the gateway
    clock.advance(retry_delay(1))
    assert run_drain(waha_server, store, clock).sent == 2
    assert sent_titles(waha_server) == ["*Avviso 1*", "*Avviso 2*"]
    store.close()


def test_an_urgent_alert_is_retried_within_seconds_and_still_honours_retry_after(
        tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1, urgent=True)])
    clock = Clock(NOON)
    waha_server.fail_next(3, 500)
    dues = []
    for _ in range(3):
        result = run_drain(waha_server, store, clock)
        assert result.sent == 0 and result.next_due is not None
        dues.append(result.next_due - clock.moment)
        clock.moment = result.next_due
    assert dues == [timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8)]
    assert run_drain(waha_server, store, clock).sent == 1
    # The gateway's Retry-After wins over the urgent backoff.
    store.add_deliveries([delivery(2, urgent=True)])
    waha_server.fail_next(1, 429, retry_after=60)
    assert run_drain(waha_server, store, clock).next_due == clock.moment + timedelta(seconds=60)
    store.close()


def test_the_urgent_backoff_stays_in_seconds_and_the_routine_one_is_unchanged() -> None:
    assert [retry_delay(n, urgent=True).total_seconds() for n in range(1, 7)] == [2, 4, 8, 15, 15, 15]
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_delay(12) == MAX_RETRY


def test_an_urgent_alert_is_overdue_two_minutes_after_it_was_queued() -> None:
    routine, urgent = delivery(1), delivery(2, urgent=True)
    held = replace(delivery(3, urgent=True), state="awaiting")
    assert overdue_urgent([routine, urgent, held], NOON + URGENT_DEADLINE - timedelta(seconds=1)) == []
    assert overdue_urgent([routine, urgent, held], NOON + URGENT_DEADLINE) == [urgent]


def test_retry_after_is_honoured_to_the_second(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    clock = Clock(NOON)
    waha_server.fail_next(1, 429, retry_after=120)
    assert run_drain(waha_server, store, clock).next_due == NOON + timedelta(seconds=120)
    clock.advance(timedelta(seconds=119))
    assert run_drain(waha_server, store, clock).sent == 0
    clock.advance(timedelta(seconds=1))
    assert run_drain(waha_server, store, clock).sent == 1
    store.close()


def test_bad_key_pauses_the_channel_and_loses_nothing(tmp_path: Path, waha_server: FakeWaha) -> None:
    waha_server.api_key = "right"
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2), delivery(3)])
    clock = Clock(NOON)
    result = run_drain(waha_server, store, clock, key="wrong")
    assert result.down and result.failed == 1 and result.waiting == 3
    assert store.channel_pause("wa") == result.down
    assert len(waha_server.requests) <= 2  # one attempt (prepare, send): the queue was not burnt through
    assert "wrong" not in " ".join(result.errors)
    clock.advance(timedelta(hours=1))
    paused = run_drain(waha_server, store, clock, key="right")
    assert (paused.sent, paused.waiting) == (0, 3)  # still paused: a reload or a probe resumes it
    store.set_channel_pause("wa", None)
    assert run_drain(waha_server, store, clock, key="right").sent == 3
    assert sent_titles(waha_server) == ["*Avviso 1*", "*Avviso 2*", "*Avviso 3*"]
    store.close()


def test_rejected_alert_is_resent_once_in_plain_form(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    waha_server.fail_next(1, 400)
    result = run_drain(waha_server, store, Clock(NOON))
    assert (result.sent, result.given_up, result.waiting) == (2, 0, 0)
    assert [p.text.splitlines()[0] for p in waha_server.posts] == ["Avviso 1", "*Avviso 2*"]
    store.close()


def test_rejected_twice_is_marked_failed_and_the_queue_goes_on(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    waha_server.fail_next(2, 400)
    result = run_drain(waha_server, store, Clock(NOON))
    assert (result.sent, result.given_up, result.waiting) == (1, 1, 0)
    assert sent_titles(waha_server) == ["*Avviso 2*"]
    assert [d.id for d in store.deliveries("wa", state="failed")] == ["d1"]
    store.close()


def test_beyond_max_per_day_alerts_wait_and_go_as_one_digest(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    capped = Pacing(quiet_hours=False, max_per_day=2)
    store.add_deliveries([delivery(n) for n in range(1, 6)] + [delivery(9, urgent=True)])
    clock = Clock(NOON)
    result = run_drain(waha_server, store, clock, pacing=capped)
    assert sent_titles(waha_server) == ["*Avviso 9*", "*Avviso 1*"]  # the urgent one counts too
    assert result.next_due == datetime(2026, 11, 21, 0, 0, tzinfo=ROME)
    assert result.waiting == 4
    clock.moment = datetime(2026, 11, 21, 8, 0, tzinfo=ROME)
    after = run_drain(waha_server, store, clock, pacing=capped)
    assert after.waiting == 0
    digest = waha_server.posts[-1].text
    assert len(waha_server.posts) == 3
    assert digest.startswith("*Riepilogo: 4 notizie*")
    assert all(f"https://www.comune.esempio.it/n/{n}" in digest for n in (2, 3, 4, 5))
    assert {p.delivery_id for p in store.posts()} == {"d1", "d2", "d3", "d4", "d5", "d9"}
    store.close()


def test_quiet_hours_hold_routine_alerts_and_pass_urgent_ones(tmp_path: Path, waha_server: FakeWaha) -> None:
    alerts = AlertSettings(quiet_hours=TimeWindow(time(22, 0), time(7, 0)))
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2, urgent=True)])
    clock = Clock(NIGHT)
    result = run_drain(waha_server, store, clock, alerts)
    assert sent_titles(waha_server) == ["*Avviso 2*"]
    morning = datetime(2026, 11, 21, 7, 0, tzinfo=ROME)
    assert result.next_due == morning
    clock.moment = morning
    assert run_drain(waha_server, store, clock, alerts).sent == 1
    store.close()


def test_min_gap_paces_posts(tmp_path: Path, waha_server: FakeWaha) -> None:
    alerts = AlertSettings()
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    clock = Clock(NOON)
    gap = Pacing(min_gap=timedelta(minutes=2))
    result = run_drain(waha_server, store, clock, alerts, pacing=gap)
    assert (result.sent, result.next_due) == (1, NOON + timedelta(minutes=2))
    clock.advance(timedelta(minutes=2))
    assert run_drain(waha_server, store, clock, alerts, pacing=gap).sent == 1
    store.close()


def test_once_tries_everything_despite_a_failure(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    waha_server.fail_next(1, 503)
    result = run_drain(waha_server, store, Clock(NOON), once=True)
    assert (result.sent, result.failed, result.waiting) == (1, 1, 1)
    store.close()


def test_an_hour_long_outage_then_recovery_delivers_all_in_order_once(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(n) for n in (1, 2, 3)])
    clock = Clock(NOON)
    waha_server.fail_next(10_000, 503)
    attempts = 0
    while clock.moment < NOON + timedelta(hours=1):  # the daemon's worker, with the clock driven by the test
        result = run_drain(waha_server, store, clock)
        attempts += 1
        assert result.sent == 0 and result.next_due is not None
        clock.moment = result.next_due
    # Backoff from 30 s doubling to 30 min: a handful of tries in the hour, never a hammering.
    assert attempts <= 8
    waha_server.clear_failures()
    clock.advance(MAX_RETRY)
    assert run_drain(waha_server, store, clock).sent == 3
    assert sent_titles(waha_server) == ["*Avviso 1*", "*Avviso 2*", "*Avviso 3*"]
    assert [p.delivery_id for p in store.posts()] == ["d1", "d2", "d3"]
    store.close()


def test_a_last_post_in_the_future_does_not_hold_the_queue(tmp_path: Path, waha_server: FakeWaha) -> None:
    """The wall clock stepped back an hour after the last post: min_gap must not hold the next
    one for the hour (nor for the gap after it: the post is history, not a deadline)."""
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    clock = Clock(NOON)
    gap = Pacing(min_gap=timedelta(minutes=2))
    assert run_drain(waha_server, store, clock, pacing=gap).sent == 1
    clock.advance(-timedelta(hours=1) + timedelta(seconds=5))  # the step back, 5 s after the post
    result = run_drain(waha_server, store, clock, pacing=gap)
    assert (result.sent, result.waiting) == (1, 0)
    store.add_deliveries([delivery(3)])
    paced = run_drain(waha_server, store, clock, pacing=gap)
    assert (paced.sent, paced.next_due) == (0, clock.moment + timedelta(minutes=2))  # paced from that post
    store.close()


def test_an_ops_alert_sent_in_the_future_does_not_silence_the_next(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock(NOON)
    ops = OpsReporter(ConsoleChannel(ChannelConfig(name="ops", type="console")), min_interval=timedelta(hours=1),
                      now=clock)

    async def report() -> bool:
        return await ops.report("feed notizie failing", "timeout")

    assert asyncio.run(report())
    clock.advance(timedelta(minutes=10))
    assert not asyncio.run(report())  # rate limited
    clock.advance(-timedelta(hours=1))  # the wall clock steps back: the last alert is "in the future"
    assert asyncio.run(report())
    assert not asyncio.run(report())
    assert capsys.readouterr().out.count("channel-bridge: feed notizie failing") == 2


# -- quiet hours and days around the changes of daylight saving time (Europe/Rome) -------------
# 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC (02:00-03:00 does not exist);
# 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC (02:00-03:00 comes twice).


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


SPRING, AUTUMN = 3, 10
# window, moment (UTC), end of the quiet period it falls in (UTC), or None outside quiet hours.
QUIET_HOURS = [
    # Spring night.
    ("22:00-07:00", utc(SPRING, 28, 22, 30), utc(SPRING, 29, 5)),  # 23:30 CET -> 07:00 CEST
    ("22:00-07:00", utc(SPRING, 29, 1, 30), utc(SPRING, 29, 5)),  # 03:30 CEST
    ("22:00-07:00", utc(SPRING, 29, 5), None),  # 07:00 CEST
    ("01:00-02:30", utc(SPRING, 28, 23, 59), None),  # 00:59 CET
    ("01:00-02:30", utc(SPRING, 29, 0, 30), utc(SPRING, 29, 1)),  # 01:30 CET -> 03:00 CEST, not 03:30
    ("01:00-02:30", utc(SPRING, 29, 0, 59), utc(SPRING, 29, 1)),  # 01:59 CET
    ("01:00-02:30", utc(SPRING, 29, 1), None),  # 03:00 CEST
    ("02:15-02:45", utc(SPRING, 29, 0, 59), None),  # wholly in the skipped hour: no quiet that night
    ("02:15-02:45", utc(SPRING, 29, 1, 10), None),
    ("02:15-02:45", utc(SPRING, 28, 1, 20), utc(SPRING, 28, 1, 45)),  # the night before: as usual
    ("00:00-03:00", utc(SPRING, 28, 23), utc(SPRING, 29, 1)),  # 00:00 CET -> 03:00 CEST (two hours)
    ("00:00-03:00", utc(SPRING, 29, 0, 45), utc(SPRING, 29, 1)),
    ("00:00-03:00", utc(SPRING, 29, 1), None),
    # Autumn night: the repeated hour ends a period at its first occurrence.
    ("22:00-07:00", utc(AUTUMN, 25, 1, 30), utc(AUTUMN, 25, 6)),  # 02:30 CET (second) -> 07:00 CET
    ("22:00-07:00", utc(AUTUMN, 24, 20), utc(AUTUMN, 25, 6)),  # 22:00 CEST
    ("01:00-02:30", utc(AUTUMN, 25, 0, 10), utc(AUTUMN, 25, 0, 30)),  # 02:10 CEST -> 02:30 CEST
    ("01:00-02:30", utc(AUTUMN, 25, 0, 45), None),  # 02:45 CEST
    ("01:00-02:30", utc(AUTUMN, 25, 1, 10), None),  # 02:10 CET: the repeat is not quiet again
    ("02:15-02:45", utc(AUTUMN, 25, 0, 20), utc(AUTUMN, 25, 0, 45)),  # 02:20 CEST
    ("02:15-02:45", utc(AUTUMN, 25, 1, 20), None),  # 02:20 CET
    ("00:00-03:00", utc(AUTUMN, 25, 0, 30), utc(AUTUMN, 25, 2)),  # 02:30 CEST -> 03:00 CET (four hours)
    ("00:00-03:00", utc(AUTUMN, 25, 1, 30), utc(AUTUMN, 25, 2)),  # 02:30 CET
    ("00:00-03:00", utc(AUTUMN, 25, 2), None),
]


@pytest.mark.parametrize(("window", "moment", "end"), QUIET_HOURS)
def test_quiet_hours_across_the_changes_of_the_clocks(window: str, moment: datetime, end: datetime | None) -> None:
    alerts = AlertSettings(quiet_hours=parse_time_window(window))
    # Compared as instants: aware datetimes of different zones around a change compare unequal.
    assert quiet_hours_end(moment, alerts, ROME).timestamp() == (end or moment).timestamp()


@pytest.mark.parametrize(
    ("moment", "start", "end"),
    [
        (utc(SPRING, 28, 22, 30), utc(SPRING, 27, 23), utc(SPRING, 28, 23)),  # 23:30 CET, the day before
        (utc(SPRING, 29, 1, 30), utc(SPRING, 28, 23), utc(SPRING, 29, 22)),  # a day of 23 hours
        (utc(AUTUMN, 25, 0, 30), utc(AUTUMN, 24, 22), utc(AUTUMN, 25, 23)),  # 02:30 CEST, a day of 25 hours
        (utc(AUTUMN, 25, 1, 30), utc(AUTUMN, 24, 22), utc(AUTUMN, 25, 23)),  # 02:30 CET, the same day
        (utc(AUTUMN, 25, 22, 59), utc(AUTUMN, 24, 22), utc(AUTUMN, 25, 23)),
    ],
)
def test_days_across_the_changes_of_the_clocks(moment: datetime, start: datetime, end: datetime) -> None:
    assert (day_start(moment, ROME).timestamp(), next_day_start(moment, ROME).timestamp()) == (
        start.timestamp(), end.timestamp())


def test_a_midnight_that_does_not_exist_starts_the_day_at_the_change() -> None:
    santiago = ZoneInfo("America/Santiago")  # 2026-09-06: 00:00 -04 -> 01:00 -03, at 04:00 UTC
    moment = utc(9, 6, 12)
    assert day_start(moment, santiago) == utc(9, 6, 4)
    assert local_moment(date(2026, 9, 6), time(0, 30), santiago) == utc(9, 6, 4)


def test_quiet_hours_ending_in_the_skipped_hour_release_the_queue_at_the_change(
    tmp_path: Path, waha_server: FakeWaha
) -> None:
    alerts = AlertSettings(quiet_hours=parse_time_window("01:00-02:30"))
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    clock = Clock(utc(SPRING, 29, 0, 30))  # 01:30 CET
    held = run_drain(waha_server, store, clock, alerts)
    assert held.sent == 0 and held.next_due is not None
    assert held.next_due.timestamp() == utc(SPRING, 29, 1).timestamp()  # 03:00 CEST
    clock.moment = held.next_due
    assert run_drain(waha_server, store, clock, alerts).sent == 1
    store.close()


def test_max_per_day_waits_for_the_next_local_day_across_the_changes(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    capped = Pacing(quiet_hours=False, max_per_day=1)
    store.add_deliveries([delivery(1), delivery(2)])
    clock = Clock(utc(SPRING, 29, 10))  # noon CEST on the 23-hour day
    result = run_drain(waha_server, store, clock, pacing=capped)
    assert result.sent == 1 and result.next_due is not None
    assert result.next_due.timestamp() == utc(SPRING, 29, 22).timestamp()  # 30 March, 00:00 CEST
    clock.moment = utc(SPRING, 29, 21, 59)
    assert run_drain(waha_server, store, clock, pacing=capped).sent == 0
    clock.moment = utc(SPRING, 29, 22)
    assert run_drain(waha_server, store, clock, pacing=capped).sent == 1
    store.close()


def test_a_send_left_in_flight_is_asked_of_the_channel_before_anything_goes_ahead_of_it(
        tmp_path: Path, waha_server: FakeWaha) -> None:
    # A crash left "Avviso 1" in flight: WAHA had posted it (its pre-generated id "tok-1").
    # Since then 60 urgent alerts came in: they go first, and WAHA reads back only its newest
    # posts; asked only at its turn, the post would be out of sight and sent again.
    store = Store.open(tmp_path)
    waha_server.api_key = "k"
    store.add_deliveries([delivery(1)])
    store.update_delivery(replace(store.deliveries()[0], in_flight=True, token="tok-1"))
    waha_server.seed_post("1@newsletter", "*Avviso 1*", message_id="tok-1")
    store.add_deliveries([replace(delivery(n, urgent=True), order=float(n)) for n in range(100, 160)])
    result = run_drain(waha_server, store, Clock(NOON))
    assert result.sent == 61  # the 60 urgent alerts, and "Avviso 1" recorded as posted
    titles = sent_titles(waha_server)
    assert titles.count("*Avviso 1*") == 1 and len(titles) == 61  # the seeded post and the 60 urgent ones
    assert next(iter(store.posts())).remote_id == "true_1@newsletter_tok-1"  # recorded first, not sent again
    store.close()
