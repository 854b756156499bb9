"""Operational alerts for the comune's IT office, to the optional `[ops]` channel.

Something an operator must act on (a channel paused by a bad key, a WhatsApp session logged
out, a feed failing for over an hour, a rejected reload, a post that never became visible) is
reported at most once per `min_interval` for the same subject, so a long outage is one log
line and one message, not one per poll: the warning "ops alert" is logged when the subject is
reported, and its repeats within `min_interval` only at debug level. This holds with no ops
channel too.

When `[ops] channel` is set, the report is queued in the outbox for that channel like any
alert (`bridge.outbox`): durable, retried, in the history (feed id `OPS_FEED`), shown by
`status`, held by quiet hours when routine. Urgent, through quiet hours: a paused channel,
posts that are not visible, the state directory not writable (citizens get nothing until
someone acts). Its delivery id is drawn from the subject and the `min_interval`-long period
of the wall clock it falls in: reported again in that period (after a restart, a crash loop,
`run --once` from cron) it is not queued again; a subject cleared and back in the same period
is a new occurrence and gets an id of its own.

Two reports cannot go through the outbox:
- one about the ops channel itself (it is paused, failing...): queued to it, it would wait
  behind the very fault it reports, and its own failure would report again. It is logged only,
  at error level.
- one made while the state directory cannot be written (nothing can be queued): it is sent
  to the ops channel at once, directly, as before the outbox; it is not in the history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from bridge.channels import Channel, ChannelError
from bridge.config import OPS_FEED
from bridge.item import Alert
from bridge.store import Delivery, StateError, StateLockLostError, Store

log = structlog.get_logger("bridge.ops")

OPS_NAME = "channel-bridge"  # their feed name, and the start of their title


def ops_alert(subject: str, message: str, hint: str, moment: datetime, timezone: ZoneInfo) -> Alert:
    """The alert for one report: "channel-bridge: <subject>", the message, the hint, and when it
    was noticed in the bridge's time zone (a routine one may go out after quiet hours)."""
    local = moment.astimezone(timezone)
    noticed = f"noticed {local:%Y-%m-%d %H:%M} {local.tzname()}"
    return Alert(
        feed_id=OPS_FEED,
        feed_name=OPS_NAME,
        title=f"{OPS_NAME}: {subject}",
        summary="\n".join(part for part in (message, hint, noticed) if part),
        link="",
        published=moment,
    )


def ops_delivery_id(subject: str, moment: datetime, min_interval: timedelta, *, again: bool) -> str:
    """The delivery id of a report of `subject` at `moment`: the same for every report in one
    `min_interval`-long period of the wall clock, or, when `again` (the subject was cleared
    since its last report), the same only for reports in the same second."""
    step = max(int(min_interval.total_seconds()), 1)
    stamp = int(moment.timestamp())
    period = f"at-{stamp}" if again else f"period-{stamp // step}-of-{step}"
    return f"ops-{hashlib.sha256(subject.encode()).hexdigest()[:16]}-{period}"


class OpsReporter:
    """Rate-limited operational alerts, queued to the ops channel (see the module docstring).

    `channel` None means: log only. `store` None (tests of the log alone) means: no outbox, a
    report is sent directly. `wake(name)` tells the delivery worker of channel `name` that
    something was queued.
    """

    def __init__(
        self,
        channel: Channel | None,
        *,
        min_interval: timedelta,
        now: Callable[[], datetime],
        store: Store | None = None,
        wake: Callable[[str], None] = lambda name: None,
        timezone: ZoneInfo | None = None,
    ) -> None:
        self.channel = channel
        self.min_interval = min_interval
        self.now = now
        self.store = store
        self.wake = wake
        self.timezone = timezone or ZoneInfo("Europe/Rome")
        self._last: dict[str, datetime] = {}
        self._cleared: set[str] = set()

    def _due(self, subject: str, moment: datetime) -> bool:
        last = self._last.get(subject)
        # A last report later than now means the wall clock was stepped back: it limits nothing.
        return last is None or not timedelta(0) <= moment - last < self.min_interval

    async def report(self, subject: str, message: str, *, hint: str = "", urgent: bool = False,
                     about_channel: str | None = None) -> bool:
        """Report `message` about `subject`, unless it was reported less than `min_interval`
        ago (then only a debug line). `urgent` goes through quiet hours; `about_channel` names
        the channel the subject is about, when it is one. Return True when the alert was
        queued for (or sent to) the ops channel."""
        moment = self.now()
        if not self._due(subject, moment):
            log.debug("ops alert repeated within min_interval; not reported again yet", subject=subject)
            return False
        self._last[subject] = moment
        again = subject in self._cleared
        self._cleared.discard(subject)
        if self.channel is None:
            log.warning("ops alert", subject=subject, message=message, hint=hint)
            return False
        if about_channel == self.channel.name:
            log.error("ops alert about the ops channel itself: logged only, not queued to it", subject=subject,
                      message=message, hint=hint, channel=about_channel)
            return False
        alert = ops_alert(subject, message, hint, moment, self.timezone)
        delivery_id = ops_delivery_id(subject, moment, self.min_interval, again=again)
        if self.store is None:
            log.warning("ops alert", subject=subject, message=message, hint=hint)
            return await self._send_now(alert, delivery_id, subject)
        delivery = Delivery(id=delivery_id, channel=self.channel.name, feed_id=OPS_FEED, alert=alert,
                            created=moment, order=moment.timestamp(), urgent=urgent, plain=True)
        try:
            queued = await self.store.acommit(self.store.plan_add_deliveries([delivery]))
        except StateLockLostError:
            return False  # the daemon stops: never post from a state directory no longer ours
        except (OSError, StateError) as exc:
            log.warning("ops alert", subject=subject, message=message, hint=hint)
            log.info("ops alert cannot be queued (the state cannot be written): sending it now", subject=subject,
                     error=str(exc))
            return await self._send_now(alert, delivery_id, subject)
        if not queued:  # reported in this period already (before a restart)
            log.debug("ops alert already queued or posted in this period", subject=subject, delivery=delivery_id)
            return False
        log.warning("ops alert", subject=subject, message=message, hint=hint, delivery=delivery_id,
                    channel=self.channel.name, urgent=urgent)
        self.wake(self.channel.name)
        return True

    async def _send_now(self, alert: Alert, delivery_id: str, subject: str) -> bool:
        assert self.channel is not None
        try:
            await self.channel.send(alert, delivery_id=delivery_id, plain=True)
        except ChannelError as exc:
            log.error("ops alert could not be posted", subject=subject, error=str(exc))
            return False
        return True

    def clear(self, subject: str) -> None:
        """Forget `subject`, so that its next occurrence is reported at once."""
        if self._last.pop(subject, None) is not None:
            self._cleared.add(subject)
