"""What waits to be posted and why: every pending, held and failed alert, per channel in
sending order, with its state, the reason it waits and when it may go, then the items the link
guard held back. One answer for the console's *In coda* page and `channel-bridge queue`.

Pure over the config, an open `Store` (the daemon's own for the console, read-only for the
command) and a moment: it reads the store's memory, never the state files. Why the head of a
queue waits is the drain's own rule (`outbox.head_ready`), asked, not re-made. Items held by the
link guard never enter the outbox: the poll records them in their feed's state
(`FeedState.held`), and they are listed from there for HELD_DAYS (`bridge.holds` explains each).

The reason is given as `why`, a code for machines (WHY_*), and `reason`, the sentence the
office reads on the page (in Italian, as the console is); a held item also has `reason_en`, the
guard's own words, which `queue` prints, and `remedy`, what the office can do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridge.holds import explain
from bridge.outbox import WAIT_MIN_GAP, WAIT_QUIET_HOURS, WAIT_RETRY, head_ready, pacing_for

if TYPE_CHECKING:
    from bridge.config import ChannelConfig, Config
    from bridge.models import Delivery, HeldItem
    from bridge.store import Store

STATES = ("pending", "awaiting", "held", "retrying", "paused", "failed")

HELD_DAYS = 7  # how long an item held by the link guard stays listed

WHY_READY = "ready"  # at the head, nothing holds it: it goes at the next drain
WHY_BEHIND = "behind"  # behind other alerts of its channel
WHY_RETRY = "retry"  # a transient error: tried again at `due`
WHY_QUIET_HOURS = "quiet_hours"
WHY_MIN_GAP = "min_gap"
WHY_MAX_PER_DAY = "max_per_day"  # held for the next day's digest
WHY_PAUSED = "paused"  # the channel is down (bad token, session)
WHY_NOT_IN_CONFIG = "not_in_config"  # its channel was removed from the config
WHY_FAILED = "failed"  # given up: rejected twice, or expired
WHY_APPROVAL = "approval"  # "da approvare": waits for an editor (approval mode)
WHY_EDITOR = "editor"  # held by an editor until approved
WHY_LINK_GUARD = "link_guard"  # held before the outbox: no link, a link off the site, nothing to say


@dataclass(frozen=True, slots=True)
class Waiting:
    """One alert not (yet) posted: its delivery (None for an item the link guard held, which
    never became one: `held` is its record then), its channel's config (None when the channel
    is no longer configured), its state (one of STATES), why, and when it may go (None when
    that is not known: behind others, paused, held, failed). `reason_en` and `remedy` are
    said for a held item only."""

    delivery: Delivery | None
    channel: ChannelConfig | None
    state: str
    why: str
    reason: str
    due: datetime | None
    held: HeldItem | None = None
    feed: str = ""  # the feed's id, for a held item
    reason_en: str | None = None
    remedy: str | None = None
    remedy_en: str | None = None

    @property
    def id(self) -> str:
        return self.delivery.id if self.delivery is not None else self.held.id if self.held is not None else ""

    @property
    def channel_name(self) -> str:
        return self.delivery.channel if self.delivery is not None else self.held.channel if self.held else ""

    @property
    def feed_id(self) -> str:
        return self.delivery.feed_id if self.delivery is not None else self.feed

    @property
    def title(self) -> str:
        return self.delivery.alert.title if self.delivery is not None else self.held.title if self.held else ""

    @property
    def urgent(self) -> bool:
        return self.delivery.urgent if self.delivery is not None else False

    @property
    def link(self) -> str | None:
        return self.delivery.alert.link if self.delivery is not None else self.held.link if self.held else None

    def to_dict(self, feed_names: dict[str, str]) -> dict[str, Any]:
        """The row of `queue --json`; `feed` is the feed's id, `feed_name` its name."""
        return {
            "id": self.id,
            "channel": self.channel_name,
            "feed": self.feed_id,
            "feed_name": feed_names.get(self.feed_id, self.feed_id),
            "title": self.title,
            "state": self.state,
            "why": self.why,
            "reason": self.reason,
            "reason_en": self.reason_en,
            "remedy": self.remedy,
            "remedy_en": self.remedy_en,
            "due": self.due.isoformat() if self.due else None,
            "urgent": self.urgent,
            "attempts": self.delivery.attempts if self.delivery is not None else 0,
            "link": self.link,
        }


class UnknownChannelError(ValueError):
    """A channel asked for that is neither configured nor has alerts in the state."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f'no channel "{name}" in the config or in the queue')
        self.hint = f"channels: {', '.join(known)}" if known else "no channel is configured"


def channel_names(config: Config, store: Store) -> list[str]:
    """The configured channels in config order, then those that only the state still names."""
    orphans = sorted({d.channel for d in store.deliveries(state=None)} - set(config.channels))
    return [*config.channels, *orphans]


def waiting(config: Config, store: Store, now: datetime, *, channel: str | None = None) -> list[Waiting]:
    """Every pending, held and failed alert at `now` (of `channel` only, if given), per channel
    in sending order, then those awaiting approval and those an editor held (`bridge.approval`),
    the failed ones after them, then the items the link guard
    held on it in the last HELD_DAYS, newest first. Raise UnknownChannelError for a `channel`
    that is neither configured nor in the state."""
    held = held_items(config, store, now)
    names = channel_names(config, store)
    names += sorted({item.channel for _, item in held} - set(names))
    if channel is not None:
        if channel not in names:
            raise UnknownChannelError(channel, names)
        names = [channel]
    rows = []
    for name in names:
        settings = config.channels.get(name)
        paused = store.channel_pause(name)
        for position, delivery in enumerate(store.deliveries(name)):
            state, why, reason, due = _pending(delivery, position, settings, store, config, now, paused)
            rows.append(Waiting(delivery, settings, state, why, reason, due))
        for delivery in store.deliveries(name, state="awaiting"):
            rows.append(Waiting(delivery, settings, "awaiting", WHY_APPROVAL, "da approvare", None))
        for delivery in store.deliveries(name, state="stopped"):
            at = delivery.acted_at.astimezone(config.bridge.timezone) if delivery.acted_at else None
            rows.append(Waiting(delivery, settings, "held", WHY_EDITOR,
                                f"fermato da {delivery.acted_by or '?'}" + (f" alle {at:%H:%M}" if at else "")
                                + ": non parte finché non è approvato", None))
        for delivery in store.deliveries(name, state="failed"):
            rows.append(Waiting(delivery, settings, "failed", WHY_FAILED, delivery.last_error or "non inviato", None))
        rows.extend(_held_row(config, feed_id, item, settings) for feed_id, item in held if item.channel == name)
    return rows


def held_items(config: Config, store: Store, now: datetime) -> list[tuple[str, HeldItem]]:
    """(feed id, held item) of every feed, configured or only in the state, held since
    HELD_DAYS before `now`, newest first."""
    since = now - timedelta(days=HELD_DAYS)
    feed_ids = list(dict.fromkeys([*(feed.id for feed in config.feeds), *store.feed_ids()]))
    found = [(feed_id, item) for feed_id in feed_ids for item in store.feed_state(feed_id).held if item.at >= since]
    return sorted(found, key=lambda pair: pair[1].at, reverse=True)


def _held_row(config: Config, feed_id: str, item: HeldItem, channel: ChannelConfig | None) -> Waiting:
    feed = next((f for f in config.feeds if f.id == feed_id), None)
    hold = explain(item.reason, link=item.link, feed_id=feed_id, feed_url=feed.url if feed else None,
                   link_domains=feed.link_domains if feed else ())
    return Waiting(None, channel, "held", WHY_LINK_GUARD, hold.reason, None, held=item, feed=feed_id,
                   reason_en=item.reason, remedy=hold.remedy, remedy_en=hold.remedy_en)


def _pending(delivery: Delivery, position: int, channel: ChannelConfig | None, store: Store, config: Config,
             now: datetime, paused: str | None) -> tuple[str, str, str, datetime | None]:
    """(state, why, reason, when it may go) of a pending delivery at `position` in its queue."""
    if channel is None:
        return ("pending", WHY_NOT_IN_CONFIG,
                "il canale non è più nella configurazione: l'avviso aspetta che torni", None)
    if paused is not None:
        return "paused", WHY_PAUSED, f"canale in pausa: {paused}", None
    if delivery.held:
        return ("held", WHY_MAX_PER_DAY,
                "limite giornaliero (max_per_day) raggiunto: andrà nel riepilogo di domani", None)
    if position > 0:
        return "pending", WHY_BEHIND, f"in coda dietro {position} avvis{'o' if position == 1 else 'i'}", None
    ready, why = head_ready(delivery, moment=now, last_post=store.last_post(delivery.channel), alerts=config.alerts,
                            timezone=config.bridge.timezone, pacing=pacing_for(channel, config.alerts))
    if why == WAIT_RETRY:
        return ("retrying", WHY_RETRY,
                f"nuovo tentativo dopo un errore: {delivery.last_error or 'errore temporaneo'}", ready)
    if why == WAIT_QUIET_HOURS:
        return "held", WHY_QUIET_HOURS, f"ore di silenzio ({config.alerts.quiet_hours}): parte alla fine", ready
    if why == WAIT_MIN_GAP:
        return "held", WHY_MIN_GAP, "distanza minima tra due pubblicazioni (min_gap)", ready
    return "pending", WHY_READY, "parte ora", ready
