"""A poll's record for an official alert source: what changed since the last poll
(`bridge.alerts.state.transition`) becomes the alerts to post, queued with the source's new
state in one turn of the store, as a news feed's items are (`bridge.poll`).

Unlike a news feed, the first poll posts the alerts in force now. Each post is built only from
the source's fields (`bridge.alerts.text`); orange and red are urgent (the feed's
`urgent_levels`), an end with the urgency of the alert it ends. The link is the feed's `link`
(the comune's civil-protection page), else the source's own page when it is on the source's
domains (the link guard); an emergency is never held for its link: without one that passes,
the post goes with the feed's `link` or, for a source that names none, without a page of its own
(the text names the source).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

import structlog

from bridge.alerts.state import Event, Snapshot, state_from_json, state_to_json, transition
from bridge.alerts.text import alert_text, is_urgent
from bridge.approval import AWAITING, needs_approval
from bridge.config import Config, FeedConfig
from bridge.fetch import Validators
from bridge.item import Alert
from bridge.links import link_problem
from bridge.models import Delivery, FeedState
from bridge.store import Plan, Store

__all__ = ["alert_of", "record_alerts"]


def alert_of(feed: FeedConfig, event: Event, now: datetime) -> Alert:
    """The alert citizens read for `event`: its first words (the level and the hazard) as the
    title, the rest (when, where, the source) as the text, and the link."""
    text = alert_text(event, now)
    title, _, rest = text.partition(" — ")
    summary = rest[:1].upper() + rest[1:] if rest else ""
    return Alert(feed_id=feed.id, feed_name=feed.name, title=title, summary=summary,
                 link=_link(feed, event.observation.web), published=event.observation.sent,
                 urgent=feed.urgent or is_urgent(event, feed.urgent_levels))


def _link(feed: FeedConfig, web: str) -> str:
    if feed.link:
        return feed.link
    if web and link_problem(web, feed_url=feed.url, link_domains=feed.link_domains) is None:
        return web
    return ""


def event_id(channel: str, feed: FeedConfig, event: Event) -> str:
    """A stable id for posting `event` to `channel`: a second poll that finds the same change
    (after a crash between the queue and the state) queues nothing twice."""
    o = event.observation
    key = f"{channel}\n{feed.id}\n{event.change}\n{o.key}\n{o.level}\n{o.identifier}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def record_alerts(feed: FeedConfig, config: Config, store: Store, state: FeedState, snapshot: Snapshot,
                  validators: Validators, started: datetime,
                  flog: structlog.typing.FilteringBoundLogger) -> Plan[list[Delivery]]:
    """The poll's change of the store, at its turn: the events' deliveries queued (one per
    channel), then the source's new state and poll state kept."""
    previous, problems = state_from_json(state.alerts)
    for problem in problems:
        flog.warning("alert state written by hand or by another version", problem=problem)
    moved = transition(previous, snapshot, started)
    for skipped in moved.skipped:
        flog.info("alert not posted", area=skipped.observation.area, hazard=skipped.observation.hazard,
                  reason=skipped.reason)
    deliveries = []
    for order, event in enumerate(moved.events):
        alert = alert_of(feed, event, started)
        for channel in feed.channels:
            approve = needs_approval(feed, config.channels.get(channel))
            deliveries.append(Delivery(id=event_id(channel, feed, event), channel=channel, feed_id=feed.id,
                                       alert=alert, created=started, order=started.timestamp() + order / 1000,
                                       urgent=alert.urgent, state=AWAITING if approve else "pending",
                                       expires=event.observation.expires))
        flog.info("official alert", change=event.change, area=event.observation.area,
                  hazard=event.observation.hazard, level=event.observation.level, urgent=alert.urgent)
    queued = yield from store.plan_add_deliveries(deliveries)
    kept = replace(state, etag=validators.etag, last_modified=validators.last_modified,
                   primed=tuple(sorted(set(state.primed) | set(feed.channels))), last_poll=started,
                   last_success=started, last_new_item=started if queued else state.last_new_item,
                   failures=0, failing_since=None, last_error=None, retry_at=None, rebuilt=False,
                   newest_item=snapshot.issued or started,  # quiet days are not a stale source
                   alerts=state_to_json(moved.state))
    yield from store.plan_save_feed(kept, now=started)
    return queued
