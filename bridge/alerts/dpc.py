"""The Department's criticality bulletin (bollettino di criticità idrogeologica e idraulica) read
from its CAP alert. Pure.

The bulletin lists only the zones under alert: one `<info>` per risk × level × day, the event
naming both ("MODERATA CRITICITA' PER RISCHIO IDROGEOLOGICO / ALLERTA ARANCIONE:"), the
description the day ("all_ARANCIONE PER OGGI SU:"), each area a geocode "Zona di Allerta". It
never sends Update or Cancel: every bulletin is whole, and speaks of its today and tomorrow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import date, timedelta

from bridge.alerts import zones as zone_table
from bridge.alerts.cap import Alert, CapError, Info
from bridge.alerts.state import GREEN, LEVELS_BY_NAME, ORANGE, RED, ROME, YELLOW, Kind, Observation, Snapshot

ZONE_GEOCODE = "Zona di Allerta"
SEVERITY_LEVELS = {"minor": GREEN, "moderate": YELLOW, "severe": ORANGE, "extreme": RED}


def hazard_of(event: str) -> str | None:
    """The risk an event names, in lower case ("... PER RISCHIO IDROGEOLOGICO / ALLERTA ..." ->
    "idrogeologico"), or None."""
    found = re.search(r"RISCHIO\s+(.+?)\s*(?:/|:|$)", event, re.IGNORECASE)
    return " ".join(found.group(1).split()).casefold() if found else None


def level_of(info: Info) -> int | None:
    """The level of an info: "ALLERTA ARANCIONE" in the event, else "all_ARANCIONE" in the
    description, else the CAP severity."""
    for text, pattern in ((info.event, r"ALLERTA\s+(VERDE|GIALLA|ARANCIONE|ROSSA)"),
                          (info.description, r"all_(VERDE|GIALLA|ARANCIONE|ROSSA)")):
        found = re.search(pattern, text, re.IGNORECASE)
        if found:
            return LEVELS_BY_NAME[found.group(1).casefold()]
    if re.search(r"NESSUNA\s+ALLERTA", info.event, re.IGNORECASE):
        return GREEN
    return SEVERITY_LEVELS.get(info.severity.casefold())


def day_of(info: Info, alert: Alert) -> date:
    """The day an info applies to: its onset's date in Europe/Rome, else "OGGI"/"DOMANI" of the
    description counted from the bulletin's date."""
    if info.onset is not None:
        return info.onset.astimezone(ROME).date()
    issued = alert.sent.astimezone(ROME).date()
    return issued + timedelta(days=1) if re.search(r"\bDOMANI\b", info.description, re.IGNORECASE) else issued


def bulletin_days(alert: Alert) -> frozenset[date]:
    """The days a bulletin speaks of: the day it was issued and the next."""
    issued = alert.sent.astimezone(ROME).date()
    return frozenset({issued, issued + timedelta(days=1)})


def read_bulletin(alert: Alert, area: Collection[str] | None = None, *, where: str = "bulletin",
                  kind: Kind = "dpc") -> Snapshot:
    """Given the CAP alert of a bulletin and the zone codes followed (None: all), return what it
    states for them (`kind` "cap" for a regional service publishing CAP with the same zones).
    An info at no alert ("NESSUNA ALLERTA", green) states nothing. Raise CapError, naming the
    info, when an info has no risk or no level: the whole bulletin is refused rather than read
    in part, since a zone missing from a bulletin read in part would wrongly end its alert."""
    observations: list[Observation] = []
    if alert.status.casefold() != "actual":  # an exercise, a test, a draft: never for citizens
        return Snapshot(observations=(), days=frozenset(), issued=alert.sent)
    for number, info in enumerate(alert.infos, start=1):
        place = f"{where}: alert {alert.identifier}: info {number}"
        level = level_of(info)
        if level is None:
            raise CapError(f'{place}: no level in "{info.event}", "{info.description}" or severity "{info.severity}"')
        if level == GREEN:
            continue  # no alert: its zones are simply not under alert
        hazard = hazard_of(info.event)
        if hazard is None:
            raise CapError(f'{place}: the event "{info.event}" names no risk ("PER RISCHIO ...")')
        day = day_of(info, alert)
        for cap_area in info.areas:
            for code in cap_area.codes(ZONE_GEOCODE):
                if area is not None and code not in area:
                    continue
                observations.append(Observation(
                    kind=kind, area=code, area_name=zone_table.zone_name(code) or cap_area.description,
                    hazard=hazard, day=day, level=level, identifier=alert.identifier, sent=alert.sent,
                    onset=info.onset, expires=info.expires, web=info.web, sender_name=info.sender_name))
    return Snapshot(observations=tuple(observations), days=bulletin_days(alert), issued=alert.sent)


def index_links(data: bytes, *, where: str = "index") -> tuple[str, ...]:
    """Given the index JSON the Department publishes with each bulletin, return the addresses of
    its zips that hold the CAP file (the "all" attachment, then "xml"), each once, in the order
    of the index. Raise CapError when it is not such an index."""
    try:
        index = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CapError(f"{where}: not JSON ({error})") from None
    if not isinstance(index, Mapping):
        raise CapError(f"{where}: not a bulletin index: expected an object with today and tomorrow")
    links: list[str] = []
    for kind in ("all", "xml"):
        for part in ("today", "tomorrow"):
            day = index.get(part)
            attachments = day.get("attachment") if isinstance(day, Mapping) else None
            for attachment in attachments if isinstance(attachments, list) else []:
                link = attachment.get(kind) if isinstance(attachment, Mapping) else None
                if isinstance(link, str) and link.startswith(("https://", "http://")) and link not in links:
                    links.append(link)
    if not links:
        raise CapError(f'{where}: the bulletin index links no "all" or "xml" zip')
    return tuple(links)

