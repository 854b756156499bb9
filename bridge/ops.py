"""Operational alerts for the comune's IT office, to the optional `[ops]` channel.

Something an operator must act on (a channel paused by a bad key, a WhatsApp session logged
out, a feed failing for over an hour, a rejected reload, a post that never became visible) is
always logged; when `[ops] channel` is set it is also posted there, at most once per
`min_interval` for the same subject, so a long outage is one message, not hundreds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from bridge.channels import Channel, ChannelError
from bridge.item import Alert

log = structlog.get_logger("bridge.ops")


class OpsReporter:
    """Rate-limited operational alerts. `channel` None means: log only."""

    def __init__(self, channel: Channel | None, *, min_interval: timedelta, now: Callable[[], datetime]) -> None:
        self.channel = channel
        self.min_interval = min_interval
        self.now = now
        self._last: dict[str, datetime] = {}

    async def report(self, subject: str, message: str, *, hint: str = "") -> bool:
        """Log `message` about `subject` and post it to the ops channel unless the same subject
        was posted less than `min_interval` ago. Return True when it was posted."""
        log.warning("ops alert", subject=subject, message=message, hint=hint)
        moment = self.now()
        last = self._last.get(subject)
        # A last post later than now means the wall clock was stepped back: it limits nothing.
        if self.channel is None or (last is not None and timedelta(0) <= moment - last < self.min_interval):
            return False
        self._last[subject] = moment
        alert = Alert(
            feed_id="ops",
            feed_name="channel-bridge",
            title=f"channel-bridge: {subject}",
            summary=f"{message}\n{hint}".strip(),
            link="",
            published=moment,
        )
        try:
            await self.channel.send(alert, delivery_id=f"ops-{subject}-{int(moment.timestamp())}", plain=True)
        except ChannelError as exc:
            log.error("ops alert could not be posted", subject=subject, error=str(exc))
            return False
        return True

    def clear(self, subject: str) -> None:
        """Forget `subject`, so that its next occurrence is reported at once."""
        self._last.pop(subject, None)
