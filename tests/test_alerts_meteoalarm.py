"""Meteoalarm's Italian feed: the real sample, and feeds written in its format for an update with
references, a green and an expired warning, an English-only one; the text says "avviso meteo"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.alerts import meteoalarm, state
from bridge.alerts.cap import CapError
from bridge.alerts.state import ORANGE, RED
from bridge.alerts.text import alert_text, is_urgent

SHARED = Path(__file__).parents[2] / "shared" / "alerts"
FIXTURES = Path(__file__).parent / "fixtures" / "alerts" / "official"


def _feed(name: str, regions: tuple[str, ...] | None = None) -> state.Snapshot:
    return meteoalarm.snapshot(meteoalarm.read_feed((FIXTURES / name).read_bytes(), where=name), regions)


def test_the_real_feed_posts_what_is_in_force_and_never_green_or_expired() -> None:
    alerts = meteoalarm.read_feed((SHARED / "01_meteoalarm_IT_feeds-api_sample.json").read_bytes())
    assert len(alerts) == 10
    now = datetime(2026, 7, 31, 12, 0, tzinfo=UTC)
    result = state.transition({}, meteoalarm.snapshot(alerts), now)
    assert [(e.change, e.observation.area, e.observation.hazard, e.observation.level) for e in result.events] == [
        ("new", "IT012", "temperature elevate", ORANGE),
        ("new", "IT004", "temporali", 2),
        ("new", "IT005", "pioggia", 2),
        ("new", "IT003", "temperature elevate", ORANGE),
        ("new", "IT002", "temporali", 2),
        ("new", "IT017", "temperature elevate", RED),
    ]
    assert sorted((s.observation.area, s.reason) for s in result.skipped) == [
        ("IT004", "scaduta alle 23:59 del 28/07/2026"),  # the green one, expired too
        ("IT012", "scaduta alle 19:59 del 26/07/2026"),
        ("IT012", "scaduta alle 19:59 del 26/07/2026"),
        ("IT018", "scaduta alle 01:59 del 30/07/2026"),
    ]
    lazio = result.events[0]
    assert alert_text(lazio, now) == (
        "Avviso meteo arancione (Aeronautica Militare) per temperature elevate — fino a domenica 2 agosto ore 01:59, "
        "Lazio. Fonte: Meteoalarm, Servizio Meteorologico dell'Aeronautica Militare.")
    basilicata = result.events[-1]
    assert alert_text(basilicata, now) == (
        "Avviso meteo rosso (Aeronautica Militare) per temperature elevate — domenica 2 agosto dalle 02:00 alle 23:59, "
        "Basilicata. Fonte: Meteoalarm, Servizio Meteorologico dell'Aeronautica Militare.")
    assert all("allerta" not in alert_text(event, now).casefold() for event in result.events)


def test_the_italian_info_is_preferred() -> None:
    alerts = meteoalarm.read_feed((SHARED / "01_meteoalarm_IT_feeds-api_sample.json").read_bytes())
    info = meteoalarm.chosen_info(alerts[0])
    assert info is not None and info.language == "it-IT"


def test_a_region_not_followed_posts_nothing() -> None:
    result = state.transition({}, _feed("meteoalarm_1_orange_green_expired_english.json", ("IT012",)),
                              datetime(2026, 1, 18, 10, 30, tzinfo=UTC))
    assert result.events == ()


def test_green_expired_and_english_only() -> None:
    now = datetime(2026, 1, 18, 10, 30, tzinfo=UTC)
    result = state.transition({}, _feed("meteoalarm_1_orange_green_expired_english.json"), now)
    assert [(event.change, event.observation.area) for event in result.events] == [("new", "IT005"), ("new", "IT002")]
    assert sorted((s.observation.area, s.reason) for s in result.skipped) == [
        ("IT003", "scaduta alle 00:00 del 17/01/2026"), ("IT004", "livello verde")]
    english_only = result.events[1]
    assert alert_text(english_only, now) == (
        "Avviso meteo giallo (Aeronautica Militare) per pioggia — domenica 18 gennaio dalle 12:00 alle 23:59, "
        "Trentino Alto Adige. Fonte: Meteoalarm, Servizio Meteorologico dell'Aeronautica Militare.")
    assert (is_urgent(result.events[0]), is_urgent(english_only)) == (True, False)
    assert is_urgent(english_only, urgent_levels={"gialla", "arancione", "rossa"})


def test_an_update_replaces_the_warning_it_references_then_a_green_update_ends_it() -> None:
    first_now = datetime(2026, 1, 18, 10, 30, tzinfo=UTC)
    first = state.transition({}, _feed("meteoalarm_1_orange_green_expired_english.json", ("IT005",)), first_now)
    assert [event.change for event in first.events] == ["new"]
    # The feed still lists the orange warning beside the red one that references it.
    now = datetime(2026, 1, 18, 14, 10, tzinfo=UTC)
    second = state.transition(first.state, _feed("meteoalarm_2_update_red.json", ("IT005",)), now)
    (raised,) = second.events
    assert (raised.change, raised.previous, raised.observation.level) == ("raised", ORANGE, RED)
    assert alert_text(raised, now) == (
        "Avviso meteo innalzato a rosso (Aeronautica Militare) per vento — da domenica 18 gennaio ore 16:00 a "
        "lunedì 19 gennaio ore 06:00, Piemonte. Fonte: Meteoalarm, Servizio Meteorologico dell'Aeronautica Militare.")
    # Polled again: the same level twice is not news.
    assert state.transition(second.state, _feed("meteoalarm_2_update_red.json", ("IT005",)), now).events == ()
    # A green update (another day) references the red one: the red one ends, with its urgency.
    later = datetime(2026, 1, 19, 2, 10, tzinfo=UTC)
    third = state.transition(second.state, _feed("meteoalarm_3_update_green.json", ("IT005",)), later)
    (ended,) = third.events
    assert (ended.change, ended.observation.level, is_urgent(ended)) == ("ended", RED, True)
    assert alert_text(ended, later) == (
        "Cessato avviso meteo rosso (Aeronautica Militare) per vento — fino a lunedì 19 gennaio ore 06:00, Piemonte. "
        "Fonte: Meteoalarm, Servizio Meteorologico dell'Aeronautica Militare.")
    assert third.state == {}


def test_a_warning_gone_from_the_feed_has_ended() -> None:
    now = datetime(2026, 1, 18, 10, 30, tzinfo=UTC)
    first = state.transition({}, _feed("meteoalarm_1_orange_green_expired_english.json", ("IT002",)), now)
    empty = state.transition(first.state, state.Snapshot(observations=(), days=None), now)
    assert [(event.change, event.observation.area) for event in empty.events] == [("ended", "IT002")]


@pytest.mark.parametrize(("data", "message"), [
    (b"<html/>", "f.json: not JSON"),
    (b"[]", 'not a Meteoalarm feed: no "warnings" list'),
    (b'{"warnings": [{"uuid": 1}]}', 'warning 1 has no "alert"'),
    (b'{"warnings": [{"alert": {"identifier": "a", "sender": "s"}}]}', "warning 1: not a CAP alert: no sent"),
    (b'{"warnings": [{"alert": {"identifier": "a", "sender": "s", "sent": "2026-01-18T10:00:00+01:00", '
     b'"info": [{"area": [{"areaDesc": "X", "geocode": "IT005"}]}]}}]}', "info 1: geocode: expected a list"),
])
def test_what_is_not_the_feed_is_named(data: bytes, message: str) -> None:
    with pytest.raises(CapError, match=message):
        meteoalarm.read_feed(data, where="f.json")


def test_a_warning_that_is_not_actual_is_not_read() -> None:
    alerts = meteoalarm.read_feed((FIXTURES / "meteoalarm_1_orange_green_expired_english.json").read_bytes())
    drills = tuple(replace(alert, status="Exercise") for alert in alerts)
    assert meteoalarm.snapshot(drills).observations == ()
