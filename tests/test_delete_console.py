"""Deleting a post from the console's *Pubblicati*: an editor's button, with its form token,
a reason and a confirmation ticked, made by the daemon's own `delete_post` on the fake WAHA
(the console served for real on loopback, over a real store); a viewer's buttons are disabled
and a viewer's form refused; a second deletion names the first."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from console.harness import NOW, PASSWORD, FakeClockDaemon, ServedConsole, delivery, write_config
from servers.waha import FakeWaha

from bridge.config import Secret
from bridge.console.accounts import AccountBook
from bridge.daemon import Bridge
from bridge.store import Store

CHAT = "120363000000000000@newsletter"


@dataclass
class DeletingDaemon(FakeClockDaemon):
    """The console's daemon, whose deletions are the real Bridge's (its channels open)."""

    bridge: Bridge | None = field(default=None)

    async def delete_post(self, delivery_id: str, *, who: str, where: str, reason: str) -> str:
        assert self.bridge is not None
        return await self.bridge.delete_post(delivery_id, who=who, where=where, reason=reason)


@pytest.fixture
def site(tmp_path: Path, waha_server: FakeWaha) -> Iterator[tuple[ServedConsole, FakeWaha, str]]:
    loaded = write_config(tmp_path)
    config = dataclasses.replace(loaded, channels={
        **loaded.channels, "whatsapp": dataclasses.replace(loaded.channels["whatsapp"], url=waha_server.url,
                                                           api_key=None),
        "telegram": dataclasses.replace(loaded.channels["telegram"], token=Secret("env:T", "123456:TEST-token"))})
    store = Store.open(config.bridge.state_dir)
    seeded = waha_server.seed_post(CHAT, "Lavori in via Roma")
    posted = store.record_post(store.add_deliveries([delivery("d1", "whatsapp", "Lavori in via Roma")])[0],
                               seeded.id, NOW)
    book = AccountBook(config.bridge.state_dir)
    book.add("m.rossi", "viewer", PASSWORD)
    book.add("e.bianchi", "editor", PASSWORD)
    bridge = Bridge(config, store)
    bridge._open_channels()
    served = ServedConsole(DeletingDaemon(config, store, bridge=bridge))
    try:
        yield served, waha_server, posted.delivery_id
    finally:
        served.call(bridge.aclose())
        served.close()
        store.close()


def notice(client: httpx.Client) -> str:
    found = re.search(r'<p class="notice" role="status">(.*?)</p>', client.get("/pubblicati").text, re.S)
    assert found is not None, "no notice on Pubblicati"
    return html.unescape(found.group(1))


def delete(console: ServedConsole, client: httpx.Client, ident: str, **data: str) -> None:
    answer = console.post_form(client, "/pubblicati/cancella", {"id": ident, **data})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/pubblicati"


def test_an_editor_deletes_a_post_once_it_is_confirmed(site: tuple[ServedConsole, FakeWaha, str]) -> None:
    console, waha, ident = site
    editor = console.login("e.bianchi")
    delete(console, editor, ident, motivo="pubblicato per errore")
    assert notice(editor) == f"Messaggio {ident} non cancellato: spuntare la conferma."
    assert waha.deletions == []

    delete(console, editor, ident, motivo="pubblicato per errore", conferma="si")
    assert notice(editor) == f"Messaggio {ident} cancellato dal canale."
    assert len(waha.deletions) == 1 and waha.visible_posts == []
    trail = [(e.who, e.where, e.action, e.reason) for e in console.daemon.store.audit_entries()]
    assert trail == [("e.bianchi", "console", "delete", "pubblicato per errore"),
                     ("e.bianchi", "console", "deleted", "pubblicato per errore")]

    delete(console, editor, ident, motivo="ancora", conferma="si")
    assert "already deleted by e.bianchi at" in notice(editor)
    assert len(waha.deletions) == 1


def test_a_viewer_sees_the_button_disabled_and_its_form_is_refused(site: tuple[ServedConsole, FakeWaha, str]) -> None:
    console, waha, ident = site
    viewer = console.login("m.rossi")
    page = viewer.get("/pubblicati").text
    assert re.search(r'<button type="submit" disabled>Cancella</button>', page)
    answer = console.post_form(viewer, "/pubblicati/cancella", {"id": ident, "motivo": "x", "conferma": "si"})
    assert answer.status_code == 403
    assert waha.deletions == []


def test_a_form_without_its_token_is_refused(site: tuple[ServedConsole, FakeWaha, str]) -> None:
    console, waha, ident = site
    editor = console.login("e.bianchi")
    answer = editor.post("/pubblicati/cancella", data={"id": ident, "motivo": "x", "conferma": "si"})
    assert answer.status_code == 403
    assert waha.deletions == []
