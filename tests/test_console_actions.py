"""The editors' actions on *In coda* and the *Audit* page, over HTTP against the served console:
each action goes through the daemon's `act` by the session's account from "console" and comes
back to In coda with one Italian line; an edited text is previewed on the phone and checked
(the fact guard's warning wants a confirmation) before it is approved; two editors on one alert
get one result and a clear line for the second; a viewer's forged form is refused; a state that
cannot be written makes nothing and says so."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from console.harness import NOW, PASSWORD, ServedConsole, delivery, served

from bridge.audit import AuditEntry, AuditLog
from bridge.console.accounts import AccountBook
from bridge.console.trail import PAGE_SIZE

SOURCE = "La strada resta chiusa dal 9 dicembre per lavori."


def queue() -> list[object]:
    return [
        delivery("a1", "whatsapp", "Lavori in via Roma", SOURCE, order=1.0, state="awaiting"),
        delivery("a2", "whatsapp", "Mercato in piazza", "Il mercato si sposta in piazza Garibaldi.", order=2.0,
                 state="awaiting"),
        delivery("p1", "telegram", "Orari degli uffici", "Gli uffici aprono alle 9.", order=3.0),
        delivery("f1", "telegram", "Bando per le borse di studio", "Domande entro il 15 gennaio.", order=4.0,
                 state="failed", last_error="HTTP 400: message is too long"),
    ]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ServedConsole]:
    for console in served(tmp_path, queue()):  # type: ignore[arg-type]
        book = AccountBook(console.daemon.config.bridge.state_dir)
        book.add("e.bianchi", "editor", PASSWORD)
        book.add("l.verdi", "editor", PASSWORD)
        yield console


def notice(client: httpx.Client) -> str:
    found = re.search(r'<p class="notice" role="status">(.*?)</p>', client.get("/coda").text, re.S)
    assert found is not None, "no notice on In coda"
    return html.unescape(found.group(1))


def act(site: ServedConsole, client: httpx.Client, path: str, **data: str) -> httpx.Response:
    answer = site.post_form(client, path, data)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/coda#d-{data['id']}"
    return answer


def test_an_editor_approves_an_alert_through_act_with_the_account_and_console(site: ServedConsole) -> None:
    editor = site.login("e.bianchi")
    page = editor.get("/coda").text
    assert 'action="/coda/approva"' in page and " disabled" not in page
    act(site, editor, "/coda/approva", id="a1")
    assert notice(editor) == "Avviso «Lavori in via Roma» approvato: parte al suo turno."
    assert 'class="notice"' not in editor.get("/coda").text  # said once
    [(action, who, where)] = site.daemon.acted
    assert (action.action, action.alert_id, action.text, who, where) == ("approve", "a1", None, "e.bianchi", "console")
    approved = site.daemon.store.delivery("a1")
    assert approved is not None and (approved.state, approved.acted_by) == ("pending", "e.bianchi")
    [entry] = site.daemon.store.audit_entries()
    assert (entry.who, entry.where, entry.action, entry.alert_id) == ("e.bianchi", "console", "approve", "a1")


def test_each_action_says_what_it_did(site: ServedConsole) -> None:
    editor = site.login("e.bianchi")
    store = site.daemon.store
    act(site, editor, "/coda/ferma", id="a2")
    assert notice(editor) == "Avviso «Mercato in piazza» fermato: non parte finché non è approvato."
    assert store.delivery("a2").state == "stopped"  # type: ignore[union-attr]
    act(site, editor, "/coda/invia-subito", id="p1")
    assert notice(editor) == "Avviso «Orari degli uffici» inviato subito: parte ora, primo della sua coda."
    assert store.delivery("p1").send_now  # type: ignore[union-attr]
    act(site, editor, "/coda/riprova", id="f1")
    assert notice(editor) == "Avviso «Bando per le borse di studio» riprovato: parte di nuovo al suo turno."
    assert store.delivery("f1").state == "pending"  # type: ignore[union-attr]
    act(site, editor, "/coda/scarta", id="a2", motivo="notizia già data a voce")
    assert notice(editor) == "Avviso «Mercato in piazza» scartato: non sarà inviato."
    assert store.delivery("a2") is None
    assert [(e.action, e.alert_id, e.reason) for e in store.audit_entries()] == [
        ("hold", "a2", ""), ("send-now", "p1", ""), ("retry", "f1", ""), ("drop", "a2", "notizia già data a voce")]


def test_a_drop_without_a_reason_is_refused_and_changes_nothing(site: ServedConsole) -> None:
    editor = site.login("e.bianchi")
    act(site, editor, "/coda/scarta", id="a2", motivo="   ")
    assert notice(editor) == "Avviso «Mercato in piazza» non scartato: scrivere il motivo."
    assert site.daemon.store.delivery("a2").state == "awaiting"  # type: ignore[union-attr]
    assert site.daemon.store.audit_entries() == []


def test_the_second_of_two_editors_is_told_who_got_there_first(site: ServedConsole) -> None:
    first, second = site.login("e.bianchi"), site.login("l.verdi")
    assert 'action="/coda/approva"' in second.get("/coda").text  # both see the alert waiting
    act(site, first, "/coda/approva", id="a1")
    act(site, second, "/coda/approva", id="a1")
    assert notice(second) == "Avviso «Lavori in via Roma»: già approvato da e.bianchi alle 11:30."
    act(site, first, "/coda/scarta", id="a2", motivo="doppione")
    act(site, second, "/coda/ferma", id="a2")
    assert notice(second) == "Avviso a2: già scartato da e.bianchi alle 11:30 (doppione)."
    assert [e.who for e in site.daemon.store.audit_entries()] == ["e.bianchi", "e.bianchi"]


def phone_text(page: str) -> str:
    found = re.search(r'<div class="text">(.*?)</div>', page, re.S)
    assert found is not None, "no phone preview"
    return found.group(1)


def test_an_edited_text_is_previewed_on_the_phone_then_approved(site: ServedConsole) -> None:
    editor = site.login("e.bianchi")
    text = "Via Roma resta chiusa dal 9 dicembre: lavori alla rete idrica."
    preview = site.post_form(editor, "/coda/modifica", {"id": "a1", "testo": text})
    assert preview.status_code == 200
    assert text in phone_text(preview.text) and "<strong>Lavori in via Roma</strong>" in phone_text(preview.text)
    assert 'name="conferma"' not in preview.text and 'formaction="/coda/approva"' in preview.text
    assert site.daemon.store.delivery("a1").alert.summary == SOURCE  # type: ignore[union-attr]  # a preview changes nothing
    act(site, editor, "/coda/approva", id="a1", testo=text, visto=text)
    assert notice(editor) == ("Avviso «Lavori in via Roma» approvato con il testo modificato: "
                              "parte al suo turno.")
    approved = site.daemon.store.delivery("a1")
    assert approved is not None and approved.alert.summary == text and approved.state == "pending"
    assert approved.original is not None and approved.original.summary == SOURCE


def test_a_date_the_source_does_not_say_needs_the_editors_confirmation(site: ServedConsole) -> None:
    editor = site.login("e.bianchi")
    text = "La strada resta chiusa dal 10 dicembre per lavori."
    preview = site.post_form(editor, "/coda/modifica", {"id": "a1", "testo": text})
    assert preview.status_code == 200
    warning = re.search(r'<p class="warning" role="alert">(.*?)</p>', preview.text, re.S)
    assert warning is not None and html.unescape(warning.group(1)).startswith("Il testo ha «10»")
    assert re.search(r'<input type="checkbox" name="conferma" value="si" required>', preview.text)
    unconfirmed = site.post_form(editor, "/coda/approva", {"id": "a1", "testo": text, "visto": text})
    assert unconfirmed.status_code == 409 and "confermare per approvarlo" in unconfirmed.text
    assert text in unconfirmed.text  # the editor's text is on the page again, not lost
    assert site.daemon.store.delivery("a1").state == "awaiting"  # type: ignore[union-attr]
    act(site, editor, "/coda/approva", id="a1", testo=text, visto=text, conferma="si")
    assert site.daemon.store.delivery("a1").alert.summary == text  # type: ignore[union-attr]


def test_a_text_changed_after_its_preview_is_previewed_again_not_approved(site: ServedConsole) -> None:
    editor = site.login("e.bianchi")
    answer = site.post_form(editor, "/coda/approva", {"id": "a1", "testo": "Chiusa dal 9 dicembre, tutto il giorno.",
                                                      "visto": "Chiusa dal 9 dicembre."})
    assert answer.status_code == 409 and "Il testo è cambiato dopo l'anteprima" in html.unescape(answer.text)
    assert "Chiusa dal 9 dicembre, tutto il giorno." in phone_text(answer.text)
    assert site.daemon.store.delivery("a1").state == "awaiting"  # type: ignore[union-attr]
    assert site.daemon.acted == []


def test_a_text_that_cannot_be_posted_is_refused_with_no_approve_button(site: ServedConsole) -> None:
    editor = site.login("e.bianchi")
    for text in ("Dettagli su https://www.altro.example/pagina", "   ", "lungo " * 200):
        preview = site.post_form(editor, "/coda/modifica", {"id": "a1", "testo": text})
        assert preview.status_code == 400, text
        assert "Questo testo non si può pubblicare" in preview.text
        assert 'formaction="/coda/approva"' not in preview.text and '<div class="text">' not in preview.text
    assert site.daemon.store.delivery("a1").alert.summary == SOURCE  # type: ignore[union-attr]


def test_editing_an_alert_someone_approved_meanwhile_goes_back_with_the_notice(site: ServedConsole) -> None:
    first, second = site.login("e.bianchi"), site.login("l.verdi")
    act(site, first, "/coda/approva", id="a1")
    answer = site.post_form(second, "/coda/modifica", {"id": "a1", "testo": "Un altro testo."})
    assert answer.status_code == 303 and answer.headers["location"] == "/coda#d-a1"
    assert notice(second) == "Avviso «Lavori in via Roma»: già approvato da e.bianchi alle 11:30."


def test_a_viewer_sees_the_buttons_disabled_and_a_forged_form_is_refused(site: ServedConsole) -> None:
    viewer = site.login()
    page = viewer.get("/coda").text
    assert "riservato agli editor" in page
    buttons = re.findall(r"<button type=\"submit\"([^>]*)>", page.split("<main>")[1])
    assert len(buttons) >= 10 and all(" disabled" in b for b in buttons)
    for path, data in (("/coda/approva", {"id": "a1"}), ("/coda/scarta", {"id": "a2", "motivo": "x"}),
                       ("/coda/modifica", {"id": "a1", "testo": "x"})):
        answer = site.post_form(viewer, path, data)  # with the viewer's own form token
        assert answer.status_code == 403 and "riservata agli editor" in answer.text
    assert site.daemon.acted == [] and site.daemon.store.audit_entries() == []
    assert site.daemon.store.delivery("a1").state == "awaiting"  # type: ignore[union-attr]


def test_an_action_the_state_cannot_record_is_not_made_and_says_so(site: ServedConsole) -> None:
    (site.daemon.config.bridge.state_dir / "audit.jsonl").mkdir()  # the audit log cannot be written
    editor = site.login("e.bianchi")
    act(site, editor, "/coda/approva", id="a1")
    assert notice(editor).startswith("Azione non fatta: lo stato non si può scrivere")
    assert site.daemon.store.delivery("a1").state == "awaiting"  # type: ignore[union-attr]


def entries(count: int) -> list[AuditEntry]:
    return [AuditEntry(at=NOW - timedelta(hours=3) + timedelta(minutes=n), who=f"u{n}", where="cli", action="hold",
                       alert_id=f"x{n}", channel="whatsapp", feed_id="notizie", title=f"Avviso {n}",
                       before={"state": "awaiting", "summary": "a"}, after={"state": "stopped", "summary": "a"})
            for n in range(count)]


def test_the_audit_page_lists_the_trail_newest_first_a_page_at_a_time(site: ServedConsole) -> None:
    AuditLog(site.daemon.config.bridge.state_dir).append(entries(2 * PAGE_SIZE + 7))
    viewer = site.login()
    first = viewer.get("/audit")
    assert first.status_code == 200
    who = re.findall(r'<td class="who">(.*?)</td>', first.text)
    assert who == [f"u{n}" for n in range(2 * PAGE_SIZE + 6, PAGE_SIZE + 6, -1)]
    assert "pagina 1 di 3" in first.text and 'href="/audit?pagina=2"' in first.text
    last = viewer.get("/audit", params={"pagina": "3"})
    assert re.findall(r'<td class="who">(.*?)</td>', last.text) == [f"u{n}" for n in range(6, -1, -1)]
    assert "riga di comando" in last.text and "fermato" in last.text
    bad = viewer.get("/audit", params={"pagina": "tre"})
    assert bad.status_code == 400 and "pagina non valida" in bad.text


def test_the_audit_page_shows_an_editors_text_change_and_a_drops_reason(site: ServedConsole) -> None:
    editor = site.login("e.bianchi")
    text = "Via Roma resta chiusa dal 9 dicembre."
    act(site, editor, "/coda/approva", id="a1", testo=text, visto=text)
    act(site, editor, "/coda/scarta", id="a2", motivo="doppione")
    page = editor.get("/audit").text
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)[1:]
    assert "scartato" in rows[0] and "doppione" in rows[0] and "tolto dalla coda" in rows[0]
    assert "approvato con il testo modificato" in rows[1] and f"<ins>{text}</ins>" in rows[1]
    assert f"<del>{SOURCE}</del>" in rows[1] and "e.bianchi" in rows[1] and "console" in rows[1]
