"""The editors' actions and `approve_timeout`, as changes of the state: what the daemon applies
for the command line (over the control socket) and the console alike.

Each is a `Plan` of the store (see `bridge.store`): decided by `bridge.approval.decide` at its
turn, against the alert as it is then (so two editors acting at once are judged one after the
other: the second meets the first's result), then written durably, the audit entry first
and the outbox after, before the caller hears of it. A plan that refuses raises
`approval.ActionRefused` before writing anything.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from bridge.approval import (
    AWAITING,
    DONE,
    TIMEOUT_SEND,
    Action,
    Decision,
    decide,
    timed_out,
    timeout_rule,
)
from bridge.audit import BRIDGE, AuditEntry, snapshot

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.models import Delivery
    from bridge.store import Plan, Store

DAEMON = BRIDGE  # who the audit trail names for the bridge's own actions (approve_timeout)


def entry_for(decision: Decision, action: str, *, who: str, where: str, at: datetime, reason: str = "") -> AuditEntry:
    """The audit entry of `decision`, made by `who` from `where` at `at`."""
    before = decision.before
    return AuditEntry(at=at, who=who, where=where, action=action, alert_id=before.id, channel=before.channel,
                      feed_id=before.feed_id, title=before.alert.title, before=snapshot(before),
                      after=snapshot(decision.after) if decision.after is not None else None, reason=reason)


def plan_action(store: Store, config: Config, action: Action, *, who: str, where: str,
                now: datetime) -> Plan[Decision]:
    """Decide `action` by `who` at its turn and record it (audit, then outbox); return the
    decision. Raise ActionRefused, changing nothing, when it is refused."""
    delivery = store.delivery(action.alert_id)
    decision = decide(action, delivery, config=config, now=now, who=who,
                      last=store.last_action(action.alert_id) if delivery is None else None,
                      posted=delivery is None and store.posted(action.alert_id))
    entry = entry_for(decision, action.action, who=who, where=where, at=now, reason=action.reason.strip())
    yield from store.plan_act([entry], [decision.after] if decision.after is not None else [],
                              [] if decision.after is not None else [decision.before.id])
    return decision


def timeouts_due(store: Store, config: Config, now: datetime) -> list[tuple[Delivery, str]]:
    """Every alert awaiting approval whose `approve_timeout` has passed at `now`, with what it
    does (approval.TIMEOUT_SEND or TIMEOUT_DROP)."""
    feeds = {feed.id: feed for feed in config.feeds}
    due = []
    for delivery in store.deliveries(state=AWAITING):
        rule = timeout_rule(feeds.get(delivery.feed_id), config.channels.get(delivery.channel),
                            urgent=delivery.urgent)
        outcome = timed_out(delivery, rule, now)
        if outcome is not None:
            due.append((delivery, outcome))
    return due


def plan_timeouts(store: Store, config: Config, now: datetime) -> Plan[list[Decision]]:
    """Apply `approve_timeout` at its turn: each alert due is sent unapproved (pending) or
    dropped, with its audit entry by DAEMON; return what was done."""
    decisions = []
    for delivery, outcome in timeouts_due(store, config, now):
        after = (replace(delivery, state="pending", acted=outcome, acted_by=DAEMON, acted_at=now)
                 if outcome == TIMEOUT_SEND else None)
        decisions.append(Decision(delivery, after, f"alert {delivery.id} {DONE[outcome]}"))
    if not decisions:
        return []
    entries = [entry_for(d, "timeout-send" if d.after is not None else "timeout-drop", who=DAEMON, where="daemon",
                         at=now, reason="approve_timeout") for d in decisions]
    yield from store.plan_act(entries, [d.after for d in decisions if d.after is not None],
                              [d.before.id for d in decisions if d.after is None])
    return decisions
