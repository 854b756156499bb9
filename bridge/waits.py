"""What waits to be posted and why: every pending, held and failed alert, per channel in
sending order, with its state, the reason it waits and when it may go. One answer for the
console's *In coda* page and `channel-bridge queue`.

Pure over the config, an open `Store` (the daemon's own for the console, read-only for the
command) and a moment: it reads the store's memory, never the state files. Why the head of a
queue waits is the drain's own rule (`outbox.head_ready`), asked, not re-made.

The reason is given twice: `why`, a code for machines (WHY_*), and `reason`, the sentence the
office reads on the page (in Italian, as the console is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.outbox import WAIT_MIN_GAP, WAIT_QUIET_HOURS, WAIT_RETRY, head_ready, pacing_for

if TYPE_CHECKING:
    from bridge.config import ChannelConfig, Config
    from bridge.models import Delivery
    from bridge.store import Store

STATES = ("pending", "held", "retrying", "paused", "failed")

WHY_READY = "ready"  # at the head, nothing holds it: it goes at the next drain
WHY_BEHIND = "behind"  # behind other alerts of its channel
WHY_RETRY = "retry"  # a transient error: tried again at `due`
WHY_QUIET_HOURS = "quiet_hours"
WHY_MIN_GAP = "min_gap"
WHY_MAX_PER_DAY = "max_per_day"  # held for the next day's digest
WHY_PAUSED = "paused"  # the channel is down (bad token, session)
WHY_NOT_IN_CONFIG = "not_in_config"  # its channel was removed from the config
WHY_FAILED = "failed"  # given up: rejected twice, or expired


@dataclass(frozen=True, slots=True)
class Waiting:
    """One alert not (yet) posted: its delivery, its channel's config (None when the channel
    is no longer configured), its state (one of STATES), why, and when it may go (None when
    that is not known: behind others, paused, held, failed)."""

    delivery: Delivery
    channel: ChannelConfig | None
    state: str
    why: str
    reason: str
    due: datetime | None

    def to_dict(self, feed_names: dict[str, str]) -> dict[str, Any]:
        """The row of `queue --json`; `feed` is the feed's id, `feed_name` its name."""
        delivery = self.delivery
        return {
            "id": delivery.id,
            "channel": delivery.channel,
            "feed": delivery.feed_id,
            "feed_name": feed_names.get(delivery.feed_id, delivery.feed_id),
            "title": delivery.alert.title,
            "state": self.state,
            "why": self.why,
            "reason": self.reason,
            "due": self.due.isoformat() if self.due else None,
            "urgent": delivery.urgent,
            "attempts": delivery.attempts,
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
    in sending order, the failed ones after each channel's queue. Raise UnknownChannelError for
    a `channel` that is neither configured nor in the state."""
    names = channel_names(config, store)
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
        for delivery in store.deliveries(name, state="failed"):
            rows.append(Waiting(delivery, settings, "failed", WHY_FAILED, delivery.last_error or "non inviato", None))
    return rows


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
