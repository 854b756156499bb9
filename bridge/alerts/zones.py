"""Where a comune is for the alerts: its DPC alert zone(s) and its Meteoalarm region. Pure.

The table shipped in `data/` (see data/README.md: opendatasicilia and the Dipartimento della
Protezione Civile, CC BY 4.0) places each comune by one point; a comune lying across two zones
gets the second from the operator (`zones = [...]`), which `area_for` adds.

Meteoalarm names Italy's regions by EMMA_ID (IT001 ... IT020), in an order of its own, not
ISTAT's (Piemonte is IT005, ISTAT region 01). Only the codes seen in Meteoalarm's own Italian
feed (areaDesc beside EMMA_ID, feeds.meteoalarm.org, July 2026) are listed here; a comune of
another region gets no region until the operator names it with `regions = [...]`.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

# areaDesc -> EMMA_ID as Meteoalarm's Italian feed pairs them; keyed by the ISTAT region name of
# the table.
EMMA_IDS = {
    "Trentino-Alto Adige/Südtirol": "IT002",
    "Lombardia": "IT003",
    "Valle d'Aosta/Vallée d'Aoste": "IT004",
    "Piemonte": "IT005",
    "Lazio": "IT012",
    "Basilicata": "IT017",
    "Sicilia": "IT018",
}


class ZoneError(ValueError):
    """A name or code that the zone table does not know; the message says which and what to do."""


@dataclass(frozen=True)
class Comune:
    """One comune of the table."""

    istat: str
    name: str
    province: str
    region: str
    zone: str  # "" for the few comuni whose point falls in no zone

    @property
    def emma_id(self) -> str | None:
        """Its Meteoalarm region, when known."""
        return EMMA_IDS.get(self.region)


@dataclass(frozen=True)
class Zone:
    """One DPC alert zone."""

    code: str
    name: str


@dataclass(frozen=True)
class AlertArea:
    """What a source follows: DPC zone codes and Meteoalarm regions."""

    zones: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    comune: Comune | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Resolution:
    """What `resolve` found for a query: comuni (several when a name is shared) or one zone."""

    query: str
    comuni: tuple[Comune, ...] = ()
    zone: Zone | None = None
    zone_comuni: int = 0


def _fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a name ("Agliè" = "aglie")."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(plain.replace("-", " ").replace("'", " ").split())


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("bridge.alerts").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def comuni() -> tuple[Comune, ...]:
    """Every comune of the shipped table, by ISTAT code."""
    return tuple(Comune(row["istat"], row["nome"], row["provincia"], row["regione"], row["zona"])
                 for row in _rows("comuni.csv"))


@cache
def zones() -> dict[str, Zone]:
    """Every alert zone, by code."""
    return {row["codice"]: Zone(row["codice"], row["nome"]) for row in _rows("zone.csv")}


@cache
def _by_istat() -> dict[str, Comune]:
    return {comune.istat: comune for comune in comuni()}


@cache
def _by_name() -> dict[str, tuple[Comune, ...]]:
    found: dict[str, list[Comune]] = {}
    for comune in comuni():
        found.setdefault(_fold(comune.name), []).append(comune)
    return {name: tuple(group) for name, group in found.items()}


def zone_name(code: str) -> str | None:
    """The name of a zone code ("Emil-C" -> "Pianura emiliana centrale"), or None."""
    zone = zones().get(code)
    return zone.name if zone else None


def find_zone(code: str) -> Zone | None:
    """A zone by its code, case-insensitively ("emil-c" finds "Emil-C")."""
    wanted = code.strip().casefold()
    return next((zone for key, zone in zones().items() if key.casefold() == wanted), None)


def comune_by_istat(code: str) -> Comune | None:
    """The comune of an ISTAT code ("033032"; leading zeros may be missing), or None."""
    digits = code.strip()
    return _by_istat().get(digits.zfill(6)) if digits.isdigit() and len(digits) <= 6 else None


def resolve(query: str) -> Resolution:
    """Given a comune's name, an ISTAT code or a zone code, return what it names: a zone, or the
    comuni (all of them when several share the name). Raise ZoneError when nothing matches."""
    text = query.strip()
    if not text:
        raise ZoneError("give a comune's name, its ISTAT code or an alert zone code")
    if text.isdigit():
        comune = comune_by_istat(text)
        if comune is None:
            raise ZoneError(f'no comune has ISTAT code "{text}" in the table (six digits, as "033032")')
        return Resolution(query=text, comuni=(comune,))
    zone = find_zone(text)
    if zone is not None:
        count = sum(1 for comune in comuni() if comune.zone == zone.code)
        return Resolution(query=text, zone=zone, zone_comuni=count)
    named = _by_name().get(_fold(text))
    if not named:
        raise ZoneError(f'no comune or alert zone is called "{text}"; try the ISTAT code')
    return Resolution(query=text, comuni=named)


def area_for(*, istat: str | None = None, zones: tuple[str, ...] = (), regions: tuple[str, ...] = ()) -> AlertArea:
    """The area a source follows: the comune's zone and region (when `istat` is given) plus the
    zones and regions named. Raise ZoneError for an unknown ISTAT or zone code."""
    comune = None
    zone_codes: list[str] = []
    region_codes: list[str] = []
    if istat is not None:
        comune = comune_by_istat(istat)
        if comune is None:
            raise ZoneError(f'istat: no comune has code "{istat}" in the table')
        if comune.zone:
            zone_codes.append(comune.zone)
        if comune.emma_id:
            region_codes.append(comune.emma_id)
    for code in zones:
        zone = find_zone(code)
        if zone is None:
            raise ZoneError(f'zones: "{code}" is not an alert zone code (as "Emil-C"; '
                            "channel-bridge zones NAME shows a comune's)")
        if zone.code not in zone_codes:
            zone_codes.append(zone.code)
    for code in regions:
        region = code.strip().upper()
        if not (len(region) == 5 and region.startswith("IT") and region[2:].isdigit() and 1 <= int(region[2:]) <= 20):
            raise ZoneError(f'regions: "{code}" is not a Meteoalarm region of Italy (IT001 ... IT020)')
        if region not in region_codes:
            region_codes.append(region)
    return AlertArea(zones=tuple(zone_codes), regions=tuple(region_codes), comune=comune)
