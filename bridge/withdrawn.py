"""Posts "ritirato alla fonte": an item the bridge posted that its feed no longer lists within
a day of the post, while the feed still lists items older than it (an item pushed out of a
short feed by newer ones is not withdrawn: nothing older than it is left). Pure.

A withdrawn post is marked once (an entry WITHDRAWN of the audit trail, by `channel-bridge`
from `daemon`), said in the log and shown on the console's *Pubblicati*; nothing is deleted:
deleting a post is a person's decision (`bridge.deletion`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from bridge.identity import delivery_id
from bridge.item import Item
from bridge.models import Post

WITHDRAWN = "withdrawn"
#: A post is watched for this long after it was made.
WATCHED = timedelta(days=1)


def withdrawn_posts(posts: Iterable[Post], items: Sequence[Item], channels: Sequence[str],
                    marked: Callable[[str], bool]) -> list[Post]:
    """Those of `posts` (recent first posts of one feed) whose item is not among `items` (the
    feed's fetched and parsed items) while `items` has one published before it; `marked`
    says whether a post is already marked (or deleted)."""
    listed = {delivery_id(channel, item) for item in items for channel in channels}
    dates = [item.published for item in items if item.published is not None]
    oldest = min(dates, default=None)
    if oldest is None:
        return []
    return [post for post in posts
            if post.delivery_id not in listed and post.published is not None and oldest < post.published
            and not marked(post.delivery_id)]


def watched_since(now: datetime) -> datetime:
    return now - WATCHED
