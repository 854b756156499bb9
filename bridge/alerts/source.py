"""One poll's reading of an official alert source: from the bytes fetched at its `url` to what it
states for the area followed (a `Snapshot`). Pure; run in a parser process by the daemon, like
a feed's parse, so that a pathological document is stopped at the same deadline.

- `dpc`: the Department's bulletin, a CAP document or the zip that holds one;
- `meteoalarm`: Meteoalarm's JSON feed of warnings;
- `cap`: any CAP 1.2 document, a zip holding one, or an Atom/RSS feed with CAP entries
  embedded (regional services use the Department's zone codes).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bridge.alerts import dpc, meteoalarm
from bridge.alerts.cap import CapError, read_cap
from bridge.alerts.state import Observation, Snapshot
from bridge.parse import ParseError

KINDS = ("dpc", "meteoalarm", "cap")

__all__ = ["KINDS", "CapError", "SourceRequest", "read_request", "read_source"]


def read_source(kind: str, data: bytes, *, zones: Collection[str], regions: Collection[str],
                where: str = "source") -> Snapshot:
    """What the source of `kind` states in `data` for `zones` (DPC zone codes: dpc, cap) or
    `regions` (EMMA_IDs: meteoalarm). Raise CapError, naming `where`, when `data` is not what
    such a source publishes."""
    if kind == "meteoalarm":
        return meteoalarm.snapshot(meteoalarm.read_feed(data, where=where), set(regions))
    if kind not in ("dpc", "cap"):
        raise ValueError(f"unknown alert source kind {kind!r}")
    document = read_cap(data, where=where)
    if not document.alerts:
        if document.links:
            raise CapError(f"{where}: the feed only links to its CAP documents ({len(document.links)}); "
                           "give the address of a document that holds the alerts")
        raise CapError(f"{where}: no CAP alert in it")
    snapshots = [dpc.read_bulletin(alert, set(zones), where=where, kind="dpc" if kind == "dpc" else "cap")
                 for alert in document.alerts]
    if len(snapshots) == 1:
        return snapshots[0]
    # A feed of several documents: together they state what is in force, for their days.
    observations: list[Observation] = [o for snapshot in snapshots for o in snapshot.observations]
    days = frozenset(day for snapshot in snapshots for day in (snapshot.days or ()))
    issued = max((s.issued for s in snapshots if s.issued is not None), default=None)
    return Snapshot(observations=tuple(observations), days=days, issued=issued)


@dataclass(frozen=True)
class SourceRequest:
    """What a parser process needs to read a source: its kind and the area followed."""

    kind: str
    zones: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()


def read_request(request: SourceRequest, data: bytes) -> Snapshot:
    """`read_source` for a poll: a document that is not the source's is the poll's ParseError."""
    try:
        return read_source(request.kind, data, zones=request.zones, regions=request.regions)
    except CapError as exc:
        raise ParseError(str(exc), hint=HINTS[request.kind]) from None


HINTS = {
    "dpc": "the url must give the Department's bulletin as CAP (Cap_*.xml) or the zip holding it",
    "meteoalarm": "the url must give Meteoalarm's JSON feed of warnings for Italy",
    "cap": "the url must give a CAP 1.2 document, a zip holding one, or an Atom/RSS feed with CAP entries",
}
