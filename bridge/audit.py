"""The audit trail: every editor's action on an alert, in an append-only log beside the history.

`state_dir/audit.jsonl`, one JSON object a line: when, who (the Unix user for the command line,
from the control socket's peer credentials; the console's account), from where ("cli",
"console", or "daemon" for the bridge's own `approve_timeout`), the action, the alert's id,
channel, feed and title, the alert before and after (its state and text), the reason given.

Each entry is written whole and fsynced before the action it records changes the outbox, and
both before the action is acknowledged (`Store.plan_act`). A line torn by a crash is cut off
before the next append and skipped by readers: its action was never acknowledged, and the
outbox, written after it, does not have it either.

An entry whose outbox write never happened (a kill between the two writes, or a write that
failed) is followed by one of its own, NOT_APPLIED by the bridge ("non applicata: interrotta",
or "non applicata: stato non scritto"), which says the alert stayed as it was: written as soon
as the write fails, or when the state is next opened (`took_effect` tells). `last_actions` then
knows the previous action as the alert's last, so the trail is true after any crash and no one
is told of an action that did not take effect.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.appendlog import AppendLog
from bridge.models import Delivery, iso, read_time

AUDIT_FILE = "audit.jsonl"
NOT_APPLIED = "not-applied"  # the action of the entry before it (on the same alert) did not take effect
INTERRUPTED = "non applicata: interrotta"  # found at the next start: the process stopped in between
NOT_WRITTEN = "non applicata: stato non scritto"  # the outbox could not be written (a full disk...)
BRIDGE = "channel-bridge"  # who the trail names for the bridge's own entries


class AuditWriteError(OSError):
    """The audit log cannot be written: the action is not made."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action on one alert. `before` and `after` are `snapshot`s (after is None for a drop)."""

    at: datetime
    who: str
    where: str
    action: str
    alert_id: str
    channel: str
    feed_id: str
    title: str
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"at": iso(self.at), "who": self.who, "where": self.where, "action": self.action,
                "alert_id": self.alert_id, "channel": self.channel, "feed_id": self.feed_id, "title": self.title,
                "before": dict(self.before), "after": dict(self.after) if self.after is not None else None,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        """Raise KeyError, TypeError or ValueError for anything that is not an entry."""
        return cls(at=read_time(data["at"], "at"), who=str(data["who"]), where=str(data["where"]),
                   action=str(data["action"]), alert_id=str(data["alert_id"]), channel=str(data["channel"]),
                   feed_id=str(data["feed_id"]), title=str(data.get("title", "")), before=dict(data["before"]),
                   after=dict(data["after"]) if data.get("after") is not None else None,
                   reason=str(data.get("reason", "")))


def snapshot(delivery: Delivery) -> dict[str, Any]:
    """What an entry keeps of an alert, before or after an action: its state and its text."""
    return {"state": delivery.state, "title": delivery.alert.title, "summary": delivery.alert.summary,
            "send_now": delivery.send_now}


def not_applied(entry: AuditEntry, at: datetime, reason: str) -> AuditEntry:
    """The entry saying that `entry`'s action did not take effect: the alert stayed as it was
    before it (its `before` is both before and after), for `reason` (INTERRUPTED, NOT_WRITTEN)."""
    return AuditEntry(at=max(at, entry.at), who=BRIDGE, where="daemon", action=NOT_APPLIED, alert_id=entry.alert_id,
                      channel=entry.channel, feed_id=entry.feed_id, title=entry.title, before=dict(entry.before),
                      after=dict(entry.before), reason=reason)


def last_actions(entries: Iterable[AuditEntry]) -> dict[str, AuditEntry]:
    """Each alert's last action that took effect, by alert id, from the trail in file order: a
    NOT_APPLIED entry cancels the alert's entry just before it (and is never an action itself)."""
    last: dict[str, AuditEntry] = {}
    earlier: dict[str, AuditEntry | None] = {}  # the one before each alert's last, for a cancellation
    for entry in entries:
        if entry.action == NOT_APPLIED:
            previous = earlier.pop(entry.alert_id, None)
            if previous is not None:
                last[entry.alert_id] = previous
            else:
                last.pop(entry.alert_id, None)
            continue
        earlier[entry.alert_id] = last.get(entry.alert_id)
        last[entry.alert_id] = entry
    return last


def took_effect(entry: AuditEntry, delivery: Delivery | None) -> bool:
    """Whether `entry`'s action shows in the outbox, where the alert is now `delivery` (None:
    not in the outbox). A drop took effect when the alert is gone; any other action when the
    alert carries it (the action and its moment, as `approval.decide` marks them), or when the
    alert has gone on since (posted: only an action that took effect lets it leave the outbox)."""
    if entry.after is None:
        return delivery is None
    return delivery is None or (delivery.acted, delivery.acted_at) == (entry.action, entry.at)


def _parse(line: bytes) -> AuditEntry | None:
    try:
        return AuditEntry.from_dict(json.loads(line))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class AuditLog:
    """The append-only file of the audit trail (see the module)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / AUDIT_FILE
        self._file = AppendLog(self.path, lambda line: _parse(line) is not None)

    def read(self, since: datetime | None = None) -> list[AuditEntry]:
        """Every complete entry (at or after `since`), in the order of the file; lines that
        cannot be read (a torn last line, a hand edit) are skipped."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        entries = [entry for line in raw.split(b"\n") if line.strip() and (entry := _parse(line)) is not None]
        return [entry for entry in entries if since is None or entry.at >= since]

    def append(self, entries: list[AuditEntry]) -> None:
        """Add `entries` durably (write, fsync; the directory too when the file is new) before
        returning; raise AuditWriteError, the log as it was, when it cannot (`bridge.appendlog`:
        a line torn by a crash is cut off first)."""
        data = b"".join(json.dumps(e.to_dict(), ensure_ascii=False).encode() + b"\n" for e in entries)
        try:
            self._file.append(data)
        except OSError as exc:
            raise AuditWriteError(exc.errno, f"cannot write the audit log {self.path}: {exc.strerror}") from None
