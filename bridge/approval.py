"""Approval mode and the editors' actions on a queued alert: one pure decision.

A feed or a channel with `approve = true` queues its new alerts as "da approvare" (the
delivery state `awaiting`), which the drain never sends. An editor then acts on one alert by
its id (as `channel-bridge queue` and the console's *In coda* show it):

    approve [text]  awaiting or stopped -> pending; with a text, the alert's text becomes it,
                    re-checked for the channel's limits, the link guard and the fact guard
    hold            awaiting or pending -> stopped: never sent, never timed out, until approved
    drop  reason    any alert not being sent -> out of the outbox (the audit trail keeps it)
    send-now        awaiting, stopped or pending -> pending, first in its queue, past quiet
                    hours and pacing (it approves an alert that awaited approval)
    retry           failed -> pending, tried again from the start

`decide` judges one action against the alert as it is now and returns what it becomes, or
raises `ActionRefused` with a code and one line for people. Two editors on one alert: the
second action meets the first's result and is refused naming it ("already approved by anna at
10:42"). `timed_out` is the `approve_timeout` rule. The daemon applies both
(`bridge.actions`), durably and in turn; nothing here reads the state or the clock.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from bridge import render, summary
from bridge.config import ApproveTimeout, TimeoutRule
from bridge.facts import unsupported_facts
from bridge.template import channel_template

if TYPE_CHECKING:
    from bridge.audit import AuditEntry
    from bridge.config import ChannelConfig, Config, FeedConfig
    from bridge.item import Alert
    from bridge.models import Delivery

APPROVE = "approve"
HOLD = "hold"
DROP = "drop"
SEND_NOW = "send-now"
RETRY = "retry"
ACTIONS = (APPROVE, HOLD, DROP, SEND_NOW, RETRY)
TIMEOUT_SEND = "timeout-send"  # the daemon's own, by `approve_timeout`
TIMEOUT_DROP = "timeout-drop"

AWAITING = "awaiting"
STOPPED = "stopped"

# Why an action is refused (`ActionRefused.code`; the control protocol's error names too).
NOT_FOUND = "not_found"  # no such alert in the queue
CONFLICT = "conflict"  # someone else's action got there first
NOT_ALLOWED = "not_allowed"  # the action does not apply to the alert as it is
BAD_TEXT = "bad_text"  # an edited text that cannot be posted
NEEDS_CONFIRM = "needs_confirm"  # the fact guard found a number or date the source does not have
BAD_ACTION = "bad_action"  # an unknown action, a drop without a reason

# What each action says it did, for the one who asked (and the past tense of refusals).
DONE = {APPROVE: "approved", HOLD: "held", DROP: "dropped", SEND_NOW: "sent now", RETRY: "retried",
        TIMEOUT_SEND: "sent unapproved by approve_timeout", TIMEOUT_DROP: "dropped by approve_timeout"}


class ActionRefused(ValueError):
    """An action that is not made; `code` names why, `hint` what to do; `it` says it in
    Italian for the console ("" when the console words it itself)."""

    def __init__(self, code: str, message: str, *, hint: str = "", it: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint
        self.it = it


@dataclass(frozen=True, slots=True)
class Action:
    """What an editor asks: `action` (one of ACTIONS) on the alert `alert_id`; `text` the new
    text of an approval, `confirm` accepts the fact guard's warning, `reason` says why (a drop
    needs one)."""

    action: str
    alert_id: str
    text: str | None = None
    confirm: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The alert before the action and after it (None: dropped), and one line saying so."""

    before: Delivery
    after: Delivery | None
    message: str


def needs_approval(feed: FeedConfig | None, channel: ChannelConfig | None) -> bool:
    """True when a new alert of `feed` on `channel` waits for an editor: either says so."""
    return bool((feed is not None and feed.approve) or (channel is not None and channel.approve))


def timeout_rule(feed: FeedConfig | None, channel: ChannelConfig | None, *, urgent: bool) -> TimeoutRule:
    """The `approve_timeout` rule of an alert: the feed's (or [defaults]'), else the channel's,
    else the default (`ApproveTimeout`: routine alerts wait for an editor, urgent ones go
    after 30 minutes)."""
    settings = (feed.approve_timeout if feed is not None else None) or (
        channel.approve_timeout if channel is not None else None) or ApproveTimeout()
    return settings.rule(urgent=urgent)


def timed_out(delivery: Delivery, rule: TimeoutRule, now: datetime) -> str | None:
    """TIMEOUT_SEND or TIMEOUT_DROP when `delivery` has awaited approval longer than `rule`
    allows at `now` (counted from when it was queued), else None. Only an awaiting alert
    times out: one an editor stopped waits for them."""
    if delivery.state != AWAITING or rule.after is None or now - delivery.created < rule.after:
        return None
    return TIMEOUT_SEND if rule.action == "send" else TIMEOUT_DROP


def _at(moment: datetime | None, config: Config) -> str:
    return moment.astimezone(config.bridge.timezone).strftime("%H:%M") if moment is not None else "?"


def _by(who: str | None, moment: datetime | None, config: Config) -> str:
    return f"by {who or 'someone'} at {_at(moment, config)}"


def decide(action: Action, delivery: Delivery | None, *, config: Config, now: datetime, who: str,
           last: AuditEntry | None = None, posted: bool = False) -> Decision:
    """What `action` by `who` at `now` makes of `delivery` (None: it is not in the outbox;
    `last` is then the last action recorded on its id, `posted` whether it is in the history).
    Raise ActionRefused: NOT_FOUND, CONFLICT (naming the action that got there first),
    NOT_ALLOWED, BAD_TEXT, NEEDS_CONFIRM (`action.confirm` accepts it) or BAD_ACTION."""
    name = action.action
    if name not in ACTIONS:
        raise ActionRefused(BAD_ACTION, f'unknown action "{name}"', hint=f"actions: {', '.join(ACTIONS)}")
    if name == DROP and not action.reason.strip():
        raise ActionRefused(BAD_ACTION, "a drop needs a reason", hint='add --reason "..."')
    if delivery is None:
        raise _gone(action, config, last=last, posted=posted)
    state = delivery.state
    done = delivery.acted
    if name in (HOLD, DROP) or (name == APPROVE and action.text is not None):
        if delivery.in_flight and state == "pending":
            raise ActionRefused(NOT_ALLOWED, f"alert {delivery.id} is being sent: a send started and its outcome is "
                                "not known yet", hint="see channel-bridge queue in a moment")
    if name == APPROVE:
        if state not in (AWAITING, STOPPED):
            if state == "pending" and done in (APPROVE, SEND_NOW, TIMEOUT_SEND):
                raise ActionRefused(CONFLICT, f"alert {delivery.id} was already {DONE[done]} "
                                    f"{_by(delivery.acted_by, delivery.acted_at, config)}")
            raise ActionRefused(NOT_ALLOWED, f"alert {delivery.id} does not wait for approval (it is {state})",
                                hint="hold it first to change its text" if state == "pending" else
                                "retry it: channel-bridge queue retry ID")
        changed = replace(delivery, state="pending", acted=name, acted_by=who, acted_at=now)
        if action.text is not None:
            changed = replace(changed, alert=edited_alert(delivery, action.text, config, confirm=action.confirm),
                              original=delivery.original or delivery.alert, plain=False)
        what = "approved with the edited text" if action.text is not None else "approved"
        return Decision(delivery, changed, f"alert {delivery.id} {what}: it goes out in its turn")
    if name == HOLD:
        if state == STOPPED:
            raise ActionRefused(CONFLICT, f"alert {delivery.id} was already held "
                                f"{_by(delivery.acted_by, delivery.acted_at, config)}")
        if state == "failed":
            raise ActionRefused(NOT_ALLOWED, f"alert {delivery.id} failed: it is not sent anyway",
                                hint="retry or drop it")
        changed = replace(delivery, state=STOPPED, send_now=False, acted=name, acted_by=who, acted_at=now)
        return Decision(delivery, changed, f"alert {delivery.id} held: it is not sent until approved")
    if name == DROP:
        return Decision(delivery, None, f"alert {delivery.id} dropped: it will not be sent")
    if name == SEND_NOW:
        if state == "failed":
            raise ActionRefused(NOT_ALLOWED, f"alert {delivery.id} failed",
                                hint="retry it: channel-bridge queue retry ID")
        if delivery.send_now:
            raise ActionRefused(CONFLICT, f"alert {delivery.id} was already sent now "
                                f"{_by(delivery.acted_by, delivery.acted_at, config)}")
        changed = replace(delivery, state="pending", send_now=True, next_attempt=None, acted=name, acted_by=who,
                          acted_at=now)
        return Decision(delivery, changed, f"alert {delivery.id} goes out now, first in its queue")
    # RETRY
    if state != "failed":
        if done == RETRY:
            raise ActionRefused(CONFLICT, f"alert {delivery.id} was already retried "
                                f"{_by(delivery.acted_by, delivery.acted_at, config)}")
        raise ActionRefused(NOT_ALLOWED, f"alert {delivery.id} has not failed (it is {state})")
    changed = replace(delivery, state="pending", attempts=0, next_attempt=None, last_error=None, plain=False,
                      in_flight=False, acted=name, acted_by=who, acted_at=now)
    return Decision(delivery, changed, f"alert {delivery.id} is tried again in its turn")


def _gone(action: Action, config: Config, *, last: AuditEntry | None, posted: bool) -> ActionRefused:
    """The refusal of an action on an alert no longer (or never) in the outbox."""
    if last is not None and last.after is None:
        reason = f" ({last.reason})" if last.reason else ""
        return ActionRefused(CONFLICT, f"alert {action.alert_id} was already {DONE.get(last.action, last.action)} "
                             f"{_by(last.who, last.at, config)}{reason}")
    if posted:
        return ActionRefused(CONFLICT, f"alert {action.alert_id} was already posted",
                             hint="see channel-bridge history")
    return ActionRefused(NOT_FOUND, f"no alert {action.alert_id} in the queue",
                         hint="the ids are those channel-bridge queue shows")


def normalize_text(text: str) -> str:
    """An editor's text as feed text is read: NFKC, control characters out, whitespace collapsed."""
    kept = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in unicodedata.normalize("NFKC", text))
    return " ".join(kept.split())


def edited_alert(delivery: Delivery, text: str, config: Config, *, confirm: bool = False) -> Alert:
    """`delivery`'s alert with `text` as its text (whitespace collapsed, as feed text is), if it
    can be posted on its channel. Raise ActionRefused: BAD_TEXT for an empty text, one over the
    channel's limits (`summary.excess`, as the feed's alerts are measured) or one with a web
    address off the feed's domains (the link guard); NEEDS_CONFIRM, unless `confirm`, when it
    has a number or date that the feed's own alert does not (the fact guard)."""
    new = normalize_text(text)
    if not new:
        raise ActionRefused(BAD_TEXT, "the edited text is empty", hint="give the text, or approve without --text",
                            it="Il testo modificato è vuoto.")
    feed = next((f for f in config.feeds if f.id == delivery.feed_id), None)
    off_site = summary.off_site_addresses(new, feed_url=feed.url if feed else "",
                                          link_domains=feed.link_domains if feed else ())
    if off_site:
        raise ActionRefused(BAD_TEXT, f"the edited text links off the comune's site: {off_site[0].url}",
                            hint="the only link of an alert is its page on the comune's site: remove the address",
                            it=f"Il testo modificato contiene un indirizzo fuori dal sito del comune "
                               f"({off_site[0].url}): toglierlo, l'unico link è la pagina dell'avviso.")
    alert = replace(delivery.alert, summary=new)
    channel = config.channels.get(delivery.channel)
    if channel is not None:
        limit = channel.max_length or config.alerts.max_length
        platform = render.platform_for(channel.type, channel.max_length)
        over = summary.excess(alert, max_length=limit, template=channel_template(channel.template, channel.timezone),
                              platform=platform)
        if over > 0:
            raise ActionRefused(BAD_TEXT, f"the edited text is {over} characters too long for {delivery.channel} "
                                f"(at most {limit} with its title and link)", hint="shorten it",
                                it=f"Il testo modificato è troppo lungo per {delivery.channel} di {over} caratteri "
                                   f"(al massimo {limit} con titolo e link): accorciarlo.")
    source = delivery.original or delivery.alert
    unsupported = unsupported_facts(new, f"{source.title}\n{source.summary}")
    if unsupported and not confirm:
        raise ActionRefused(NEEDS_CONFIRM, f"the edited text has {', '.join(unsupported)}, which the source does "
                            "not say", hint="check it against the page, then approve again with --confirm",
                            it=f"Il testo ha {', '.join(unsupported)}, che la fonte non dice: controllarlo sulla "
                               "pagina, poi confermare per approvarlo.")
    return alert

