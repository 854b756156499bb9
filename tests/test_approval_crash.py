"""An editor's action cut off between its two writes: the audit trail stays true.

An action is written in two steps (`Store.plan_act`): its audit entry, then the outbox. A process
killed (SIGKILL, for real) right after the first leaves an entry whose action never took effect:
at the next open the trail says so ("non applicata: interrotta", by channel-bridge), and
`last_action`, which tells a second editor "already dropped by anna", never names it. An outbox
write that fails (a full disk, for real) says so at once ("non applicata: stato non scritto").
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from filesystems import SmallFs

from bridge.actions import entry_for
from bridge.approval import APPROVE, DROP, HOLD, Action, ActionRefused, Decision, decide
from bridge.audit import INTERRUPTED, NOT_APPLIED, NOT_WRITTEN, AuditEntry
from bridge.config import Config, parse_config
from bridge.item import Alert
from bridge.models import Delivery
from bridge.store import StateWriteError, Store

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # 10:30 in Rome


def config() -> Config:
    import tomllib

    text = ('[[feeds]]\nid = "notizie"\nurl = "https://www.comune.esempio.it/feed/"\nchannels = ["wa"]\n'
            '[channels.wa]\ntype = "waha"\nurl = "http://127.0.0.1:1"\nchat_id = "1@newsletter"\n')
    return parse_config(tomllib.loads(text), path=Path("/nowhere/config.toml"), env={}, resolve_secrets=False)


CONFIG = config()


def awaiting(summary: str = "Dal 3 dicembre via Roma è chiusa per 10 giorni.", **changes: object) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title="Chiusura di via Roma", summary=summary,
                  link="https://www.comune.esempio.it/novita/via-roma/", published=NOW)
    made = Delivery(id="a1", channel="wa", feed_id="notizie", alert=alert, created=NOW, order=1.0, state="awaiting")
    return replace(made, **changes)  # type: ignore[arg-type]


def act_on(delivery: Delivery | None, name: str, who: str, at: datetime,
           reason: str = "") -> tuple[Decision, AuditEntry]:
    """The decision and audit entry of `who`'s action on `delivery`, as the daemon makes them."""
    decision = decide(Action(name, "a1", reason=reason), delivery, config=CONFIG, now=at, who=who)
    return decision, entry_for(decision, name, who=who, where="cli", at=at, reason=reason)


def act(store: Store, name: str, who: str, at: datetime, reason: str = "") -> tuple[Decision, AuditEntry]:
    return act_on(store.delivery("a1"), name, who, at, reason)


def plan(store: Store, name: str, who: str, at: datetime, reason: str = "") -> object:
    decision, entry = act(store, name, who, at, reason)
    return store.plan_act([entry], [decision.after] if decision.after is not None else [],
                          [] if decision.after is not None else ["a1"])


# The child: bruno's action on a1 (whole), then anna's, killed between its two writes.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from datetime import timedelta
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_approval_crash import NOW, awaiting, plan
    from bridge.store import Store

    store = Store.open(Path({state!r}))
    store.add_deliveries([awaiting()])
    store.commit(plan(store, {first!r}, "bruno", NOW))
    steps = plan(store, {action!r}, "anna", NOW + timedelta(minutes=5), reason="notizia doppia")
    write = next(steps)
    write()  # the audit entry, on disk
    os.kill(os.getpid(), signal.SIGKILL)  # before the outbox write
""")


def killed_between_the_writes(state: Path, first: str, action: str) -> None:
    script = CHILD.format(tests=str(Path(__file__).parent), state=str(state), first=first, action=action)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr


@pytest.mark.parametrize(("first", "action", "state"), [
    (HOLD, DROP, "stopped"), (HOLD, APPROVE, "stopped"), (APPROVE, HOLD, "pending"), (APPROVE, DROP, "pending")])
def test_an_action_killed_before_its_outbox_write_is_marked_not_applied(tmp_path: Path, first: str, action: str,
                                                                         state: str) -> None:
    killed_between_the_writes(tmp_path, first, action)
    store = Store.open(tmp_path)
    try:
        current = store.delivery("a1")
        assert current is not None and current.state == state, "the interrupted action did not take effect"
        trail = [(e.action, e.who, e.reason) for e in store.audit_entries()]
        assert trail == [(first, "bruno", ""), (action, "anna", "notizia doppia"),
                         (NOT_APPLIED, "channel-bridge", INTERRUPTED)]
        note = store.audit_entries()[-1]
        assert note.before == note.after == store.audit_entries()[1].before  # the alert stayed as it was
        last = store.last_action("a1")
        assert last is not None and (last.action, last.who) == (first, "bruno")
    finally:
        store.close()
    reopened = Store.open(tmp_path)  # said once: a second open adds nothing
    try:
        assert [e.action for e in reopened.audit_entries()] == [first, action, NOT_APPLIED]
    finally:
        reopened.close()


def test_a_drop_that_never_took_effect_is_not_named_to_the_next_editor(tmp_path: Path) -> None:
    killed_between_the_writes(tmp_path, APPROVE, DROP)
    store = Store.open(tmp_path)
    try:
        current = store.delivery("a1")
        assert current is not None and current.state == "pending"
        # Still approved after the restart, so posted in its turn: a late editor's drop meets
        # the post, not anna's drop that never was.
        store.record_post(store.delivery("a1"), "m1", NOW + timedelta(minutes=10))  # type: ignore[arg-type]
        with pytest.raises(ActionRefused) as refused:
            decide(Action(DROP, "a1", reason="errata"), None, config=CONFIG, now=NOW + timedelta(hours=1), who="dino",
                   last=store.last_action("a1"), posted=store.posted("a1"))
        assert str(refused.value) == "alert a1 was already posted"
    finally:
        store.close()


def test_an_outbox_write_that_fails_is_followed_by_its_not_applied_entry(small_fs: SmallFs) -> None:
    """A full disk that takes the audit entry (room left in its last page) but not the outbox's
    line (longer than a page: the alert's original text): the trail says so at once."""
    state = small_fs.path / "state"
    store = Store.open(state)
    try:
        store.add_deliveries([awaiting(original=replace(awaiting().alert, summary="Testo. " * 1200))])
        store.commit(plan(store, HOLD, "bruno", NOW))  # the audit log has a page with room
        small_fs.fill()
        with pytest.raises(StateWriteError):
            store.commit(plan(store, APPROVE, "anna", NOW + timedelta(minutes=5)))
        small_fs.free()
        assert [(e.action, e.reason) for e in store.audit_entries()] == [
            (HOLD, ""), (APPROVE, ""), (NOT_APPLIED, NOT_WRITTEN)]
        last = store.last_action("a1")
        assert last is not None and last.action == HOLD
        current = store.delivery("a1")
        assert current is not None and current.state == "stopped"
    finally:
        store.close()
    reopened = Store.open(state)
    try:
        assert [e.action for e in reopened.audit_entries()] == [HOLD, APPROVE, NOT_APPLIED]
        assert reopened.last_action("a1").action == HOLD  # type: ignore[union-attr]
    finally:
        reopened.close()


def test_an_audit_line_torn_by_a_crash_is_cut_off_and_a_whole_one_kept(tmp_path: Path) -> None:
    """The audit log mends its tail as the history does (one piece of code, bridge.appendlog)."""
    from bridge.audit import AuditLog

    _, first = act_on(awaiting(), HOLD, "bruno", NOW)
    _, second = act_on(awaiting(), DROP, "anna", NOW + timedelta(minutes=1), reason="doppione")
    AuditLog(tmp_path).append([first])
    path = tmp_path / "audit.jsonl"
    with path.open("ab") as file:
        file.write(b'{"at": "2026-12-02T09:31:00+00:00", "who": "ca')  # torn by a kill
    AuditLog(tmp_path).append([second])
    assert [e.who for e in AuditLog(tmp_path).read()] == ["bruno", "anna"]
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # whole, but for its newline
    AuditLog(tmp_path).append([first])
    assert [e.who for e in AuditLog(tmp_path).read()] == ["bruno", "anna", "bruno"]
    assert path.read_bytes().count(b"\n") == 3
