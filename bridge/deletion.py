"""Deleting a post: always a person's decision (`channel-bridge queue delete ID`), never the
bridge's. Pure: whether the post of that id may be deleted now, judged against the history
and the audit trail.

A deletion is two entries of the audit trail: DELETE, written before the platform is asked
(who, from where, why), and DELETED once the platform removed the post (or no longer had
it). A second deletion of the same post is refused naming the first ("already deleted by anna
at 10:42"); a deletion cut off between the two entries (a crash, a platform that failed) may
be asked again, and asking a platform to delete a post it no longer has is harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bridge.approval import BAD_ACTION, CONFLICT, NOT_ALLOWED, NOT_FOUND, ActionRefused

if TYPE_CHECKING:
    from bridge.audit import AuditEntry
    from bridge.models import Post

DELETE = "delete"  # asked (the audit entry before the platform call)
DELETED = "deleted"  # done: the post is no longer on the platform


def check_delete(delivery_id: str, post: Post | None, last: AuditEntry | None, *, reason: str,
                 timezone: ZoneInfo) -> Post:
    """The post `delivery_id` (as `history` shows it) if it may be deleted now; raise
    `ActionRefused` otherwise: no reason given, no such post, already deleted (naming who
    and when), or a post the platform gave no id for (nothing to delete by)."""
    if not reason.strip():
        raise ActionRefused(BAD_ACTION, "a deletion needs a reason", hint='add --reason "..."')
    if post is None:
        raise ActionRefused(NOT_FOUND, f"no post {delivery_id} in the history",
                            hint="give the id as channel-bridge history shows it")
    if last is not None and last.action == DELETED:
        raise ActionRefused(CONFLICT, f"post {delivery_id} was already deleted by {last.who} at "
                            f"{_at(last.at, timezone)}" + (f" ({last.reason})" if last.reason else ""))
    if not post.remote_id:
        raise ActionRefused(NOT_ALLOWED, f"post {delivery_id} on {post.channel} has no id on the platform: "
                            "there is nothing to delete it by", hint="delete it by hand on the platform")
    return post


def _at(moment: datetime, timezone: ZoneInfo) -> str:
    return moment.astimezone(timezone).strftime("%d/%m/%Y %H:%M")
