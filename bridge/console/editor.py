"""The editors' actions as the console's *In coda* page offers and reports them: which buttons
an alert has, what an edited text would look like before it is approved, and the one Italian
line the page shows after each action.

Nothing here decides or makes an action: the decision is `bridge.approval.decide`'s, and the
console applies an action through the daemon's `act` (`Bridge.act`, the one the control socket
calls too). An edited text is previewed by asking that same decision what an approval with it
would make, without applying it. Pure over the config, an open `Store` and a moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bridge.approval import (
    APPROVE,
    AWAITING,
    BAD_ACTION,
    BAD_TEXT,
    CONFLICT,
    DROP,
    HOLD,
    NEEDS_CONFIRM,
    NOT_FOUND,
    RETRY,
    SEND_NOW,
    STOPPED,
    TIMEOUT_DROP,
    TIMEOUT_SEND,
    Action,
    ActionRefused,
    Decision,
    decide,
    normalize_text,
)
from bridge.audit import NOT_APPLIED
from bridge.corrections import AS_POST, CORRECTION
from bridge.deletion import DELETE, DELETED
from bridge.facts import unsupported_facts
from bridge.withdrawn import WITHDRAWN

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from bridge.audit import AuditEntry
    from bridge.config import Config
    from bridge.item import Alert
    from bridge.models import Delivery
    from bridge.store import Store

WHERE = "console"  # where the audit trail says the console's actions come from
EDIT = "edit"  # the page's own button: previews an edited text, then approves it

# The buttons each alert has, by its state in the outbox. They only spare the office a button
# that cannot work: the decision is still the judge, and refuses what does not apply.
OFFERED = {
    AWAITING: (APPROVE, EDIT, HOLD, SEND_NOW, DROP),
    STOPPED: (APPROVE, EDIT, SEND_NOW, DROP),
    "pending": (HOLD, SEND_NOW, DROP),
    "failed": (RETRY, DROP),
}

# Each action as the page names it (its button) and as it says it was done.
LABEL_IT = {APPROVE: "Approva", EDIT: "Modifica il testo", HOLD: "Ferma", SEND_NOW: "Invia subito",
            DROP: "Scarta", RETRY: "Riprova"}
PAST_IT = {"compose": "scritto e messo in coda", "test": "messaggio di prova messo in coda",
           APPROVE: "approvato", HOLD: "fermato", DROP: "scartato", SEND_NOW: "inviato subito", RETRY: "riprovato",
           TIMEOUT_SEND: "inviato senza approvazione (approve_timeout)", TIMEOUT_DROP: "scartato (approve_timeout)",
           # The bridge's own entries and the deletion's two steps, as the Audit page names them.
           CORRECTION: "rettifica messa in coda", AS_POST: "rettifica inviata come messaggio",
           WITHDRAWN: "ritirato alla fonte", DELETE: "cancellazione chiesta", DELETED: "cancellato dal canale",
           NOT_APPLIED: "non applicata"}
DONE_IT = {APPROVE: "parte al suo turno", HOLD: "non parte finché non è approvato", DROP: "non sarà inviato",
           SEND_NOW: "parte ora, primo della sua coda", RETRY: "parte di nuovo al suo turno"}


def offered(delivery: Delivery | None) -> tuple[str, ...]:
    """The actions the page offers on `delivery` (none for an item the link guard held, which
    is not in the outbox)."""
    if delivery is None:
        return ()
    actions = OFFERED.get(delivery.state, ())
    if delivery.send_now:
        actions = tuple(a for a in actions if a != SEND_NOW)
    return actions


def _quoted(title: str) -> str:
    return f"«{title[:80]}{'…' if len(title) > 80 else ''}»"


def done_notice(decision: Decision, action: Action) -> str:
    """The line the page shows after `action` was made."""
    title = _quoted(decision.before.alert.title)
    if action.action == APPROVE and action.text is not None:
        return f"Avviso {title} approvato con il testo modificato: {DONE_IT[APPROVE]}."
    return f"Avviso {title} {PAST_IT[action.action]}: {DONE_IT[action.action]}."


def refused_notice(refusal: ActionRefused, action: Action, *, title: str, last: AuditEntry | None,
                   posted: bool, tz: ZoneInfo) -> str:
    """The line the page shows when the decision refused `action`: for a conflict, who got there
    first and when ("già approvato da anna alle 10:42"), from the audit trail's last action on
    the alert, which the decision judged against. `title` is the alert's as the editor saw it
    ("" when unknown)."""
    name = _quoted(title) if title else action.alert_id
    if refusal.code == CONFLICT:
        if last is not None and last.action in PAST_IT:
            why = f" ({last.reason})" if last.reason and last.after is None else ""
            return f"Avviso {name}: già {PAST_IT[last.action]} da {last.who} alle {last.at.astimezone(tz):%H:%M}{why}."
        if posted:
            return f"Avviso {name}: già pubblicato (vedere Pubblicati)."
    if refusal.code == NOT_FOUND:
        return f"Avviso {name}: non è più in coda."
    if refusal.code == BAD_ACTION and action.action == DROP:
        return f"Avviso {name} non scartato: scrivere il motivo."
    return f"Avviso {name}: azione non fatta ({refusal})."


@dataclass(frozen=True, slots=True)
class EditPreview:
    """What an approval of `delivery` with `text` would send: the edited `alert` (None when the
    text cannot be posted: `error` says why), and the numbers and dates the fact guard found
    that the source does not say (`facts`: the editor must confirm them)."""

    delivery: Delivery
    text: str
    alert: Alert | None
    error: str | None
    facts: tuple[str, ...]


def preview_edit(config: Config, store: Store, alert_id: str, text: str, *, now: datetime,
                 who: str) -> EditPreview:
    """The approval of the alert `alert_id` with `text`, as `decide` would make it at `now`,
    unmade. Raise ActionRefused when no edited text can be approved on it (not in the queue, no
    longer waiting for approval, approved by someone else meanwhile)."""
    delivery = store.delivery(alert_id)

    def trial(confirm: bool) -> Decision:
        return decide(Action(APPROVE, alert_id, text=text, confirm=confirm), delivery, config=config, now=now,
                      who=who, last=store.last_action(alert_id) if delivery is None else None,
                      posted=delivery is None and store.posted(alert_id))

    try:
        accepted = trial(confirm=True)
    except ActionRefused as refusal:
        if refusal.code != BAD_TEXT or delivery is None:
            raise
        return EditPreview(delivery, text, None, bad_text_it(refusal), ())
    assert accepted.after is not None  # an approval keeps the alert
    facts: tuple[str, ...] = ()
    try:
        trial(confirm=False)
    except ActionRefused as refusal:
        if refusal.code != NEEDS_CONFIRM:
            raise
        source = accepted.before.original or accepted.before.alert
        facts = tuple(unsupported_facts(normalize_text(text), f"{source.title}\n{source.summary}"))
    return EditPreview(accepted.before, text, accepted.after.alert, None, facts)


def bad_text_it(refusal: ActionRefused) -> str:
    """The page's line for an edited text the decision refused, in Italian (the decision's own
    Italian words when it has them)."""
    if refusal.it and refusal.code == NEEDS_CONFIRM:
        return refusal.it
    if refusal.it:
        return f"Questo testo non si può pubblicare: {refusal.it[:1].lower()}{refusal.it[1:]}"
    if refusal.code == NEEDS_CONFIRM:
        return f"Il testo ha numeri o date che la fonte non dice: confermare per approvarlo ({refusal})."
    return f"Questo testo non si può pubblicare ({refusal}{'; ' + refusal.hint if refusal.hint else ''})."


def same_text(previewed: str, text: str) -> bool:
    """Whether `text` is the one the editor saw previewed (whitespace aside, as it is posted)."""
    return normalize_text(previewed) == normalize_text(text)
