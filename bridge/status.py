"""The bridge's condition per feed and per channel: one report for `channel-bridge status` and
the console's *Stato* page. Pure over an open `Store` (read-only for `status`, the daemon's own
for the console): it reads the store's memory, never the state files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridge.config import OPS_FEED

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.store import Store

OPS_DAYS = 7  # how far back the report lists the bridge's own ops alerts


def status_report(config: Config, store: Store, *, now: datetime | None = None,
                  feed_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """The state directory's condition, per feed and per channel state, as `status --json`
    prints it: every feed of the config, or only `feed_ids` (a page of the console's list).
    Channels that are not in the config but still have alerts queued or failed come last,
    with `in_config` false."""
    channels = {name: channel.type for name, channel in config.channels.items()}
    return report(store, [feed.id for feed in config.feeds] if feed_ids is None else feed_ids, channels, now=now)


# Most in need of a person first: how the console orders its list of feeds.
HEALTH_ORDER = ("failing", "error", "stale", "new", "ok")


def feed_healths(config: Config, store: Store, now: datetime) -> dict[str, str]:
    """Each configured feed's health (`FeedState.health`, as `status_report` says it), by id:
    what the console counts and sorts its list by before it asks the report for one page."""
    return {feed.id: store.feed_state(feed.id).health(now).status for feed in config.feeds}


def report(store: Store, feed_ids: Sequence[str], channel_types: Mapping[str, str | None], *,
           now: datetime | None = None) -> dict[str, Any]:
    """`status_report` for the feeds `feed_ids` and the channels `channel_types` (name ->
    type, None when unknown): what `status` shows on a config file it cannot fully read."""
    feeds = []
    moment = now or datetime.now(UTC)
    for feed_id in feed_ids:
        state = store.feed_state(feed_id)
        health = state.health(moment)
        feeds.append({
            "id": feed_id,
            "health": health.status,
            "health_detail": health.detail,
            "last_poll": _iso(state.last_poll),
            "last_success": _iso(state.last_success),
            "consecutive_failures": state.failures,
            "failing_since": _iso(state.failing_since),
            "last_error": state.last_error,
            "retry_at": _iso(state.retry_at),
            "last_new_item": _iso(state.last_new_item),
            "seen_keys": store.seen_count(feed_id),
            "last_held": state.last_held,
            "first_poll": None if state.first_poll is None else {
                "at": _iso(state.first_poll), "items": state.first_poll_items, "posted": state.first_poll_posted},
        })
    channels = []
    orphans = sorted({d.channel for d in store.deliveries(state=None)} - set(channel_types))
    listed = [(name, kind, True) for name, kind in channel_types.items()]
    for name, kind, in_config in [*listed, *((name, None, False) for name in orphans)]:
        pending = store.deliveries(name)
        failed = store.deliveries(name, state="failed")
        channels.append({
            "name": name,
            "type": kind,
            "in_config": in_config,
            "queue": len(pending),
            "retrying": sum(1 for d in pending if d.attempts),
            "failed": len(failed),
            "held": sum(1 for d in pending if d.held),
            "awaiting": len(store.deliveries(name, state="awaiting")),  # da approvare
            "stopped": len(store.deliveries(name, state="stopped")),  # held by an editor
            "paused": store.channel_pause(name),
            "last_error": next((d.last_error for d in pending if d.last_error), None),
            "last_failure": max(failed, key=lambda d: d.created).last_error if failed else None,
            "last_post": _iso(store.last_post(name)),
        })
    return {"state": store.condition().to_dict(), "polls_written": _iso(store.polls_written()),
            "feeds": feeds, "channels": channels, "ops": ops_alerts(store, moment - timedelta(days=OPS_DAYS))}


def ops_alerts(store: Store, since: datetime) -> list[dict[str, Any]]:
    """The bridge's own ops alerts (feed id OPS_FEED) since `since`: those still queued or
    failed first, then those posted, newest first; each with its title, channel, state
    ("pending", "failed" or "posted"), its time (queued, or posted) and the error if any."""
    waiting = sorted((d for d in store.deliveries(state=None) if d.feed_id == OPS_FEED and d.created >= since),
                     key=lambda d: d.created, reverse=True)
    return [
        *({"title": d.alert.title, "channel": d.channel, "state": d.state, "at": _iso(d.created),
           "error": d.last_error} for d in waiting),
        *({"title": p.title, "channel": p.channel, "state": "posted", "at": _iso(p.posted_at), "error": None}
          for p in store.ops_posts(since)),
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
