"""What changed since the last poll of an alert source: the events to post. Pure.

State is kept per key (zone or region, hazard, day): the level last posted there. A new
snapshot of the source gives, for each key, one event at most: `new`, `raised`, `lowered`, or
`ended` (the key left the source while the source still speaks of its day; "cessata allerta").
The same level twice gives nothing; a green or expired alert is never posted. Unlike a news
feed, the first poll (an empty state) posts what is in force now.

Days are absolute (the Europe/Rome date the alert applies to), so that the "domani" part of
yesterday's bulletin and the "oggi" part of today's are the same key: the same level again is
not news.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")

GREEN, YELLOW, ORANGE, RED = 1, 2, 3, 4
LEVEL_NAMES = {GREEN: "verde", YELLOW: "gialla", ORANGE: "arancione", RED: "rossa"}
LEVELS_BY_NAME = {name: level for level, name in LEVEL_NAMES.items()}

Kind = Literal["dpc", "meteoalarm", "cap"]
Change = Literal["new", "raised", "lowered", "ended"]
STATE_VERSION = 1


@dataclass(frozen=True)
class Observation:
    """One alert in force as a source states it: where, what hazard, which day, which level,
    and the fields its text is made of."""

    kind: Kind
    area: str  # a DPC zone code or a Meteoalarm EMMA_ID
    area_name: str
    hazard: str  # Italian, as the text names it: "idrogeologico", "temporali", "vento" ...
    day: date | None  # the day it applies to (Europe/Rome); None when the source gives a span only
    level: int  # GREEN ... RED
    identifier: str
    sent: datetime
    onset: datetime | None = None
    expires: datetime | None = None
    web: str = ""
    sender_name: str = ""  # the CAP senderName, named as the source of a regional CAP alert
    # Identifiers of the alerts this one replaces (CAP references): an update moved to another
    # day continues the alert it replaces rather than ending it and starting another.
    replaces: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Its place in the state: area, hazard and day."""
        return f"{self.area}|{self.hazard}|{self.day.isoformat() if self.day else ''}"

    def expired(self, now: datetime) -> bool:
        """Whether its `expires` instant has passed at `now`."""
        return self.expires is not None and self.expires <= now


@dataclass(frozen=True)
class Snapshot:
    """What one poll of a source states. `days` are the days it speaks of (a DPC bulletin: its
    today and tomorrow): an earlier alert of such a day missing from it has ended. None: the
    source lists everything in force (Meteoalarm), so any alert missing from it has ended."""

    observations: tuple[Observation, ...]
    days: frozenset[date] | None = None
    # When the document was issued (a bulletin's `sent`): an alert held from a later document
    # is not changed or ended by an older one (a stale mirror, a cache serving yesterday's).
    issued: datetime | None = None


@dataclass(frozen=True)
class Event:
    """One thing to post. For `ended`, `observation` is the alert that ends (its level, its
    urgency); `previous` is the level posted before (None for `new`)."""

    change: Change
    observation: Observation
    previous: int | None = None


@dataclass(frozen=True)
class Skipped:
    """An alert of the snapshot that is not posted, and why (for the log and the history)."""

    observation: Observation
    reason: str


@dataclass(frozen=True)
class Transition:
    """The events to post (in the order of the snapshot, ends last), the new state, and what
    was skipped."""

    events: tuple[Event, ...]
    state: dict[str, Observation]
    skipped: tuple[Skipped, ...] = ()


def _strongest(observations: tuple[Observation, ...]) -> dict[str, Observation]:
    """One observation per key: the highest level (a document may list a zone twice)."""
    chosen: dict[str, Observation] = {}
    for observation in observations:
        held = chosen.get(observation.key)
        if held is None or observation.level > held.level:
            chosen[observation.key] = observation
    return chosen


def transition(previous: dict[str, Observation], snapshot: Snapshot, now: datetime) -> Transition:
    """Given the state after the last poll, what the source states now and the time, return the
    events to post and the state to keep."""
    events: list[Event] = []
    skipped: list[Skipped] = []
    state: dict[str, Observation] = {}
    today = now.astimezone(ROME).date()
    current = _strongest(snapshot.observations)
    continued: set[str] = set()
    for key, observation in current.items():
        held = previous.get(key)
        if held is not None and held.sent > observation.sent:
            state[key] = held  # the source sent an older document than the one already read
            continue
        if held is None and observation.replaces:
            held = next((old for old in previous.values() if old.identifier in observation.replaces
                         and old.area == observation.area and old.hazard == observation.hazard), None)
            if held is not None:
                continued.add(held.key)
        if observation.expired(now):
            assert observation.expires is not None
            ended_at = observation.expires.astimezone(ROME)
            skipped.append(Skipped(observation, f"scaduta alle {ended_at:%H:%M del %d/%m/%Y}"))
            continue
        if observation.level <= GREEN:
            if held is not None:
                events.append(Event("ended", held, previous=held.level))
            else:
                skipped.append(Skipped(observation, "livello verde"))
            continue
        state[key] = observation
        if held is None:
            events.append(Event("new", observation))
        elif observation.level > held.level:
            events.append(Event("raised", observation, previous=held.level))
        elif observation.level < held.level:
            events.append(Event("lowered", observation, previous=held.level))
    for key, held in previous.items():
        if key in current or key in continued:
            continue
        if snapshot.issued is not None and held.sent > snapshot.issued:
            state[key] = held
            continue
        if held.expired(now) or (held.day is not None and held.day < today):
            continue  # over by its own time: nothing to announce
        if snapshot.days is None or held.day is None or held.day in snapshot.days:
            events.append(Event("ended", held, previous=held.level))
        else:
            state[key] = held  # the source does not speak of that day (yet): it stands
    return Transition(events=tuple(events), state=state, skipped=tuple(skipped))


def expired_reason(event: Event, now: datetime) -> str | None:
    """Why an event that waited (in the outbox, through a gateway outage) must no longer be
    posted at `now`, or None when it still may: the alert it speaks of has expired."""
    observation = event.observation
    if observation.expired(now):
        assert observation.expires is not None
        return f"non inviata: scaduta alle {observation.expires.astimezone(ROME):%H:%M del %d/%m/%Y} mentre attendeva"
    return None


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no offset")
    return moment


def observation_to_json(observation: Observation) -> dict[str, Any]:
    """A JSON-ready dict of an observation."""
    return {
        "kind": observation.kind, "area": observation.area, "area_name": observation.area_name,
        "hazard": observation.hazard, "day": observation.day.isoformat() if observation.day else None,
        "level": observation.level, "identifier": observation.identifier, "sent": observation.sent.isoformat(),
        "onset": observation.onset.isoformat() if observation.onset else None,
        "expires": observation.expires.isoformat() if observation.expires else None, "web": observation.web,
        "sender_name": observation.sender_name, "replaces": list(observation.replaces),
    }


def observation_from_json(data: object) -> Observation:
    """The observation of `observation_to_json`. Raise ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("not an object")
    kind = data.get("kind")
    if kind not in ("dpc", "meteoalarm", "cap"):
        raise ValueError(f"unknown kind {kind!r}")
    level = data.get("level")
    if not isinstance(level, int) or isinstance(level, bool) or level not in LEVEL_NAMES:
        raise ValueError(f"bad level {level!r}")
    texts = {name: data.get(name) for name in ("area", "area_name", "hazard", "identifier")}
    if not all(isinstance(value, str) for value in texts.values()) or not texts["area"] or not texts["hazard"]:
        raise ValueError("area, hazard, identifier must be text")
    day = data.get("day")
    sent = _instant(data.get("sent"))
    if sent is None:
        raise ValueError("no sent")
    return Observation(kind=kind, area=str(texts["area"]), area_name=str(texts["area_name"]),
                       hazard=str(texts["hazard"]), day=date.fromisoformat(day) if isinstance(day, str) else None,
                       level=level, identifier=str(texts["identifier"]), sent=sent,
                       onset=_instant(data.get("onset")), expires=_instant(data.get("expires")),
                       web=str(data.get("web")) if isinstance(data.get("web"), str) else "",
                       sender_name=str(data.get("sender_name")) if isinstance(data.get("sender_name"), str) else "",
                       replaces=tuple(item for item in data.get("replaces") or () if isinstance(item, str)))


def state_to_json(state: dict[str, Observation]) -> str:
    """The state as JSON text, for the store."""
    return json.dumps({"version": STATE_VERSION,
                       "alerts": [observation_to_json(state[key]) for key in sorted(state)]},
                      ensure_ascii=False, sort_keys=True)


def state_from_json(text: str | None) -> tuple[dict[str, Observation], list[str]]:
    """The state of `state_to_json`, and the problems met. A missing, unreadable, hand-broken or
    older state gives what can be read of it (an unreadable entry is dropped and named): the
    worst outcome is that an alert in force is posted once more, never that the source stops."""
    if not text:
        return {}, []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return {}, [f"alert state is not JSON ({error.msg} at line {error.lineno}): starting afresh"]
    if isinstance(data, list):  # a bare list of alerts, as a hand edit may leave it
        data = {"alerts": data}
    if not isinstance(data, dict) or not isinstance(data.get("alerts", []), list):
        return {}, ["alert state is not an object with a list of alerts: starting afresh"]
    state: dict[str, Observation] = {}
    problems = []
    for number, entry in enumerate(data.get("alerts", []), start=1):
        try:
            observation = observation_from_json(entry)
        except (ValueError, TypeError) as error:
            problems.append(f"alert state, entry {number}: {error}; dropped")
            continue
        state[observation.key] = observation
    return state, problems
