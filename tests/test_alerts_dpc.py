"""The Department's bulletin read for a comune's zones, and what successive bulletins post: a zone
going yellow -> orange -> gone, tomorrow's part becoming today's, another zone left alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bridge.alerts import dpc, state
from bridge.alerts.cap import Alert, CapError, read_cap
from bridge.alerts.state import ORANGE, YELLOW, Snapshot
from bridge.alerts.text import alert_text, is_urgent

SHARED = Path(__file__).parents[2] / "shared" / "alerts"
FIXTURES = Path(__file__).parent / "fixtures" / "alerts" / "official"


def _bulletin(name: str) -> Alert:
    (alert,) = read_cap((FIXTURES / name).read_bytes(), where=name).alerts
    return alert


def _read(name: str, zones: tuple[str, ...] | None = ("Emil-H1",)) -> Snapshot:
    return dpc.read_bulletin(_bulletin(name), zones, where=name)


def test_the_real_bulletin_gives_tomorrows_yellow_for_its_zone_only() -> None:
    (alert,) = read_cap((SHARED / "02_dpc_cap_Cap_20260730_1511.xml").read_bytes()).alerts
    whole = dpc.read_bulletin(alert)
    (observation,) = whole.observations
    assert (observation.area, observation.area_name, observation.hazard) == ("Tren-A", "Provincia Autonoma di Bolzano",
                                                                            "temporali")
    assert (observation.level, observation.day) == (YELLOW, date(2026, 7, 31))
    assert whole.days == frozenset({date(2026, 7, 30), date(2026, 7, 31)})
    assert dpc.read_bulletin(alert, ["Emil-H1"]).observations == ()


@pytest.mark.parametrize(("event", "hazard"), [
    ("MODERATA CRITICITA' PER RISCHIO IDROGEOLOGICO / ALLERTA ARANCIONE:", "idrogeologico"),
    ("ELEVATA CRITICITA' PER RISCHIO IDRAULICO / ALLERTA ROSSA:", "idraulico"),
    ("ORDINARIA CRITICITA' PER RISCHIO IDROGEOLOGICO PER TEMPORALI / ALLERTA GIALLA:", "idrogeologico per temporali"),
    ("ORDINARIA CRITICITA' PER RISCHIO TEMPORALI", "temporali"),
    ("ALLERTA GIALLA", None),
])
def test_the_risk_comes_from_the_event(event: str, hazard: str | None) -> None:
    assert dpc.hazard_of(event) == hazard


def test_a_bulletin_info_without_risk_or_level_is_named() -> None:
    alert = _bulletin("dpc_1_yellow_tomorrow.xml")
    info = alert.infos[0]
    no_risk = replace(alert, infos=(replace(info, event="ALLERTA GIALLA"),))
    with pytest.raises(CapError, match=r'b\.xml: alert DPC_BULLETIN_2026_01_17_1530: info 1: '
                                       r'the event "ALLERTA GIALLA" names no risk'):
        dpc.read_bulletin(no_risk, where="b.xml")
    no_level = replace(alert, infos=(replace(info, event="PER RISCHIO IDRAULICO", description="",
                                             severity="Unknown"),))
    with pytest.raises(CapError, match="info 1: no level"):
        dpc.read_bulletin(no_level, where="b.xml")


def test_an_info_at_no_alert_states_nothing() -> None:
    alert = _bulletin("dpc_1_yellow_tomorrow.xml")
    calm = replace(alert.infos[0], event="ASSENZA DI FENOMENI SIGNIFICATIVI PREVEDIBILI / NESSUNA ALLERTA",
                   description="", severity="Minor")
    assert dpc.read_bulletin(replace(alert, infos=(calm, *alert.infos))).observations == _read(
        "dpc_1_yellow_tomorrow.xml", None).observations


def test_the_level_falls_back_to_the_description_then_the_severity() -> None:
    info = _bulletin("dpc_1_yellow_tomorrow.xml").infos[0]
    described = replace(info, event="PER RISCHIO IDRAULICO", description="all_ARANCIONE PER OGGI SU:")
    assert dpc.level_of(described) == ORANGE
    assert dpc.level_of(replace(info, event="PER RISCHIO IDRAULICO", description="", severity="Severe")) == ORANGE


def test_without_onset_the_day_comes_from_the_description() -> None:
    alert = _bulletin("dpc_1_yellow_tomorrow.xml")
    info = replace(alert.infos[0], onset=None)
    assert dpc.day_of(info, alert) == date(2026, 1, 18)
    today = replace(info, description="all_GIALLA PER OGGI SU:")
    assert dpc.day_of(today, alert) == date(2026, 1, 17)


def test_a_zone_going_yellow_then_orange_then_gone() -> None:
    held: dict[str, state.Observation] = {}
    posts: list[tuple[str, str]] = []
    polls = [
        ("dpc_1_yellow_tomorrow.xml", datetime(2026, 1, 17, 15, 40, tzinfo=UTC)),
        ("dpc_1_yellow_tomorrow.xml", datetime(2026, 1, 17, 15, 50, tzinfo=UTC)),  # polled again: nothing
        ("dpc_2_yellow_today_orange_tomorrow.xml", datetime(2026, 1, 18, 14, 40, tzinfo=UTC)),
        ("dpc_3_update_orange_today.xml", datetime(2026, 1, 18, 19, 10, tzinfo=UTC)),
        ("dpc_4_zone_gone.xml", datetime(2026, 1, 19, 14, 40, tzinfo=UTC)),
    ]
    for name, now in polls:
        result = state.transition(held, _read(name), now)
        held = result.state
        posts.extend((event.change, alert_text(event, now)) for event in result.events)
    assert posts == [
        # The first poll posts the alert in force (tomorrow's).
        ("new", "Allerta gialla per rischio idrogeologico — domani, domenica 18 gennaio, zona Emil-H1 "
                "(Bassa collina piacentino-parmense). Fonte: Protezione civile nazionale."),
        # The next day's bulletin: its "oggi" yellow is yesterday's "domani" (nothing); its "domani" is new.
        ("new", "Allerta arancione per rischio idrogeologico — domani, lunedì 19 gennaio, zona Emil-H1 "
                "(Bassa collina piacentino-parmense). Fonte: Protezione civile nazionale."),
        # The evening's update raises today's.
        ("raised", "Allerta innalzata ad arancione per rischio idrogeologico — oggi, domenica 18 gennaio, zona Emil-H1 "
                   "(Bassa collina piacentino-parmense). Fonte: Protezione civile nazionale."),
        # The zone leaves the bulletin: the end of Monday's orange (Sunday's is over by its day).
        ("ended", "Cessata allerta arancione per rischio idrogeologico — oggi, lunedì 19 gennaio, zona Emil-H1 "
                  "(Bassa collina piacentino-parmense). Fonte: Protezione civile nazionale."),
    ]
    assert held == {}


def test_the_end_has_the_urgency_of_the_alert_it_ends() -> None:
    first = state.transition({}, _read("dpc_3_update_orange_today.xml"), datetime(2026, 1, 18, 19, 10, tzinfo=UTC))
    assert [is_urgent(event) for event in first.events] == [True, True]
    gone = state.transition(first.state, _read("dpc_4_zone_gone.xml"), datetime(2026, 1, 19, 14, 40, tzinfo=UTC))
    (ended,) = gone.events
    assert (ended.change, ended.observation.level, is_urgent(ended)) == ("ended", ORANGE, True)


def test_other_zones_of_the_bulletin_post_nothing() -> None:
    now = datetime(2026, 1, 18, 19, 10, tzinfo=UTC)
    elsewhere = state.transition({}, _read("dpc_3_update_orange_today.xml", ("Cala-7",)), now)
    assert elsewhere.events == ()
    both = state.transition({}, _read("dpc_3_update_orange_today.xml", ("Emil-H1", "Emil-H2")), now)
    assert [(event.observation.area, event.observation.hazard) for event in both.events] == [
        ("Emil-H1", "idrogeologico"), ("Emil-H1", "idrogeologico"), ("Emil-H2", "idraulico")]


def test_a_regional_cap_source_with_the_same_zones_reads_alike() -> None:
    (alert,) = read_cap((FIXTURES / "cap_atom_feed.xml").read_bytes()).alerts
    (observation,) = dpc.read_bulletin(alert, ["Piem-L"], kind="cap").observations
    now = datetime(2026, 1, 18, 15, 0, tzinfo=UTC)
    assert alert_text(state.Event("new", observation), now) == (
        "Allerta gialla per rischio idrogeologico — oggi, domenica 18 gennaio, zona Piem-L "
        "(Pianura Torinese e Colline). Fonte: Protezione civile.")
    named = replace(observation, sender_name="Arpa Piemonte")
    assert alert_text(state.Event("new", named), now).endswith("Fonte: Arpa Piemonte.")


def test_an_older_bulletin_served_again_changes_nothing() -> None:
    now = datetime(2026, 1, 18, 19, 10, tzinfo=UTC)
    newer = state.transition({}, _read("dpc_3_update_orange_today.xml"), now)
    # A stale mirror serves the afternoon's bulletin again: today's orange is not lowered.
    older = state.transition(newer.state, _read("dpc_2_yellow_today_orange_tomorrow.xml"), now)
    assert older.events == ()
    assert older.state == newer.state
    # Nor does the first bulletin of the day before end what the later one holds.
    assert state.transition(newer.state, _read("dpc_1_yellow_tomorrow.xml"), now).events == ()


@pytest.mark.parametrize("status", ["Exercise", "Test", "Draft", "System"])
def test_a_bulletin_that_is_not_actual_posts_nothing_and_ends_nothing(status: str) -> None:
    now = datetime(2026, 1, 18, 19, 10, tzinfo=UTC)
    held = state.transition({}, _read("dpc_3_update_orange_today.xml"), now).state
    exercise = replace(_bulletin("dpc_4_zone_gone.xml"), status=status)
    drill = replace(_bulletin("dpc_3_update_orange_today.xml"), status=status)
    assert state.transition({}, dpc.read_bulletin(drill, ("Emil-H1",)), now).events == ()
    result = state.transition(held, dpc.read_bulletin(exercise, ("Emil-H1",)), now)
    assert (result.events, result.state) == ((), held)


def test_the_real_index_links_the_zips_holding_the_cap_file() -> None:
    links = dpc.index_links((SHARED / "04_dpc_criticita_index_20200101_1530.json").read_bytes())
    assert links == (
        "https://raw.githubusercontent.com/pcm-dpc/bollettini-criticita-dev/master/BCR/all/20200101_1530_all.zip",
        "https://raw.githubusercontent.com/pcm-dpc/bollettini-criticita-dev/master/BCR/xml/20200101_1530.zip",
    )


@pytest.mark.parametrize(("data", "message"), [
    (b"<html>", "i.json: not JSON"),
    (b"[]", "not a bulletin index"),
    (b'{"today": {"attachment": [{"pdf": "https://x/a.pdf"}, {"all": "file:///etc/passwd"}]}}',
     'links no "all" or "xml" zip'),
])
def test_what_is_not_a_bulletin_index_is_named(data: bytes, message: str) -> None:
    with pytest.raises(CapError, match=message):
        dpc.index_links(data, where="i.json")
