"""The Italian text of an alert event, from the source's fields only, level first. Pure.

The Department's bulletin is the official civil-protection alert: "Allerta arancione per
rischio idrogeologico — oggi, domenica 18 gennaio, zona Emil-C (Pianura emiliana centrale).
Fonte: Protezione civile nazionale." Meteoalarm's warnings are weather warnings of the
Aeronautica Militare, not alerts: their text says "Avviso meteo" and never "allerta". Every
date shown is the source's instant in Europe/Rome; every level is the source's.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from bridge.alerts.state import LEVEL_NAMES, ROME, Event, Observation

DEFAULT_URGENT_LEVELS = frozenset({"arancione", "rossa"})
WEEKDAYS = ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica")
MONTHS = ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
          "ottobre", "novembre", "dicembre")
# Meteoalarm's levels with the masculine of "avviso".
WARNING_LEVELS = {1: "verde", 2: "giallo", 3: "arancione", 4: "rosso"}
SOURCES = {"dpc": "Protezione civile nazionale", "cap": "Protezione civile"}


def is_urgent(event: Event, urgent_levels: Collection[str] = DEFAULT_URGENT_LEVELS) -> bool:
    """Whether the event goes out on the urgent path: its alert's level (for an end, the level
    of the alert that ends) is one of `urgent_levels` ("gialla", "arancione", "rossa"); orange
    and red by default."""
    return LEVEL_NAMES.get(event.observation.level, "") in urgent_levels


def date_text(day: date) -> str:
    """"domenica 18 gennaio"."""
    return f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"


def day_text(day: date, now: datetime) -> str:
    """"oggi, domenica 18 gennaio", "domani, lunedì 19 gennaio" or "martedì 20 gennaio", counted
    from `now` in Europe/Rome."""
    named = date_text(day)
    today = now.astimezone(ROME).date()
    if day == today:
        return f"oggi, {named}"
    if (day - today).days == 1:
        return f"domani, {named}"
    return named


def instant_text(moment: datetime) -> str:
    """"venerdì 31 luglio ore 11:00", in Europe/Rome."""
    local = moment.astimezone(ROME)
    return f"{date_text(local.date())} ore {local:%H:%M}"


def alert_text(event: Event, now: datetime, link: str | None = None) -> str:
    """The post for an event: one short Italian paragraph, then `link` (the comune's
    civil-protection page, or the source's page) on a line of its own when given."""
    observation = event.observation
    if observation.kind == "meteoalarm":
        body = _warning_text(event, observation, now)
    else:
        body = _alert_body(event, observation, now)
    return f"{body}\n{link}" if link else body


def _to(level: str) -> str:
    """"a gialla", "ad arancione"."""
    return f"ad {level}" if level[0] in "aeiou" else f"a {level}"


def _alert_body(event: Event, observation: Observation, now: datetime) -> str:
    level = LEVEL_NAMES[observation.level]
    head = {
        "new": f"Allerta {level}",
        "raised": f"Allerta innalzata {_to(level)}",
        "lowered": f"Allerta abbassata {_to(level)}",
        "ended": f"Cessata allerta {level}",
    }[event.change]
    when = day_text(observation.day, now) if observation.day else _span(observation, now)
    area = f"zona {observation.area}" + (f" ({observation.area_name})" if observation.area_name else "")
    source = SOURCES["dpc"] if observation.kind == "dpc" else observation.sender_name or SOURCES["cap"]
    return f"{head} per rischio {observation.hazard} — {when}, {area}. Fonte: {source}."


def _warning_text(event: Event, observation: Observation, now: datetime) -> str:
    level = WARNING_LEVELS[observation.level]
    head = {
        "new": f"Avviso meteo {level}",
        "raised": f"Avviso meteo innalzato {_to(level)}",
        "lowered": f"Avviso meteo abbassato {_to(level)}",
        "ended": f"Cessato avviso meteo {level}",
    }[event.change]
    where = observation.area_name or observation.area
    return (f"{head} (Aeronautica Militare) per {observation.hazard} — {_span(observation, now)}, {where}. "
            "Fonte: Meteoalarm, Servizio Meteorologico dell'Aeronautica Militare.")


def _span(observation: Observation, now: datetime) -> str:
    start, end = observation.onset, observation.expires
    if start is not None and start > now and end is not None:
        first, last = start.astimezone(ROME), end.astimezone(ROME)
        if first.date() == last.date():
            return f"{date_text(first.date())} dalle {first:%H:%M} alle {last:%H:%M}"
        return f"da {instant_text(start)} a {instant_text(end)}"
    if end is not None:
        return f"fino a {instant_text(end)}"
    if start is not None:
        return f"da {instant_text(start)}"
    return "validità non indicata"
