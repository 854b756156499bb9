"""Views and reactions of the posts on WhatsApp Channels, read from WAHA now and then and kept
in memory for the console's *Pubblicati* page, its CSV export and its monthly summary.

`Engagement` holds, per WAHA channel, the last reading that worked: the counts of the
channel's newest `ENGAGEMENT_READ` posts (100, what one request of WAHA's channel preview
covers, as its documentation recommends), by bare message id, and the wall time it was read.
A post of the history is matched by the bare form of its remote id; an older post, no longer
among those 100, has no count (the page says so). `keep_reading` is the daemon's background
task: each channel is read at most once every `REFRESH_EVERY` seconds of the monotonic clock
(an hour), a failed reading included (later still when WAHA's 429 asks for longer), so a page
request never causes one and never waits on WAHA.

A reading that fails keeps the previous counts, is logged once per run of failures (and once
when readings work again), and does nothing else: it neither pauses the channel nor raises an
ops alert, since it says nothing about whether the channel can post. The counts are not
written to the state: a restart reads them again with one request per channel, and counts
that keep changing are not worth a write of the one writer's files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from bridge.channels.base import ChannelError, TransientError
from bridge.channels.waha import ENGAGEMENT_READ, PostCounts, WahaChannel, bare_id
from bridge.clock import Clock
from bridge.models import Post

log = structlog.get_logger("bridge.engagement")

REFRESH_EVERY = 3600.0  # seconds between two readings of one channel, at least

__all__ = ["ENGAGEMENT_READ", "REFRESH_EVERY", "Engagement", "PostCounts", "Reading", "keep_reading"]


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of a channel that worked: counts by bare message id, and when (wall time)."""

    counts: Mapping[str, PostCounts]
    read_at: datetime


class Engagement:
    """The last good reading of each WAHA channel, and when each was last tried.

    Read by the console from other threads (its pages are built off the loop): a reading is
    immutable and replaced whole, so a page sees one reading or the next, never a mix.
    """

    def __init__(self, monotonic: Callable[[], float], *, every: float = REFRESH_EVERY) -> None:
        self._monotonic = monotonic
        self._every = every
        self._readings: dict[str, Reading] = {}
        self._due: dict[str, float] = {}  # channel -> monotonic time its next reading may be made
        self._failing: set[str] = set()

    def reading(self, channel: str) -> Reading | None:
        """The last reading of `channel` that worked, None before the first."""
        return self._readings.get(channel)

    def counts_for(self, post: Post) -> PostCounts | None:
        """The counts of `post` in the last reading of its channel; None when the channel has
        none yet, or the post is not among the posts it covered (or has no remote id)."""
        reading = self._readings.get(post.channel)
        if reading is None or not post.remote_id:
            return None
        return reading.counts.get(bare_id(post.remote_id))

    def wait(self, channels: list[str]) -> float:
        """Seconds until the first of `channels` is due for a reading (0: now)."""
        now = self._monotonic()
        due = [self._due.get(name, now) - now for name in channels]
        return max(min(due, default=self._every), 0.0)

    async def refresh(self, name: str, channel: WahaChannel, now: datetime) -> bool:
        """Read `channel` once if it is due; return whether a new reading was kept. `now` is the
        wall time the reading is shown with ("aggiornate alle 14:05"). The next reading is due
        `every` seconds later, or when WAHA's `Retry-After` says if that is later still."""
        started = self._monotonic()
        if started < self._due.get(name, started):
            return False
        self._due[name] = started + self._every
        try:
            counts = await channel.engagement()
        except ChannelError as exc:
            wait = exc.retry_after if isinstance(exc, TransientError) else None
            if wait is not None and wait > self._every:
                self._due[name] = started + wait
            if name not in self._failing:
                self._failing.add(name)
                kept = self._readings.get(name)
                log.warning("cannot read the views and reactions of the channel's posts; the page keeps the "
                            "previous counts", channel=name, error=str(exc), hint=exc.hint,
                            counts_of=kept.read_at.isoformat() if kept else None)
            return False
        if name in self._failing:
            self._failing.discard(name)
            log.info("views and reactions readable again", channel=name)
        self._readings[name] = Reading(counts, now)
        return True

    def keep_only(self, channels: list[str]) -> None:
        """Forget the channels that are no longer WAHA channels of the config (a reload)."""
        for book in (self._readings, self._due):
            for name in [name for name in book if name not in channels]:
                del book[name]
        self._failing.intersection_update(channels)


async def keep_reading(engagement: Engagement, channels: Callable[[], Mapping[str, object]],
                       now: Callable[[], datetime], clock: Clock) -> None:
    """Read the views and reactions of every WAHA channel among `channels()` (asked anew each
    time: a reload changes them) when it is due, then sleep on `clock` until the next is due;
    forever (cancel to stop)."""
    while True:
        waha = {name: channel for name, channel in channels().items() if isinstance(channel, WahaChannel)}
        engagement.keep_only(list(waha))
        for name, channel in waha.items():
            await engagement.refresh(name, channel, now())
        await clock.sleep(engagement.wait(list(waha)) if waha else REFRESH_EVERY)
