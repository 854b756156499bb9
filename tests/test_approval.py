"""Approval mode's pure decision (`bridge.approval`): every action on every state, the
refusals that name who got there first, the edited text's checks, `approve_timeout`, and the
config keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.approval import (
    APPROVE,
    BAD_ACTION,
    BAD_TEXT,
    CONFLICT,
    DROP,
    HOLD,
    NEEDS_CONFIRM,
    NOT_ALLOWED,
    NOT_FOUND,
    RETRY,
    SEND_NOW,
    TIMEOUT_DROP,
    TIMEOUT_SEND,
    Action,
    ActionRefused,
    decide,
    needs_approval,
    timed_out,
    timeout_rule,
)
from bridge.audit import AuditEntry
from bridge.config import ConfigError, TimeoutRule, parse_config
from bridge.item import Alert
from bridge.models import Delivery

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # 10:30 in Rome


def config(extra_feed: str = "", extra_channel: str = "") -> object:
    import tomllib

    text = (f'[[feeds]]\nid = "notizie"\nurl = "https://www.comune.esempio.it/feed/"\nchannels = ["wa"]\n{extra_feed}\n'
            f'[channels.wa]\ntype = "waha"\nurl = "http://127.0.0.1:1"\nchat_id = "1@newsletter"\n{extra_channel}\n')
    return parse_config(tomllib.loads(text), path=Path("/nowhere/config.toml"), env={}, resolve_secrets=False)


CONFIG = config()


def delivery(state: str = "awaiting", **changes: object) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title="Chiusura di via Roma",
                  summary="Dal 3 dicembre via Roma è chiusa per 10 giorni.",
                  link="https://www.comune.esempio.it/novita/via-roma/", published=NOW)
    made = Delivery(id="a1", channel="wa", feed_id="notizie", alert=alert, created=NOW, order=1.0, state=state)
    return replace(made, **changes)  # type: ignore[arg-type]


def refused(action: Action, target: Delivery | None, **options: object) -> ActionRefused:
    with pytest.raises(ActionRefused) as caught:
        decide(action, target, config=CONFIG, now=NOW, who="bruno", **options)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(("action", "state", "after"), [
    (APPROVE, "awaiting", "pending"), (APPROVE, "stopped", "pending"),
    (HOLD, "awaiting", "stopped"), (HOLD, "pending", "stopped"),
    (DROP, "awaiting", None), (DROP, "pending", None), (DROP, "failed", None), (DROP, "stopped", None),
    (SEND_NOW, "awaiting", "pending"), (SEND_NOW, "stopped", "pending"), (SEND_NOW, "pending", "pending"),
    (RETRY, "failed", "pending"),
])
def test_each_action_on_the_states_it_applies_to(action: str, state: str, after: str | None) -> None:
    decision = decide(Action(action, "a1", reason="doppione"), delivery(state), config=CONFIG, now=NOW, who="anna")
    assert (decision.after.state if decision.after is not None else None) == after
    if decision.after is not None:
        assert (decision.after.acted, decision.after.acted_by, decision.after.acted_at) == (action, "anna", NOW)
        assert decision.after.send_now == (action == SEND_NOW)


@pytest.mark.parametrize(("action", "state"), [
    (APPROVE, "pending"), (APPROVE, "failed"), (HOLD, "failed"), (SEND_NOW, "failed"),
    (RETRY, "pending"), (RETRY, "awaiting"),
])
def test_an_action_that_does_not_apply_is_refused(action: str, state: str) -> None:
    assert refused(Action(action, "a1"), delivery(state)).code == NOT_ALLOWED


def test_the_second_editor_is_told_who_got_there_first_and_when() -> None:
    approved = decide(Action(APPROVE, "a1"), delivery(), config=CONFIG, now=NOW, who="anna").after
    again = refused(Action(APPROVE, "a1"), approved)
    assert again.code == CONFLICT and str(again) == "alert a1 was already approved by anna at 10:30"
    held = decide(Action(HOLD, "a1"), delivery(), config=CONFIG, now=NOW, who="anna").after
    assert str(refused(Action(HOLD, "a1"), held)) == "alert a1 was already held by anna at 10:30"
    last = AuditEntry(at=NOW, who="anna", where="cli", action=DROP, alert_id="a1", channel="wa", feed_id="notizie",
                      title="t", before={"state": "awaiting"}, after=None, reason="notizia sbagliata")
    gone = refused(Action(APPROVE, "a1"), None, last=last)
    assert gone.code == CONFLICT
    assert str(gone) == "alert a1 was already dropped by anna at 10:30 (notizia sbagliata)"
    assert str(refused(Action(HOLD, "a1"), None, posted=True)) == "alert a1 was already posted"
    assert refused(Action(HOLD, "zz"), None).code == NOT_FOUND


def test_an_alert_being_sent_cannot_be_held_dropped_or_edited() -> None:
    sending = delivery("pending", in_flight=True)
    for action in (Action(HOLD, "a1"), Action(DROP, "a1", reason="x")):
        assert refused(action, sending).code == NOT_ALLOWED


def test_a_drop_needs_a_reason_and_unknown_actions_are_refused() -> None:
    assert refused(Action(DROP, "a1", reason="  "), delivery()).code == BAD_ACTION
    assert refused(Action("publish", "a1"), delivery()).code == BAD_ACTION


def test_an_edited_text_replaces_the_summary_and_keeps_the_original() -> None:
    decision = decide(Action(APPROVE, "a1", text="  Via Roma   chiusa dal 3 dicembre\nper 10 giorni. "), delivery(),
                      config=CONFIG, now=NOW, who="anna")
    assert decision.after is not None
    assert decision.after.alert.summary == "Via Roma chiusa dal 3 dicembre per 10 giorni."
    assert decision.after.original == delivery().alert
    assert decision.after.alert.link == delivery().alert.link


def test_the_fact_guard_asks_for_confirmation_of_a_number_the_source_does_not_have() -> None:
    wrong = Action(APPROVE, "a1", text="Via Roma chiusa dal 4 dicembre per 10 giorni.")
    refusal = refused(wrong, delivery())
    assert refusal.code == NEEDS_CONFIRM and "4" in str(refusal) and "--confirm" in refusal.hint
    confirmed = decide(replace(wrong, confirm=True), delivery(), config=CONFIG, now=NOW, who="anna")
    assert confirmed.after is not None and "4 dicembre" in confirmed.after.alert.summary
    # Checked against the feed's own alert, not against an earlier edit.
    again = replace(confirmed.after, state="stopped")
    assert refused(Action(APPROVE, "a1", text="Chiusa dal 4 dicembre."), again).code == NEEDS_CONFIRM


@pytest.mark.parametrize(("text", "says"), [
    ("", "empty"),
    ("Dettagli su https://www.altrosito.it/pagina", "off the comune's site"),
    ("Via Roma chiusa. " * 40, "too long"),
])
def test_an_edited_text_that_cannot_be_posted_is_refused(text: str, says: str) -> None:
    refusal = refused(Action(APPROVE, "a1", text=text), delivery())
    assert refusal.code == BAD_TEXT and says in str(refusal)


def test_a_link_on_the_comunes_own_site_may_stay_in_the_text() -> None:
    text = "Dal 3 dicembre via Roma è chiusa: www.comune.esempio.it/viabilita"
    decision = decide(Action(APPROVE, "a1", text=text), delivery(), config=CONFIG, now=NOW, who="anna")
    assert decision.after is not None and decision.after.alert.summary == text


def test_approval_is_asked_by_the_feed_or_the_channel() -> None:
    plain = config()
    assert not needs_approval(plain.feeds[0], plain.channels["wa"])  # type: ignore[attr-defined]
    by_feed = config(extra_feed="approve = true")
    assert needs_approval(by_feed.feeds[0], by_feed.channels["wa"])  # type: ignore[attr-defined]
    by_channel = config(extra_channel="approve = true")
    assert needs_approval(by_channel.feeds[0], by_channel.channels["wa"])  # type: ignore[attr-defined]


def test_approve_timeout_default_never_sends_a_routine_alert() -> None:
    plain = config()
    feed, channel = plain.feeds[0], plain.channels["wa"]  # type: ignore[attr-defined]
    routine = timeout_rule(feed, channel, urgent=False)
    assert routine == TimeoutRule() and timed_out(delivery(), routine, NOW + timedelta(days=365)) is None
    urgent = timeout_rule(feed, channel, urgent=True)
    assert timed_out(delivery(urgent=True), urgent, NOW + timedelta(minutes=29)) is None
    assert timed_out(delivery(urgent=True), urgent, NOW + timedelta(minutes=30)) == TIMEOUT_SEND


def test_approve_timeout_of_the_feed_then_the_channel() -> None:
    both = config(extra_feed='approve_timeout = { routine = "drop after 2d" }',
                  extra_channel='approve_timeout = { routine = "send after 1h", urgent = "never" }')
    feed, channel = both.feeds[0], both.channels["wa"]  # type: ignore[attr-defined]
    rule = timeout_rule(feed, channel, urgent=False)
    assert timed_out(delivery(), rule, NOW + timedelta(days=2)) == TIMEOUT_DROP
    assert timed_out(delivery(), rule, NOW + timedelta(hours=47)) is None
    assert timeout_rule(None, channel, urgent=True) == TimeoutRule()
    # An alert an editor stopped waits for them, whatever the timeout.
    assert timed_out(delivery("stopped"), rule, NOW + timedelta(days=30)) is None


def test_approval_keys_are_validated_with_their_place() -> None:
    with pytest.raises(ConfigError) as caught:
        config(extra_feed='approve = "yes"\napprove_timeout = { routine = "publish after 2d", weekly = "never" }')
    errors = caught.value.errors
    assert any(e.startswith('feeds[0] (id="notizie").approve: expected true or false') for e in errors), errors
    assert any("routine: expected \"send after DURATION\"" in e for e in errors), errors
    assert any('unknown key "weekly"' in e for e in errors), errors
