"""Meteoalarm's JSON feed of Italy's weather warnings (the Aeronautica Militare's). Pure.

Each item holds one CAP alert with an `en-GB` and an `it-IT` info; `awareness_level` is "3;
orange; Severe", `awareness_type` "5; High-temperature"; areas are whole regions by EMMA_ID.
The feed keeps expired and green warnings; an update has an identifier of its own and names
the warning it replaces in `references`. These are weather warnings, not the civil-protection
alerts: the text says "avviso meteo".
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from bridge.alerts.cap import Alert, CapError, Info, alert_from_fields
from bridge.alerts.state import ROME, Observation, Snapshot

REGION_GEOCODE = "EMMA_ID"

# awareness_type numbers (Meteoalarm's, the same in every language) -> the Italian hazard.
HAZARDS = {
    1: "vento", 2: "neve e ghiaccio", 3: "temporali", 4: "nebbia", 5: "temperature elevate",
    6: "temperature basse", 7: "fenomeni costieri", 8: "incendi boschivi", 9: "valanghe", 10: "pioggia",
    12: "alluvioni", 13: "pioggia e alluvioni",
}


def read_feed(data: bytes, *, where: str = "feed") -> tuple[Alert, ...]:
    """The CAP alerts of the feed's bytes. Raise CapError when it is not Meteoalarm's JSON."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CapError(f"{where}: not JSON ({error})") from None
    warnings = document.get("warnings") if isinstance(document, Mapping) else None
    if not isinstance(warnings, list):
        raise CapError(f'{where}: not a Meteoalarm feed: no "warnings" list')
    alerts = []
    for number, warning in enumerate(warnings, start=1):
        alert = warning.get("alert") if isinstance(warning, Mapping) else None
        if not isinstance(alert, Mapping):
            raise CapError(f'{where}: warning {number} has no "alert"')
        alerts.append(alert_from_fields(alert, f"{where}: warning {number}"))
    return tuple(alerts)


def chosen_info(alert: Alert) -> Info | None:
    """The info to read: `it-IT` when there is one, else `en-GB`, else the first."""
    by_language = {info.language.casefold(): info for info in alert.infos}
    return by_language.get("it-it") or by_language.get("en-gb") or (alert.infos[0] if alert.infos else None)


def _leading_number(text: str | None) -> int | None:
    head = (text or "").split(";", 1)[0].strip()
    return int(head) if head.isdigit() else None


def snapshot(alerts: tuple[Alert, ...], regions: Collection[str] | None = None) -> Snapshot:
    """What the feed states for the regions followed (None: all): the warnings that no other
    warning of the feed replaces, one observation per region. Expired and green ones are in it;
    `state.transition` keeps them from being posted."""
    replaced = {reference.identifier for alert in alerts for reference in alert.references}
    observations = []
    for alert in alerts:
        if alert.identifier in replaced or alert.msg_type.casefold() == "cancel" or alert.status.casefold() != "actual":
            continue
        info = chosen_info(alert)
        if info is None:
            continue
        level = _leading_number(info.parameter("awareness_level"))
        kind = _leading_number(info.parameter("awareness_type"))
        if level is None or kind is None:
            continue
        hazard = HAZARDS.get(kind, f"fenomeno {kind}")
        start = info.onset or info.effective
        for area in info.areas:
            for code in area.codes(REGION_GEOCODE):
                if regions is not None and code not in regions:
                    continue
                observations.append(Observation(
                    kind="meteoalarm", area=code, area_name=area.description, hazard=hazard,
                    day=start.astimezone(ROME).date() if start else None, level=level,
                    identifier=alert.identifier, sent=alert.sent, onset=start, expires=info.expires,
                    web=info.web, replaces=tuple(reference.identifier for reference in alert.references)))
    return Snapshot(observations=tuple(observations), days=None)
