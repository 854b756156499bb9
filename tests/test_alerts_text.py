"""The Italian text of each alert event: level first, dates in Europe/Rome from instants of mixed
offsets, "avviso meteo" for Meteoalarm, the link, and which events are urgent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bridge.alerts.state import GREEN, ORANGE, RED, YELLOW, Event, Observation
from bridge.alerts.text import alert_text, day_text, instant_text, is_urgent

NOW = datetime(2026, 1, 18, 9, 0, tzinfo=UTC)
ZONE = Observation(kind="dpc", area="Emil-H1", area_name="Bassa collina piacentino-parmense", hazard="idrogeologico",
                   day=date(2026, 1, 18), level=ORANGE, identifier="DPC_1", sent=NOW)
REGION = Observation(kind="meteoalarm", area="IT005", area_name="Piemonte", hazard="vento", day=date(2026, 1, 18),
                     level=ORANGE, identifier="W1", sent=NOW, onset=datetime(2026, 1, 18, 10, 0, tzinfo=UTC),
                     expires=datetime(2026, 1, 19, 5, 0, tzinfo=UTC))


@pytest.mark.parametrize(("event", "text"), [
    (Event("new", ZONE), "Allerta arancione per rischio idrogeologico — oggi, domenica 18 gennaio, zona Emil-H1 "
                         "(Bassa collina piacentino-parmense). Fonte: Protezione civile nazionale."),
    (Event("raised", replace(ZONE, level=RED), ORANGE), "Allerta innalzata a rossa per rischio idrogeologico — oggi, "
     "domenica 18 gennaio, zona Emil-H1 (Bassa collina piacentino-parmense). Fonte: Protezione civile nazionale."),
    (Event("lowered", replace(ZONE, level=YELLOW), ORANGE), "Allerta abbassata a gialla per rischio idrogeologico — "
     "oggi, domenica 18 gennaio, zona Emil-H1 (Bassa collina piacentino-parmense). "
     "Fonte: Protezione civile nazionale."),
    (Event("ended", ZONE, ORANGE), "Cessata allerta arancione per rischio idrogeologico — oggi, domenica 18 gennaio, "
     "zona Emil-H1 (Bassa collina piacentino-parmense). Fonte: Protezione civile nazionale."),
    (Event("new", replace(ZONE, day=date(2026, 1, 19))), "Allerta arancione per rischio idrogeologico — domani, "
     "lunedì 19 gennaio, zona Emil-H1 (Bassa collina piacentino-parmense). Fonte: Protezione civile nazionale."),
    (Event("new", replace(ZONE, day=date(2026, 1, 20), area_name="")), "Allerta arancione per rischio "
     "idrogeologico — martedì 20 gennaio, zona Emil-H1. Fonte: Protezione civile nazionale."),
    (Event("new", REGION), "Avviso meteo arancione (Aeronautica Militare) per vento — da domenica 18 gennaio ore 11:00 "
     "a lunedì 19 gennaio ore 06:00, Piemonte. Fonte: Meteoalarm, Servizio Meteorologico dell'Aeronautica Militare."),
    (Event("raised", replace(REGION, level=RED), ORANGE), "Avviso meteo innalzato a rosso (Aeronautica Militare) per "
     "vento — da domenica 18 gennaio ore 11:00 a lunedì 19 gennaio ore 06:00, Piemonte. Fonte: Meteoalarm, "
     "Servizio Meteorologico dell'Aeronautica Militare."),
    (Event("lowered", replace(REGION, level=YELLOW, onset=NOW), ORANGE), "Avviso meteo abbassato a giallo "
     "(Aeronautica Militare) per vento — fino a lunedì 19 gennaio ore 06:00, Piemonte. Fonte: Meteoalarm, "
     "Servizio Meteorologico dell'Aeronautica Militare."),
    (Event("ended", REGION, ORANGE), "Cessato avviso meteo arancione (Aeronautica Militare) per vento — da domenica "
     "18 gennaio ore 11:00 a lunedì 19 gennaio ore 06:00, Piemonte. Fonte: Meteoalarm, Servizio Meteorologico "
     "dell'Aeronautica Militare."),
])
def test_the_text_of_each_event(event: Event, text: str) -> None:
    assert alert_text(event, NOW) == text
    if event.observation.kind == "meteoalarm":
        assert "allerta" not in text.casefold()


def test_raised_to_orange_reads_ad_arancione() -> None:
    text = alert_text(Event("raised", ZONE, YELLOW), NOW)
    assert text.startswith("Allerta innalzata ad arancione per rischio idrogeologico")
    assert alert_text(Event("raised", REGION, YELLOW), NOW).startswith("Avviso meteo innalzato ad arancione")


def test_the_link_follows_on_its_own_line() -> None:
    text = alert_text(Event("new", ZONE), NOW, link="https://www.comune.piacenza.it/protezione-civile")
    assert text.endswith("Fonte: Protezione civile nazionale.\nhttps://www.comune.piacenza.it/protezione-civile")


def test_instants_of_mixed_offsets_are_shown_in_rome() -> None:
    summer_utc = datetime(2026, 7, 31, 22, 30, tzinfo=UTC)
    assert instant_text(summer_utc) == "sabato 1 agosto ore 00:30"
    assert instant_text(summer_utc.astimezone(timezone(timedelta(hours=1)))) == "sabato 1 agosto ore 00:30"
    assert instant_text(datetime(2026, 1, 18, 23, 30, tzinfo=UTC)) == "lunedì 19 gennaio ore 00:30"
    # "oggi" is today in Rome: at 23:30 UTC on the 18th it is already the 19th there.
    assert day_text(date(2026, 1, 19), datetime(2026, 1, 18, 23, 30, tzinfo=UTC)).startswith("oggi, ")


def test_a_span_without_times_says_so() -> None:
    bare = replace(REGION, onset=None, expires=None)
    assert "validità non indicata" in alert_text(Event("new", bare), NOW)
    assert "da domenica 18 gennaio ore 11:00," in alert_text(Event("new", replace(REGION, expires=None)), NOW)


@pytest.mark.parametrize(("level", "default", "with_yellow"), [
    (YELLOW, False, True), (ORANGE, True, True), (RED, True, True), (GREEN, False, False)])
def test_orange_and_red_are_urgent_yellow_when_asked(level: int, default: bool, with_yellow: bool) -> None:
    event = Event("new", replace(ZONE, level=level))
    assert is_urgent(event) is default
    assert is_urgent(event, {"gialla", "arancione", "rossa"}) is with_yellow
    assert is_urgent(Event("ended", replace(ZONE, level=level), level)) is default
