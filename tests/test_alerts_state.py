"""Alert state transitions and their storage: new, raised, lowered, ended, never the same level
twice; what is kept for days the source does not speak of; a hand-edited or old state."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from bridge.alerts import state
from bridge.alerts.state import GREEN, ORANGE, RED, YELLOW, Event, Observation, Snapshot, transition

NOW = datetime(2026, 1, 18, 12, 0, tzinfo=UTC)
TODAY, TOMORROW = date(2026, 1, 18), date(2026, 1, 19)
DAYS = frozenset({TODAY, TOMORROW})


def _alert(level: int, day: date = TODAY, *, area: str = "Emil-H1", hazard: str = "idrogeologico",
           expires: datetime | None = None) -> Observation:
    return Observation(kind="dpc", area=area, area_name="Bassa collina piacentino-parmense", hazard=hazard, day=day,
                       level=level, identifier="DPC_1", sent=NOW - timedelta(hours=1),
                       onset=datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=1),
                       expires=expires or datetime(day.year, day.month, day.day, 22, 59, 59, tzinfo=UTC))


def _run(levels: list[list[Observation]]) -> list[tuple[str, int, int | None]]:
    held: dict[str, Observation] = {}
    changes = []
    for observations in levels:
        result = transition(held, Snapshot(tuple(observations), DAYS), NOW)
        held = result.state
        changes.extend((event.change, event.observation.level, event.previous) for event in result.events)
    return changes


def test_each_change_once_and_never_the_same_level_twice() -> None:
    assert _run([[_alert(YELLOW)], [_alert(YELLOW)], [_alert(ORANGE)], [_alert(RED)], [_alert(RED)],
                 [_alert(YELLOW)], []]) == [
        ("new", YELLOW, None), ("raised", ORANGE, YELLOW), ("raised", RED, ORANGE), ("lowered", YELLOW, RED),
        ("ended", YELLOW, YELLOW)]


def test_green_is_never_posted_but_ends_what_it_follows() -> None:
    assert _run([[_alert(GREEN)]]) == []
    assert _run([[_alert(ORANGE)], [_alert(GREEN)], [_alert(GREEN)]]) == [("new", ORANGE, None),
                                                                        ("ended", ORANGE, ORANGE)]


def test_the_highest_level_of_a_key_listed_twice_counts() -> None:
    assert _run([[_alert(YELLOW), _alert(ORANGE), _alert(YELLOW)]]) == [("new", ORANGE, None)]


def test_keys_are_zone_hazard_and_day() -> None:
    snapshot = [_alert(YELLOW), _alert(YELLOW, TOMORROW), _alert(YELLOW, hazard="idraulico"),
                _alert(YELLOW, area="Emil-H2")]
    assert len(transition({}, Snapshot(tuple(snapshot), DAYS), NOW).events) == 4


def test_an_expired_alert_is_skipped_with_its_reason() -> None:
    old = _alert(ORANGE, expires=NOW - timedelta(minutes=1))
    result = transition({}, Snapshot((old,), DAYS), NOW)
    assert result.events == ()
    assert [skipped.reason for skipped in result.skipped] == ["scaduta alle 12:59 del 18/01/2026"]
    assert result.state == {}


def test_an_alert_over_by_its_time_ends_without_a_post() -> None:
    held = {alert.key: alert for alert in [_alert(ORANGE, expires=NOW - timedelta(seconds=1)),
                                           _alert(ORANGE, date(2026, 1, 17))]}
    result = transition(held, Snapshot((), DAYS), NOW)
    assert (result.events, result.state) == ((), {})


def test_a_day_the_bulletin_does_not_speak_of_stands() -> None:
    later = _alert(YELLOW, date(2026, 1, 20))
    result = transition({later.key: later}, Snapshot((), DAYS), NOW)
    assert result.events == ()
    assert result.state == {later.key: later}


def test_an_event_that_waited_past_its_expiry_is_not_posted() -> None:
    event = Event("new", _alert(ORANGE))
    assert state.expired_reason(event, NOW) is None
    assert state.expired_reason(event, datetime(2026, 1, 18, 23, 0, tzinfo=UTC)) == (
        "non inviata: scaduta alle 23:59 del 18/01/2026 mentre attendeva")


def test_the_state_round_trips_through_json() -> None:
    alerts = [_alert(ORANGE), replace(_alert(YELLOW, TOMORROW), replaces=("a", "b"), sender_name="Arpa Piemonte"),
              replace(_alert(RED), kind="meteoalarm", area="IT005", day=None, onset=None, expires=None, web="https://x")]
    held = {alert.key: alert for alert in alerts}
    text = state.state_to_json(held)
    assert json.loads(text)["version"] == state.STATE_VERSION
    assert state.state_from_json(text) == (held, [])


def test_a_hand_edited_or_old_state_gives_what_can_be_read() -> None:
    good = state.observation_to_json(_alert(ORANGE))
    entries = [good, {**good, "level": 9}, {**good, "kind": "rss"}, "text", {**good, "sent": "ieri"},
               {**good, "area": ""}, {**good, "day": "domani"}]
    held, problems = state.state_from_json(json.dumps({"version": 0, "alerts": entries}))
    assert list(held) == [_alert(ORANGE).key]
    assert [problem.split(":")[0] for problem in problems] == [f"alert state, entry {n}" for n in range(2, 8)]
    assert state.state_from_json(json.dumps([good]))[0] == held  # a bare list
    assert state.state_from_json(None) == ({}, [])
    assert state.state_from_json("{") == ({}, ["alert state is not JSON (Expecting property name enclosed in "
                                               "double quotes at line 1): starting afresh"])
    assert state.state_from_json('{"alerts": 3}')[1] == [
        "alert state is not an object with a list of alerts: starting afresh"]
