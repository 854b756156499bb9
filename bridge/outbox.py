"""Delivery: drains one channel's queue in order, never dropping and never posting twice.

`drain` sends what is due now and returns when nothing more is due; the daemon calls it again
when a poll queues something or the next attempt falls due. Each delivery goes through:

1. `recover`, if a previous send was in flight when the process died: the channel says
   whether the post exists (WAHA reads back; Mastodon and webhooks deduplicate a resend by
   its key), so a crash never turns into a double post;
2. `prepare` (WAHA pre-generates the message id), stored with the delivery as "in flight"
   before the request leaves;
3. `send`, then the post is moved to the history with its remote id.

What to do with a failure is decided from the channel error's class alone (channels/base.py):

- transient (connection, timeout, 5xx, 429, gateway session starting): the delivery stays at
  the head of the queue and is retried from 30 s doubling to 30 min (an urgent one from 2 s
  doubling to 15 s), never sooner than the server's Retry-After; the queue behind it waits, so
  order holds and nothing hammers;
- channel down (bad key or token, unknown session or chat): the channel is paused with its
  reason, everything kept, until a reload or a successful health probe resumes it;
- message rejected: the alert is sent once more in its plainest form (text only, no markup,
  no image); rejected again, it is marked failed and reported, and the queue goes on.

Quiet hours hold routine alerts, `min_gap` paces posts, and beyond `max_per_day` routine
alerts are held and merged into one digest post the next day; urgent alerts go through all
three, and so does one an editor sent now (`Delivery.send_now`: first in its queue).
The queue holds only pending deliveries: one awaiting approval or stopped by an editor
(`bridge.approval`) is never sent. None of them applies to the `console` channel, which is for people at a terminal.

`max_age` holds at send time too: an alert that waited in the queue (a channel down for days,
a channel removed from the config and put back) until its item is older than its feed's
`max_age` is not posted. It is marked failed with the reason ("expired"), logged and shown in
`status`; never posted stale, never dropped silently.

Time: quiet hours and days are rules of the local wall clock, so they follow it when it is
stepped. Around the changes of daylight saving time a configured wall time is read as the
first real moment at or after it (`local_moment`): a quiet period ending at 02:30 on the
spring night, when the clocks go from 02:00 to 03:00, ends at 03:00; on the autumn night,
when 02:00-03:00 comes twice, at the first 02:30, and it does not start again in the repeated
hour. A window that lies wholly in the skipped hour (02:15-02:45) does not happen that night.
When the daemon notices a step of the wall clock, the queue's deadlines are moved by it
(`Store.amove_deadlines`); a drain that noticed it waits for that before it looks at them.

Every outcome is committed in turn with the state's other changes (`Store.acommit`: written
off the event loop) and awaited before the next step: the send is marked in flight on disk
before its request leaves, and the post is in the history before it leaves the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import structlog

from bridge.audit import BRIDGE, AuditEntry, snapshot
from bridge.channels import Channel, ChannelDownError, ChannelError, MessageRejected, Posted, TransientError
from bridge.channels.base import EditUnsupported, GatewayAnswerError
from bridge.config import AlertSettings, ChannelConfig, TimeWindow, format_duration
from bridge.corrections import AS_POST, rettifica
from bridge.item import Alert
from bridge.models import Delivery
from bridge.store import Store, with_retry

log = structlog.get_logger("bridge.outbox")

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(minutes=30)
# An urgent alert is retried within seconds: a missed emergency is the worst failure.
FIRST_URGENT_RETRY = timedelta(seconds=2)
MAX_URGENT_RETRY = timedelta(seconds=15)
#: An urgent alert not posted this long after it was queued is reported on the ops channel.
URGENT_DEADLINE = timedelta(minutes=2)
DIGEST_MAX_ITEMS = 20


@dataclass(frozen=True, slots=True)
class Pacing:
    """The rules that space out one channel's posts (see `pacing_for`)."""

    quiet_hours: bool = True
    min_gap: timedelta = timedelta(0)
    max_per_day: int | None = None


def pacing_for(channel: ChannelConfig, alerts: AlertSettings) -> Pacing | None:
    """The pacing of a configured channel: none for the console, else quiet hours, min_gap and
    the channel's max_per_day."""
    if channel.type == "console":
        return None
    return Pacing(quiet_hours=True, min_gap=alerts.min_gap, max_per_day=channel.max_per_day)


@dataclass(slots=True)
class DrainResult:
    """What one drain of one channel did."""

    channel: str
    sent: int = 0
    failed: int = 0  # attempts that did not post (retried later, or given up)
    given_up: int = 0
    unverified: int = 0  # accepted by the gateway but not found on the channel afterwards
    waiting: int = 0  # deliveries still pending
    expired: int = 0  # not posted: older than their feed's max_age when they could go
    next_due: datetime | None = None  # when something becomes due, if anything waits
    down: str | None = None  # why the channel cannot post: it is paused until resumed
    wrong_answer: str | None = None  # a 2xx that was not the platform's success (retried, reported)
    errors: list[str] = field(default_factory=list)


def retry_delay(attempts: int, retry_after: float | None = None, *, urgent: bool = False) -> timedelta:
    """Backoff after `attempts` failed attempts: 30 s doubling to 30 min (urgent: 2 s doubling
    to 15 s), or Retry-After if longer."""
    first, most = (FIRST_URGENT_RETRY, MAX_URGENT_RETRY) if urgent else (FIRST_RETRY, MAX_RETRY)
    delay: timedelta = min(first * (2 ** max(attempts - 1, 0)), most)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def overdue_urgent(deliveries: Iterable[Delivery], now: datetime) -> list[Delivery]:
    """The urgent alerts still pending `URGENT_DEADLINE` after they were queued (not those an
    editor holds or has yet to approve: those wait for a person, on purpose)."""
    return [d for d in deliveries if d.urgent and d.state == "pending" and now - d.created >= URGENT_DEADLINE]


def local_moment(day: date, wall: time, timezone: ZoneInfo) -> datetime:
    """The first real moment at or after the wall time `wall` of `day` in `timezone`, in UTC.

    A wall time skipped by a change of the clocks (02:30 in Rome on the last Sunday of March)
    gives the moment of the change (03:00 summer time); one that comes twice (02:30 on the
    last Sunday of October) gives its first occurrence (summer time).
    """
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=timezone)  # fold=0: the earlier reading of an ambiguous time
    if first.astimezone(UTC).astimezone(timezone).replace(tzinfo=None) == naive:
        return first.astimezone(UTC)
    # Skipped: read with the offset before the change (fold=0) it falls after the change, read
    # with the one after (fold=1) before it. The change is found between the two, to the second.
    readings = sorted(int(m.astimezone(UTC).timestamp()) for m in (first, naive.replace(tzinfo=timezone, fold=1)))
    before, after = readings
    offset_after = datetime.fromtimestamp(after, timezone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, timezone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def quiet_period(moment: datetime, window: TimeWindow, timezone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The quiet period `moment` falls in, as its (start, end) in UTC, or None outside quiet
    hours. A period runs from the first real moment at or after its start to the first real
    moment at or after its end (`local_moment`); it may cross midnight."""
    at = moment.astimezone(UTC)
    today = at.astimezone(timezone).date()
    for day in (today - timedelta(days=1), today):
        start = local_moment(day, window.start, timezone)
        end = local_moment(day if window.start < window.end else day + timedelta(days=1), window.end, timezone)
        if start <= at < end:
            return start, end
    return None


def quiet_hours_end(moment: datetime, alerts: AlertSettings, timezone: ZoneInfo) -> datetime:
    """When the quiet hours that `moment` falls in end (UTC); `moment` itself outside them."""
    window = alerts.quiet_hours
    period = quiet_period(moment, window, timezone) if window is not None else None
    return period[1] if period is not None else moment


def quiet_until(pacing: Pacing | None, alerts: AlertSettings, timezone: ZoneInfo, moment: datetime, *,
                urgent: bool) -> datetime | None:
    """When the quiet hours let an alert queued at `moment` go on a channel paced by `pacing`,
    if they hold it then (UTC); None when they do not: urgent alerts, unpaced channels (the
    console), or `moment` outside them. The delivery worker and `preview` both ask this."""
    if pacing is None or urgent or not pacing.quiet_hours:
        return None
    end = quiet_hours_end(moment, alerts, timezone)
    return end if end > moment else None


def day_start(moment: datetime, timezone: ZoneInfo) -> datetime:
    """The first moment of `moment`'s local day (its midnight, or the change of the clocks if
    midnight is skipped), in UTC."""
    return local_moment(moment.astimezone(timezone).date(), time(0), timezone)


def next_day_start(moment: datetime, timezone: ZoneInfo) -> datetime:
    """The first moment of the local day after `moment`'s, in UTC (a day of a change of the
    clocks lasts 23 or 25 hours)."""
    return local_moment(moment.astimezone(timezone).date() + timedelta(days=1), time(0), timezone)


def expired(delivery: Delivery, moment: datetime, max_age: timedelta | None) -> bool:
    """True when `delivery`'s item is older than `max_age` at `moment` (its publication time,
    or, for an undated item, the time it was queued), or the official alert it speaks of has
    ended (`Delivery.expires`)."""
    if delivery.expires is not None and delivery.expires <= moment:
        return True
    return max_age is not None and moment - (delivery.alert.published or delivery.created) > max_age


def _expiry_reason(delivery: Delivery, limit: str, moment: datetime) -> str:
    if delivery.expires is not None and delivery.expires <= moment:
        return f"expired: the official alert ended ({delivery.expires.isoformat(timespec='minutes')}) while it waited"
    return f"expired: older than its feed's max_age ({limit}) when it could be sent"


def digest_alert(deliveries: list[Delivery]) -> Alert:
    """One post listing the titles and links of alerts held back by `max_per_day`."""
    shown = deliveries[:DIGEST_MAX_ITEMS]
    lines = [f"• {d.alert.title}\n{d.alert.link}" if d.alert.link else f"• {d.alert.title}" for d in shown]
    if len(deliveries) > len(shown):
        lines.append(f"… e altre {len(deliveries) - len(shown)} notizie sul sito del Comune.")
    first = deliveries[0].alert
    return Alert(
        feed_id=first.feed_id,
        feed_name=first.feed_name,
        title=f"Riepilogo: {len(deliveries)} notizie",
        summary="\n\n".join(lines),
        link="",
        published=max((d.alert.published for d in deliveries if d.alert.published), default=None),
    )


async def drain(
    channel: Channel,
    *,
    store: Store,
    alerts: AlertSettings,
    timezone: ZoneInfo,
    now: Callable[[], datetime],
    pacing: Pacing | None = None,
    once: bool = False,
    max_age: Callable[[str], timedelta] | None = None,
) -> DrainResult:
    """Send every due pending delivery of `channel`, in order, committing each outcome.

    Return when nothing more is due (`next_due` says when something will be), after a
    transient failure, or when the channel is down or paused (`down`). `pacing` None means
    no quiet hours, gap or daily cap (the console). `once` (for `run --once`) tries each
    delivery at most once, backoff or not, and goes on past transient failures. `max_age`
    gives a feed id's max_age: a delivery older than that when it could go is marked failed
    ("expired") instead of being sent (see `expired`); None sends whatever its age.
    Before each send the store checks that it still owns the state directory
    (`StateLockLostError` propagates).
    """
    clog = log.bind(channel=channel.name)
    result = DrainResult(channel=channel.name)
    paused = store.channel_pause(channel.name)
    if paused is not None:
        result.down = paused
        result.waiting = len(store.deliveries(channel.name))
        return result
    for recovered in await _recover_in_flight(channel, store, now, clog):
        result.sent += 1
        if recovered.verified is False:
            result.unverified += 1
    tried: set[str] = set()
    while True:
        moment = now()
        if await store.deadlines_settled():  # this reading noticed a step: the deadlines moved first
            moment = now()
        pending = [d for d in store.deliveries(channel.name) if d.id not in tried]
        batch, result.next_due = await _due(pending, store, channel.name, alerts, timezone, moment,
                                            pacing=pacing, ignore_backoff=once)
        if not batch:
            break
        tried.update(d.id for d in batch)
        outcome = await _attempt(channel, batch, store, now, clog, max_age)
        result.expired += outcome.expired
        if outcome.posted is not None:
            result.sent += 1
            if outcome.posted.verified is False:
                result.unverified += 1
                result.errors.append(f"{batch[0].alert.title}: accepted but not visible on the channel")
            continue
        if outcome.retry_now:
            tried.difference_update(d.id for d in batch)
            continue
        result.failed += 1
        result.errors.append(f"{batch[0].alert.title}: {outcome.error}")
        if outcome.wrong_answer:
            result.wrong_answer = outcome.error
        if outcome.given_up:
            result.given_up += 1
        elif outcome.down:
            await store.acommit(store.plan_channel_pause(channel.name, outcome.error))
            result.down = outcome.error
            result.next_due = None
            break
        elif not once:
            result.next_due = outcome.retry_at
            break
    result.waiting = len(store.deliveries(channel.name))
    return result


async def _recover_in_flight(channel: Channel, store: Store, now: Callable[[], datetime],
                             clog: structlog.typing.FilteringBoundLogger) -> list[Posted]:
    """Before anything is sent: ask the channel about each delivery left in flight (by a crash,
    or a send whose outcome is unknown), wherever it now stands in the queue, and record as
    posted those it finds; return their proofs. Alerts that came in meanwhile may go ahead of
    it (urgent, send-now, an item dated earlier), and a channel that reads its posts back (WAHA)
    reads only the newest: asked at once, its post is still among them. One not found, or
    that the channel cannot tell about now, stays in flight and is asked again at its turn, as
    before. A digest's members are asked at the digest's turn (its text is the digest's), and
    corrections are not asked (an edit is repeated)."""
    found: list[Posted] = []
    for delivery in [d for d in store.deliveries(channel.name) if d.in_flight and not d.held and d.edit_of is None]:
        try:
            recovered = await channel.recover(delivery.alert, delivery_id=delivery.id, token=delivery.token)
        except ChannelError as exc:
            clog.info("cannot tell yet whether an interrupted send went out; asked again at its turn",
                      delivery=delivery.id, error=str(exc))
            break
        if recovered is not None:
            await store.acommit(store.plan_record_posts([delivery], recovered.remote_id, now(),
                                                        verified=recovered.verified))
            clog.info("alert was already posted before the restart; not sending again", delivery=delivery.id,
                      feed=delivery.feed_id, title=delivery.alert.title, remote_id=recovered.remote_id)
            found.append(recovered)
    return found


# Why the head of a queue waits (see `head_ready`).
WAIT_NONE = "none"
WAIT_RETRY = "retry"
WAIT_QUIET_HOURS = "quiet_hours"
WAIT_MIN_GAP = "min_gap"


def head_ready(head: Delivery, *, moment: datetime, last_post: datetime | None, alerts: AlertSettings,
               timezone: ZoneInfo, pacing: Pacing | None, ignore_backoff: bool = False) -> tuple[datetime, str]:
    """When the head of a channel's queue may go, at `moment`, and what holds it until then
    (the latest of the rules: WAIT_RETRY, WAIT_QUIET_HOURS (`quiet_until`, which `preview`
    asks too), WAIT_MIN_GAP; WAIT_NONE when it may go now). The daily cap (`max_per_day`) is
    the drain's, which holds alerts for the digest. Pure: the drain and `waits.waiting` (the
    console's *In coda* page, `channel-bridge queue`) both ask it."""
    ready, why = moment, WAIT_NONE
    if head.next_attempt and not ignore_backoff and head.next_attempt > ready:
        ready, why = head.next_attempt, WAIT_RETRY
    quiet = quiet_until(pacing, alerts, timezone, moment, urgent=head.unpaced)
    if quiet is not None and quiet > ready:
        ready, why = quiet, WAIT_QUIET_HOURS
    if pacing is not None and not head.unpaced:
        # A last post later than now means the wall clock was stepped back since: it holds
        # nothing (else it would hold the queue for the whole step). The next post may then
        # come sooner than min_gap after it; the pacing goes on from that post.
        if pacing.min_gap and last_post is not None and last_post <= moment and last_post + pacing.min_gap > ready:
            ready, why = last_post + pacing.min_gap, WAIT_MIN_GAP
    return ready, why


async def _due(
    pending: list[Delivery],
    store: Store,
    channel: str,
    alerts: AlertSettings,
    timezone: ZoneInfo,
    moment: datetime,
    *,
    pacing: Pacing | None,
    ignore_backoff: bool,
) -> tuple[list[Delivery], datetime | None]:
    """What to send at `moment`: the head of the queue (or a digest of held alerts), else
    nothing and when the head may go.

    Only the head is considered, so order holds: urgent first, then oldest first, and an alert
    waiting for its retry keeps the ones behind it waiting too.
    """
    if not pending:
        return [], None
    head = pending[0]
    ready, _ = head_ready(head, moment=moment, last_post=store.last_post(channel), alerts=alerts,
                          timezone=timezone, pacing=pacing, ignore_backoff=ignore_backoff)
    if pacing is not None and not head.unpaced:
        if pacing.max_per_day is not None and ready <= moment:
            today = day_start(moment, timezone)
            routine = [d for d in pending if not d.unpaced]
            held = [d for d in routine if d.held]
            if store.posts_since(channel, today) >= pacing.max_per_day:
                await store.acommit(store.plan_update_deliveries(
                    [replace(delivery, held=True) for delivery in routine if not delivery.held]))
                return [], next_day_start(moment, timezone)
            if len(held) > 1:
                return held, None
    return ([head], None) if ready <= moment else ([], ready)


async def _expire(stale: list[Delivery], store: Store, max_age: Callable[[str], timedelta] | None,
                  dlog: structlog.typing.FilteringBoundLogger, moment: datetime) -> None:
    limits = {delivery.id: format_duration(max_age(delivery.feed_id)) if max_age is not None else "-"
              for delivery in stale}
    # In flight: an earlier attempt's outcome is unknown (the channel could not tell).
    await store.acommit(store.plan_update_deliveries([replace(
        delivery, state="failed", in_flight=False,
        last_error=(f"{_expiry_reason(delivery, limits[delivery.id], moment)}; "
                    + ("not sent again" if delivery.in_flight else "not posted")),
    ) for delivery in stale]))
    for delivery in stale:
        limit = limits[delivery.id]
        if delivery.expires is not None and delivery.expires <= moment:
            dlog.warning("official alert not posted: it ended while it waited; marked failed",
                         delivery=delivery.id, title=delivery.alert.title, expires=delivery.expires.isoformat())
            continue
        dlog.warning("alert not posted: older than max_age when it could be sent; marked failed",
                     delivery=delivery.id, title=delivery.alert.title, max_age=limit,
                     published=(delivery.alert.published or delivery.created).isoformat())


@dataclass(slots=True)
class _Outcome:
    posted: Posted | None = None
    error: str = ""
    retry_at: datetime | None = None
    retry_now: bool = False  # send again at once (in the plainest form)
    wrong_answer: bool = False  # the gateway answered 2xx with something that is not a post
    down: bool = False
    given_up: bool = False
    expired: int = 0


async def _attempt(
    channel: Channel,
    batch: list[Delivery],
    store: Store,
    now: Callable[[], datetime],
    clog: structlog.typing.FilteringBoundLogger,
    max_age: Callable[[str], timedelta] | None = None,
) -> _Outcome:
    """Try one delivery (or one digest of several) and commit its outcome.

    A retry is planned from the time read after the attempt, not before it: a step of the
    wall clock during a send is then already accounted for (see `bridge.clock`).
    """
    head = batch[0]
    alert = head.alert if len(batch) == 1 else digest_alert(batch)
    dlog = clog.bind(delivery=head.id, feed=head.feed_id, attempt=head.attempts + 1)
    if len(batch) > 1:
        dlog = dlog.bind(digest=len(batch))
    try:
        if head.edit_of is not None and len(batch) == 1:
            # A correction that edits its post in place: repeating an edit is harmless, so a
            # crash during one simply edits again.
            store.check_lock()
            posted = await channel.edit(alert, remote_id=head.edit_of, plain=head.plain)
            await store.acommit(store.plan_record_posts(batch, posted.remote_id, now(), verified=posted.verified))
            dlog.info("post edited with the correction", title=alert.title, remote_id=posted.remote_id,
                      corrects=head.corrects)
            return _Outcome(posted=posted)
        if head.in_flight:
            # First: a post that went out before a crash is recorded as posted, however old.
            recovered = await channel.recover(alert, delivery_id=head.id, token=head.token)
            if recovered is not None:
                await store.acommit(store.plan_record_posts(batch, recovered.remote_id, now(),
                                                            verified=recovered.verified))
                dlog.info("alert was already posted before the restart; not sending again",
                          title=alert.title, remote_id=recovered.remote_id)
                return _Outcome(posted=recovered)
        moment = now()
        stale = [d for d in batch if expired(d, moment, max_age(d.feed_id) if max_age is not None else None)]
        if stale:
            await _expire(stale, store, max_age, dlog, moment)
            return _Outcome(retry_now=True, expired=len(stale))  # the next one may go now
        token = head.token if head.token is not None else await channel.prepare(head.id)
        head = replace(head, token=token, in_flight=True)
        # On disk before the request leaves; not at all if an editor held or changed it meanwhile.
        if not await store.acommit(store.plan_start_send(head)):
            return _Outcome(retry_now=True)
        store.check_lock()  # never post from a state directory that is no longer ours
        posted = await channel.send(alert, delivery_id=head.id, token=token, plain=head.plain)
    except EditUnsupported as exc:
        at = now()
        follow_up = replace(head, edit_of=None, alert=rettifica(head.alert, head.note or ""), plain=False,
                            acted=AS_POST, acted_by=BRIDGE, acted_at=at)
        entry = AuditEntry(at=at, who=BRIDGE, where="daemon", action=AS_POST, alert_id=head.id,
                           channel=head.channel, feed_id=head.feed_id, title=follow_up.alert.title,
                           before=snapshot(head), after=snapshot(follow_up), reason=str(exc))
        await store.acommit(store.plan_act([entry], [follow_up], []))
        dlog.warning('the post cannot be edited here; the correction goes out as a "Rettifica" post',
                     error=str(exc), corrects=head.corrects)
        return _Outcome(error=str(exc), retry_now=True)
    except TransientError as exc:
        # A timeout, or a wrong answer from a proxy that forwarded the request, may hide a post
        # that went out: the delivery stays in flight, so the next attempt asks the channel
        # before sending again.
        delay = retry_delay(head.attempts + 1, exc.retry_after, urgent=head.urgent)
        retry_at = now() + delay
        await store.acommit(store.plan_update_deliveries([with_retry(head, error=str(exc), at=retry_at)]))
        dlog.warning("send failed, will retry", error=str(exc), retry_in=int(delay.total_seconds()))
        return _Outcome(error=str(exc), retry_at=retry_at, wrong_answer=isinstance(exc, GatewayAnswerError))
    except ChannelDownError as exc:
        await store.acommit(store.plan_update_deliveries([replace(with_retry(head, error=str(exc), at=None),
                                                                  in_flight=False)]))
        dlog.error("channel cannot post; its queue is paused, nothing is lost", error=str(exc), hint=exc.hint)
        return _Outcome(error=str(exc), down=True)
    except MessageRejected as exc:
        if not head.plain:
            await store.acommit(store.plan_update_deliveries(
                [replace(with_retry(head, error=str(exc), at=None), in_flight=False, plain=True)]))
            dlog.warning("alert rejected; sending it again in its plainest form", error=str(exc))
            return _Outcome(error=str(exc), retry_now=True)
        await store.acommit(store.plan_update_deliveries(
            [replace(with_retry(delivery, error=str(exc), at=None, failed=True), in_flight=False)
             for delivery in batch]))
        dlog.error("alert rejected even in its plainest form; marked failed", error=str(exc), title=alert.title)
        return _Outcome(error=str(exc), given_up=True)
    except ChannelError as exc:
        delay = retry_delay(head.attempts + 1, urgent=head.urgent)
        retry_at = now() + delay
        await store.acommit(store.plan_update_deliveries([with_retry(head, error=str(exc), at=retry_at)]))
        dlog.warning("send failed, will retry", error=str(exc), retry_in=int(delay.total_seconds()))
        return _Outcome(error=str(exc), retry_at=retry_at)
    await store.acommit(store.plan_record_posts(batch, posted.remote_id, now(), verified=posted.verified))
    if posted.verified is False:
        dlog.error("gateway accepted the alert but it is not visible on the channel", title=alert.title,
                   remote_id=posted.remote_id)
    else:
        dlog.info("alert posted", title=alert.title, remote_id=posted.remote_id)
    return _Outcome(posted=posted)
