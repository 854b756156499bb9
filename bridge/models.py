"""The records the bridge keeps: a feed's poll state, a delivery in the outbox, a post in the history.

Plain frozen dataclasses with their JSON form (`to_dict`, and `from_dict`, which reads back what
`to_dict` wrote, tolerating hand edits and older versions). Pure: where and how crash-safely
they are stored is `bridge.store`'s concern.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.health import FeedHealth, judge
from bridge.item import Alert


class UnreadableRecord(ValueError):
    """A stored entry cannot be read as the record it stands for; `hint` says how to mend it."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def from_iso(text: str | None) -> datetime | None:
    return read_time(text, "time") if text else None


def read_time(text: Any, name: str, notes: list[str] | None = None) -> datetime:
    """An ISO time from a state file, always aware: one without a zone (a hand edit, another
    program) is read as UTC, and `notes` is told so. Raise ValueError when it is not a time."""
    if not isinstance(text, str):
        raise ValueError(f"{name} is not a time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        if notes is not None:
            notes.append(f"{name} {text} has no time zone: read as UTC")
        moment = moment.replace(tzinfo=UTC)
    return moment


# pending: goes out in its turn; failed: given up; awaiting: "da approvare", never sent until an
# editor approves it (`bridge.approval`); stopped: held by an editor, never sent, never timed out.
DELIVERY_STATES = ("pending", "failed", "awaiting", "stopped")


HELD_KEPT = 20  # the held items a feed's state remembers, newest first


@dataclass(frozen=True, slots=True)
class HeldItem:
    """An item the link guard (or the lack of anything to say) held back on one channel: it
    never entered the outbox, and its keys are recorded as seen, so it is held once. `id` is
    the delivery id it would have had (`bridge.identity.delivery_id`), `reason` the guard's own
    words (English, as the log says them), `at` the poll that held it."""

    id: str
    channel: str
    title: str
    link: str | None
    reason: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "channel": self.channel, "title": self.title, "link": self.link,
                "reason": self.reason, "at": iso(self.at)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeldItem:
        return cls(id=str(data["id"]), channel=str(data["channel"]), title=str(data.get("title", "")),
                   link=data.get("link"), reason=str(data.get("reason", "")), at=read_time(data["at"], "at"))


def _held_items(data: Any) -> tuple[HeldItem, ...]:
    """The held items of a stored feed state; an entry that cannot be read is left out (it
    only informs: nothing is lost with it)."""
    if not isinstance(data, list):
        return ()
    items = []
    for entry in data[:HELD_KEPT]:
        try:
            items.append(HeldItem.from_dict(entry))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(items)


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the bridge remembers of one feed between polls."""

    feed_id: str
    etag: str | None = None
    last_modified: str | None = None
    primed: tuple[str, ...] = ()  # channels for which this feed's first poll has been recorded
    last_poll: datetime | None = None
    last_success: datetime | None = None
    last_new_item: datetime | None = None
    failures: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None
    retry_at: datetime | None = None
    newest_item: datetime | None = None  # publication date of the newest item the feed lists
    usual_gap: float | None = None  # seconds between its items, usually (see bridge.health)
    rebuilt: bool = False  # its state was lost (unreadable file): next poll records, posts nothing
    last_held: str | None = None  # the last item held back (link off the feed's domains), and why
    held: tuple[HeldItem, ...] = ()  # the items held back lately, newest first (at most HELD_KEPT)
    # The feed's last first poll (see `bridge.poll`): when, the items it recorded, those it posted.
    first_poll: datetime | None = None
    first_poll_items: int = 0
    first_poll_posted: int = 0
    # An official alert source's state (`bridge.alerts.state.state_to_json`): the level last
    # posted per area, hazard and day. None for a news feed, and before a source's first poll.
    alerts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed_id": self.feed_id,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "primed": list(self.primed),
            "last_poll": iso(self.last_poll),
            "last_success": iso(self.last_success),
            "last_new_item": iso(self.last_new_item),
            "failures": self.failures,
            "failing_since": iso(self.failing_since),
            "last_error": self.last_error,
            "retry_at": iso(self.retry_at),
            "newest_item": iso(self.newest_item),
            "usual_gap": self.usual_gap,
            "rebuilt": self.rebuilt,
            "last_held": self.last_held,
            "held": [item.to_dict() for item in self.held],
            "first_poll": iso(self.first_poll),
            "first_poll_items": self.first_poll_items,
            "first_poll_posted": self.first_poll_posted,
            "alerts": self.alerts,
        }

    def health(self, now: datetime) -> FeedHealth:
        """Ok, failing, stale or new: see `bridge.health`."""
        return judge(
            now=now,
            last_poll=self.last_poll,
            failing_since=self.failing_since,
            last_error=self.last_error,
            newest_item=self.newest_item,
            usual_gap=timedelta(seconds=self.usual_gap) if self.usual_gap is not None else None,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedState:
        return cls(
            feed_id=data["feed_id"],
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            primed=tuple(data.get("primed", ())),
            last_poll=from_iso(data.get("last_poll")),
            last_success=from_iso(data.get("last_success")),
            last_new_item=from_iso(data.get("last_new_item")),
            failures=int(data.get("failures", 0)),
            failing_since=from_iso(data.get("failing_since")),
            last_error=data.get("last_error"),
            retry_at=from_iso(data.get("retry_at")),
            newest_item=from_iso(data.get("newest_item")),
            usual_gap=data.get("usual_gap"),
            rebuilt=bool(data.get("rebuilt", False)),
            last_held=data.get("last_held"),
            held=_held_items(data.get("held")),
            first_poll=from_iso(data.get("first_poll")),
            first_poll_items=int(data.get("first_poll_items", 0)),
            first_poll_posted=int(data.get("first_poll_posted", 0)),
            alerts=data.get("alerts") if isinstance(data.get("alerts"), str) else None,
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert for one channel, from the moment it is decided until it is posted or given up."""

    id: str
    channel: str
    feed_id: str
    alert: Alert
    created: datetime
    order: float  # sort key, oldest first: the item's publication time, else its discovery time
    urgent: bool = False
    attempts: int = 0
    next_attempt: datetime | None = None
    last_error: str | None = None
    state: str = "pending"  # pending | failed
    token: str | None = None  # the channel's own id for this post, chosen before sending (WAHA)
    in_flight: bool = False  # a send was started and its outcome is unknown: reconcile first
    plain: bool = False  # the channel rejected the formatted alert: send the plainest form
    held: bool = False  # held back by max_per_day: goes out in the next day's digest
    send_now: bool = False  # an editor's send-now: first in its queue, past quiet hours and pacing
    # The last editor's action on it (`bridge.approval`): which, by whom, when; None before any.
    acted: str | None = None
    acted_by: str | None = None
    acted_at: datetime | None = None
    original: Alert | None = None  # the alert as the feed made it, once an editor changed its text
    # A correction (`bridge.corrections`): the id of the posted delivery it corrects; `edit_of`
    # the remote id of the post it edits in place (None: it goes out as a post of its own, the
    # "Rettifica" follow-up); `note` what changed, in Italian (the follow-up's text when an
    # edit cannot be made). `digest`: the fingerprint of the item it was made from.
    corrects: str | None = None
    edit_of: str | None = None
    note: str | None = None
    digest: str | None = None
    # An official alert's end (CAP `expires`): past it, the alert is no longer posted.
    expires: datetime | None = None

    @property
    def unpaced(self) -> bool:
        """Urgent, sent now by an editor, or an edit of a post (no new message): quiet hours,
        min_gap and max_per_day do not hold it."""
        return self.urgent or self.send_now or self.edit_of is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "feed_id": self.feed_id,
            "alert": self.alert.to_dict(),
            "created": iso(self.created),
            "order": self.order,
            "urgent": self.urgent,
            "attempts": self.attempts,
            "next_attempt": iso(self.next_attempt),
            "last_error": self.last_error,
            "state": self.state,
            "token": self.token,
            "in_flight": self.in_flight,
            "plain": self.plain,
            "held": self.held,
            "send_now": self.send_now,
            "acted": self.acted,
            "acted_by": self.acted_by,
            "acted_at": iso(self.acted_at),
            "original": self.original.to_dict() if self.original is not None else None,
            **{key: value for key, value in (("corrects", self.corrects), ("edit_of", self.edit_of),
                                             ("note", self.note), ("digest", self.digest)) if value is not None},
            "expires": iso(self.expires),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], notes: list[str] | None = None) -> Delivery:
        """Rebuild a delivery stored with `to_dict`, tolerating hand edits and older versions.

        A time without a zone is read as UTC; a `state` this version does not know is kept as
        "failed" with the reason in `last_error` (visible in `status`, never sent, never
        dropped). Each such repair is added to `notes`. Raise `UnreadableRecord` when the entry
        cannot be a delivery at all (a field missing or of the wrong kind).
        """
        ident = data.get("id") if isinstance(data, Mapping) else None
        local: list[str] = []
        try:
            alert = Alert.from_dict(data["alert"])
            if alert.published is not None and alert.published.tzinfo is None:
                local.append(f"alert.published {alert.published.isoformat()} has no time zone: read as UTC")
                alert = replace(alert, published=alert.published.replace(tzinfo=UTC))
            next_attempt = data.get("next_attempt")
            delivery = cls(
                id=str(data["id"]),
                channel=str(data["channel"]),
                feed_id=str(data["feed_id"]),
                alert=alert,
                created=read_time(data["created"], "created", local),
                order=float(data["order"]),
                urgent=bool(data.get("urgent", False)),
                attempts=int(data.get("attempts", 0)),
                next_attempt=read_time(next_attempt, "next_attempt", local) if next_attempt else None,
                last_error=data.get("last_error"),
                state=data.get("state", "pending"),
                token=data.get("token"),
                in_flight=bool(data.get("in_flight", False)),
                plain=bool(data.get("plain", False)),
                held=bool(data.get("held", False)),
                send_now=bool(data.get("send_now", False)),
                acted=data.get("acted"),
                acted_by=data.get("acted_by"),
                acted_at=read_time(data["acted_at"], "acted_at", local) if data.get("acted_at") else None,
                original=Alert.from_dict(data["original"]) if data.get("original") else None,
                corrects=_text_or_none(data.get("corrects")),
                edit_of=_text_or_none(data.get("edit_of")),
                note=_text_or_none(data.get("note")),
                digest=_text_or_none(data.get("digest")),
                expires=read_time(data["expires"], "expires", local) if data.get("expires") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f'missing "{exc.args[0]}"' if isinstance(exc, KeyError) else str(exc)
            raise UnreadableRecord(
                f"outbox entry {ident or '(no id)'} is unreadable: {what}",
                hint="correct or remove that entry of outbox.json with the daemon stopped, or restore a backup",
            ) from None
        if delivery.state not in DELIVERY_STATES:
            local.append(f'unknown state "{delivery.state}": kept as failed')
            delivery = replace(delivery, state="failed", in_flight=False, last_error=(
                f'unknown state "{delivery.state}" in the outbox (hand-edited, or written by another version): '
                "kept as failed, not sent"))
        if notes is not None:
            notes.extend(f"outbox entry {delivery.id}: {note}" for note in local)
        return delivery


@dataclass(frozen=True, slots=True)
class Post:
    """A line of the audit log: what was posted, where, when, with which remote id."""

    delivery_id: str
    channel: str
    feed_id: str
    title: str
    link: str
    posted_at: datetime
    remote_id: str | None
    verified: bool | None = None  # read back on the channel (True), looked for and not found (False)
    # The item's title and summary as its feed gave them when it was queued (before any
    # editor's change): what a correction compares the feed's later text with
    # (`bridge.corrections.posted_version`). None for a post recorded before versions were kept.
    version: tuple[str, str] | None = None
    digest: str | None = None  # the fingerprint of the item (`bridge.corrections.item_digest`)
    corrects: str | None = None  # for a correction: the id of the posted delivery it corrected
    published: datetime | None = None  # the item's publication date, when its feed gave one

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "delivery_id": self.delivery_id,
            "channel": self.channel,
            "feed_id": self.feed_id,
            "title": self.title,
            "link": self.link,
            "posted_at": iso(self.posted_at),
            "remote_id": self.remote_id,
            "verified": self.verified,
        }
        if self.version is not None:
            data["version"] = {"title": self.version[0], "summary": self.version[1]}
        if self.digest is not None:
            data["digest"] = self.digest
        if self.corrects is not None:
            data["corrects"] = self.corrects
        if self.published is not None:
            data["published"] = iso(self.published)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], notes: list[str] | None = None) -> Post:
        """Rebuild a record stored with `to_dict`; a time without a zone is read as UTC (and
        `notes` told). Raise KeyError, TypeError or ValueError when it is not a record."""
        return cls(
            delivery_id=str(data["delivery_id"]),
            channel=str(data["channel"]),
            feed_id=str(data["feed_id"]),
            title=str(data["title"]),
            link=str(data["link"]),
            posted_at=read_time(data["posted_at"], f"posted_at of {data['delivery_id']}", notes),
            remote_id=data.get("remote_id"),
            verified=data.get("verified"),
            version=_version(data.get("version")),
            digest=_text_or_none(data.get("digest")),
            corrects=_text_or_none(data.get("corrects")),
            published=_time_or_none(data.get("published")),
        )


def _time_or_none(value: Any) -> datetime | None:
    try:
        return read_time(value, "published") if value else None
    except ValueError:
        return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _version(data: Any) -> tuple[str, str] | None:
    """The stored version of a post, or None when there is none (an older record) or it is
    not one (a hand edit): that post then gets no correction, and loses nothing else."""
    if not isinstance(data, Mapping):
        return None
    title, summary = data.get("title"), data.get("summary", "")
    if not isinstance(title, str) or not isinstance(summary, str):
        return None
    return (title, summary)
