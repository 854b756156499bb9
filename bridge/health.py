"""Is a feed healthy? Pure judgements over its remembered state, for `status`, the systemd
status line, the log and ops alerts.

- failing: the last polls failed, for longer than `FAILING_AFTER`;
- error: the last poll failed, for less than that (a blip, or the start of a failure);
- stale: the feed answers, but its newest item is far older than its usual rhythm would
  predict. A site migration often leaves the old feed URL answering with the same old items
  forever; nothing errors, yet nothing new will ever come.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median

FAILING_AFTER = timedelta(hours=1)
STALE_MIN = timedelta(days=14)  # never call a feed stale sooner than this
STALE_FACTOR = 6  # ... nor before this many of its usual gaps between items have passed
MIN_DATED_ITEMS = 4


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """`status` is "ok", "error" (the last poll failed), "failing" (for over an hour),
    "stale" or "new" (never polled); `detail` says why."""

    status: str
    detail: str = ""


def rhythm(published: Sequence[datetime | None]) -> timedelta | None:
    """The feed's usual gap between items: the median gap between its dated items, or None
    when fewer than `MIN_DATED_ITEMS` items are dated."""
    dates = sorted(d for d in published if d is not None)
    if len(dates) < MIN_DATED_ITEMS:
        return None
    gaps = [b - a for a, b in pairwise(dates)]
    return timedelta(seconds=median(g.total_seconds() for g in gaps))


def stale_after(usual_gap: timedelta | None) -> timedelta:
    """How long without a new item makes a feed stale."""
    if usual_gap is None:
        return STALE_MIN * 2
    return max(STALE_MIN, usual_gap * STALE_FACTOR)


def judge(
    *,
    now: datetime,
    last_poll: datetime | None,
    failing_since: datetime | None,
    last_error: str | None,
    newest_item: datetime | None,
    usual_gap: timedelta | None,
) -> FeedHealth:
    """The health of one feed at `now`, from what its state remembers."""
    if last_poll is None:
        return FeedHealth("new", "not polled yet")
    if failing_since is not None and now - failing_since >= FAILING_AFTER:
        return FeedHealth("failing", f"failing since {failing_since:%Y-%m-%d %H:%M} UTC: {last_error}")
    if failing_since is not None:
        # Not yet "failing" (no ops alert for a blip), but never "ok": its last poll failed.
        return FeedHealth("error", f"last poll failed, retrying: {last_error}")
    if newest_item is not None and now - newest_item > stale_after(usual_gap):
        days = (now - newest_item).days
        return FeedHealth(
            "stale",
            f"nothing new for {days} days (newest item {newest_item:%Y-%m-%d}); "
            "has the site moved its feed?",
        )
    return FeedHealth("ok")
