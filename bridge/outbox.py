"""Delivery: drains one channel's queue, oldest first and urgent first, without ever dropping.

`drain` sends what is due now and returns when the queue is empty or nothing more is due;
the daemon calls it again when a poll queues something or the next attempt falls due. What
to do with a failure is decided from the channel error's class alone (see channels/base.py):

- transient: the delivery stays pending and is retried with a capped, doubling backoff that
  honours the server's Retry-After;
- channel down (bad key, unknown session or chat): the delivery stays pending and the whole
  channel rests, so a bad token does not burn through the queue;
- message rejected: that alert is marked failed and reported, the queue goes on.

Quiet hours hold routine alerts (urgent ones pass) and `min_gap` paces posts; neither applies
to the `console` channel, which is for people at a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from bridge.channels import Channel, ChannelDownError, ChannelError, MessageRejected, TransientError
from bridge.config import AlertSettings
from bridge.store import Delivery, Store, with_retry

log = structlog.get_logger("bridge.outbox")

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(minutes=30)
CHANNEL_DOWN_RETRY = timedelta(minutes=10)


@dataclass(slots=True)
class DrainResult:
    """What one drain of one channel did."""

    channel: str
    sent: int = 0
    failed: int = 0  # attempts that did not post (retried later, or given up)
    given_up: int = 0
    waiting: int = 0  # deliveries still pending
    next_due: datetime | None = None  # when something becomes due, if anything waits
    down: bool = False  # the channel as a whole cannot post; it rests until next_due
    errors: list[str] = field(default_factory=list)


def retry_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """Backoff after `attempts` failed attempts: 30 s doubling to 30 min, or Retry-After if longer."""
    delay: timedelta = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def in_quiet_hours(moment: datetime, alerts: AlertSettings, timezone: ZoneInfo) -> bool:
    """True when `moment` falls inside the configured quiet hours, in the bridge's time zone."""
    window = alerts.quiet_hours
    return window is not None and window.contains(moment.astimezone(timezone).time())


def quiet_hours_end(moment: datetime, alerts: AlertSettings, timezone: ZoneInfo) -> datetime:
    """The first moment after `moment` that is outside quiet hours (minute precision)."""
    assert alerts.quiet_hours is not None
    local = moment.astimezone(timezone)
    end = local.replace(hour=alerts.quiet_hours.end.hour, minute=alerts.quiet_hours.end.minute,
                        second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


async def drain(
    channel: Channel,
    *,
    store: Store,
    alerts: AlertSettings,
    timezone: ZoneInfo,
    now: Callable[[], datetime],
    paced: bool = True,
    once: bool = False,
) -> DrainResult:
    """Send every due pending delivery of `channel`, in order, committing each outcome.

    Return when nothing more is due (`next_due` says when something will be), after a
    transient failure (the channel is struggling: the queue keeps its order and waits), or
    when the channel is down (`down`). `paced` applies quiet hours and `min_gap` (false for
    the console). `once` (for `run --once`) tries each delivery at most once, backoff or not,
    and goes on past transient failures.
    """
    clog = log.bind(channel=channel.name)
    result = DrainResult(channel=channel.name)
    tried: set[str] = set()
    while True:
        moment = now()
        pending = [d for d in store.deliveries(channel.name) if d.id not in tried]
        due, result.next_due = _first_due(pending, store, channel.name, alerts, timezone, moment,
                                          paced=paced, ignore_backoff=once)
        if due is None:
            break
        tried.add(due.id)
        outcome, retry_at = await _attempt(channel, due, store, moment, now, clog)
        if outcome == "sent":
            result.sent += 1
            continue
        result.failed += 1
        result.errors.append(f"{due.alert.title}: {_last_error(store, due)}")
        if outcome == "given_up":
            result.given_up += 1
        elif outcome == "down":
            result.down = True
            result.next_due = retry_at
            break
        elif not once:
            result.next_due = retry_at
            break
    result.waiting = len(store.deliveries(channel.name))
    return result


def _first_due(
    pending: list[Delivery],
    store: Store,
    channel: str,
    alerts: AlertSettings,
    timezone: ZoneInfo,
    moment: datetime,
    *,
    paced: bool,
    ignore_backoff: bool,
) -> tuple[Delivery | None, datetime | None]:
    """The head of the queue if it may go at `moment`, else None and when it may.

    Only the head is considered, so order holds: urgent first, then oldest first, and an
    alert waiting for its retry keeps the ones behind it waiting too.
    """
    if not pending:
        return None, None
    head = pending[0]
    ready = moment
    if head.next_attempt and not ignore_backoff:
        ready = max(ready, head.next_attempt)
    if paced and not head.urgent:
        if in_quiet_hours(moment, alerts, timezone):
            ready = max(ready, quiet_hours_end(moment, alerts, timezone))
        last = store.last_post(channel)
        if alerts.min_gap and last is not None:
            ready = max(ready, last + alerts.min_gap)
    return (head, None) if ready <= moment else (None, ready)


def _last_error(store: Store, delivery: Delivery) -> str:
    for candidate in store.deliveries(delivery.channel, state=None):
        if candidate.id == delivery.id:
            return candidate.last_error or "unknown error"
    return "unknown error"


async def _attempt(
    channel: Channel,
    delivery: Delivery,
    store: Store,
    moment: datetime,
    now: Callable[[], datetime],
    clog: structlog.typing.FilteringBoundLogger,
) -> tuple[str, datetime | None]:
    """Try one delivery and commit its outcome.

    Return "sent", "retry", "down" or "given_up", with the time of the next attempt.
    """
    dlog = clog.bind(delivery=delivery.id, feed=delivery.feed_id, attempt=delivery.attempts + 1)
    try:
        posted = await channel.send(delivery.alert, delivery_id=delivery.id)
    except TransientError as exc:
        delay = retry_delay(delivery.attempts + 1, exc.retry_after)
        store.update_delivery(with_retry(delivery, error=str(exc), at=moment + delay))
        dlog.warning("send failed, will retry", error=str(exc), retry_in=int(delay.total_seconds()))
        return "retry", moment + delay
    except ChannelDownError as exc:
        store.update_delivery(with_retry(delivery, error=str(exc), at=moment + CHANNEL_DOWN_RETRY))
        dlog.error("channel cannot post; its queue waits", error=str(exc), hint=exc.hint)
        return "down", moment + CHANNEL_DOWN_RETRY
    except MessageRejected as exc:
        store.update_delivery(with_retry(delivery, error=str(exc), at=None, failed=True))
        dlog.error("alert rejected by the channel; marked failed", error=str(exc), title=delivery.alert.title)
        return "given_up", None
    except ChannelError as exc:
        delay = retry_delay(delivery.attempts + 1)
        store.update_delivery(with_retry(delivery, error=str(exc), at=moment + delay))
        dlog.warning("send failed, will retry", error=str(exc), retry_in=int(delay.total_seconds()))
        return "retry", moment + delay
    store.record_post(delivery, posted.remote_id, now())
    dlog.info("alert posted", title=delivery.alert.title, remote_id=posted.remote_id)
    return "sent", None
