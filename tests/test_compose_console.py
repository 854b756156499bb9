"""The console's *Componi* page over HTTP (the console served for real, `tests/console/harness`):
the form, its preview as each channel shows it, *Invia* through the daemon's `compose`, the
refusals in Italian with what was typed kept, a form changed after its preview, a second
*Invia* of one page, and the editor-only routes."""

from __future__ import annotations

import re
from pathlib import Path

from console.harness import PASSWORD, served

from bridge.console.accounts import AccountBook

LINK = "https://www.comune.example.it/novita/neve/"


def fields(page: str) -> dict[str, str]:
    """The hidden fields of the page's compose form."""
    return dict(re.findall(r'<input type="hidden" name="(id|visto)" value="([^"]*)"', page))


def test_an_editor_previews_and_sends_a_composed_alert(tmp_path: Path) -> None:
    for site in served(tmp_path):
        AccountBook(site.daemon.config.bridge.state_dir).add("e.bianchi", "editor", PASSWORD)
        client = site.login("e.bianchi")
        page = client.get("/componi")
        assert page.status_code == 200 and 'href="/componi" aria-current="page"' in page.text
        assert page.text.count('name="canale"') == 2 and page.text.count(" checked") == 2
        typed = {"id": fields(page.text)["id"], "titolo": "Neve: scuole chiuse",
                 "testo": "Domani le scuole restano chiuse.", "link": LINK, "urgente": "si"}
        shown = site.post_form(client, "/componi/anteprima", {**typed, "canale": "whatsapp"})
        assert shown.status_code == 200, shown.text
        assert 'data-channel="whatsapp"' in shown.text and 'data-channel="telegram"' not in shown.text
        assert "<strong>Neve: scuole chiuse</strong>" in shown.text and 'class="send"' in shown.text
        assert site.daemon.store.deliveries(state=None) == [], "a preview queues nothing"
        seen = fields(shown.text)["visto"]
        sent = site.post_form(client, "/componi/invia", {**typed, "canale": "whatsapp", "visto": seen})
        assert sent.status_code == 303 and sent.headers["location"] == "/coda"
        assert "messo in coda per whatsapp: parte subito" in client.get("/coda").text
        (queued,) = site.daemon.store.deliveries(state=None)
        assert (queued.channel, queued.urgent, queued.alert.title) == ("whatsapp", True, "Neve: scuole chiuse")
        again = site.post_form(client, "/componi/invia", {**typed, "canale": "whatsapp", "visto": seen})
        assert again.status_code == 409 and "già stato messo in coda" in again.text
        assert len(site.daemon.store.deliveries(state=None)) == 1
        assert [(e.action, e.who, e.where) for e in site.daemon.store.audit_entries()] == [
            ("compose", "e.bianchi", "console")]


def test_refusals_are_in_italian_and_keep_what_was_typed(tmp_path: Path) -> None:
    for site in served(tmp_path):
        AccountBook(site.daemon.config.bridge.state_dir).add("e.bianchi", "editor", PASSWORD)
        client = site.login("e.bianchi")
        typed = {"id": "c1", "titolo": "Neve: scuole chiuse", "testo": "Domani «chiuse» le scuole.",
                 "link": "https://www.altro.example/neve", "canale": "whatsapp"}
        shown = site.post_form(client, "/componi/anteprima", typed)
        assert shown.status_code == 400
        assert "Il link non si può pubblicare" in shown.text and 'class="send"' not in shown.text
        assert 'value="https://www.altro.example/neve"' in shown.text and "Domani «chiuse» le scuole." in shown.text
        sent = site.post_form(client, "/componi/invia", {**typed, "visto": "x"})
        assert sent.status_code == 409 and "è cambiato dopo" in sent.text
        ok = {**typed, "link": LINK}
        seen = fields(site.post_form(client, "/componi/anteprima", ok).text)["visto"]
        changed = site.post_form(client, "/componi/invia", {**ok, "testo": "Un altro testo.", "visto": seen})
        assert changed.status_code == 409 and "Un altro testo." in changed.text
        unknown = site.post_form(client, "/componi/anteprima", {**ok, "canale": "facebook"})
        assert unknown.status_code == 400 and "Il canale «facebook» non esiste" in unknown.text
        assert site.daemon.store.deliveries(state=None) == [] and site.daemon.store.audit_entries() == []


def test_a_viewer_sees_the_form_disabled_and_may_not_post_it(tmp_path: Path) -> None:
    for site in served(tmp_path):
        client = site.login()
        page = client.get("/componi")
        assert page.status_code == 200 and "riservato agli editor" in page.text
        assert page.text.count(" disabled") >= 6
        for path in ("/componi/anteprima", "/componi/invia"):
            answer = site.post_form(client, path, {"id": "v1", "titolo": "T", "testo": "X", "link": LINK,
                                                   "canale": "whatsapp"})
            assert answer.status_code == 403
        assert site.daemon.composed == [] and site.daemon.store.deliveries(state=None) == []
