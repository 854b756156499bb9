"""The console in a real browser (Debian's headless Chromium, through Playwright): an office
session from login to logout, with what the page shows checked in the browser's DOM and
computed styles, not in the HTML string: a failing feed on *Stato*, a held alert with its
reason on *In coda*, a phone preview whose bold title is bold, and hostile feed text shown as
text with no script run; an editor approving an alert and composing an urgent one on the
real daemon, both reaching the fake WAHA; the *Componi* form disabled for a viewer, and forged
or tokenless posts of it refused. Without Chromium these tests fail (tests/console/browser.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from console.browser import BROWSER_VARIABLE, BrowserMissingError, chromium, chromium_path
from console.harness import NOW, PASSWORD, ServedConsole, delivery, served
from daemons import Daemon, bridge_command, bridge_environment
from playwright.sync_api import ConsoleMessage, Dialog, Page
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from waiting import wait_for

from bridge.console.accounts import AccountBook
from bridge.models import HeldItem

# Each one would leave a mark if it ran: a dialog, or window.__pwned set.
HOSTILE_TITLES = [
    "<script>window.__pwned = 1; alert('script')</script> Chiusura scuole",
    '<img src=x onerror="window.__pwned = 2; alert(2)"> Avviso',
    "Bando \u202egnp.exe\u202c *non grassetto* _</em>_ \u2067isolato",
    '<a href="javascript:window.__pwned=3">clicca</a> <svg onload="window.__pwned=4">',
]
HOSTILE_SUMMARY = "javascript:window.__pwned=5 <iframe src=x></iframe> [link](javascript:alert(5))"
TELEGRAM_HOSTILE = '<a href="javascript:window.__pwned=6">x</a><b onmouseover="window.__pwned=7">y</b>'

# What the DOM holds that a hostile text could have made: elements that run or load things,
# event-handler attributes, links whose scheme is not http(s), and the page's own marks.
DOM_FACTS = """() => ({
    active: [...document.querySelectorAll('script, iframe, object, embed, svg, frame')].map(e => e.tagName),
    handlers: [...document.querySelectorAll('*')].flatMap(
        e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name)),
    schemes: [...document.querySelectorAll('a[href]')].map(a => a.protocol)
        .filter(p => p !== 'http:' && p !== 'https:'),
    images: [...document.querySelectorAll('img')].map(i => i.getAttribute('src')),
    pwned: window.__pwned === undefined ? null : window.__pwned,
    cookie: document.cookie,
})"""


class Marks:
    """What a script leaves in the browser: dialogs it opened, its uncaught errors, what the
    Content Security Policy refused to run."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)


def queue() -> list[Any]:
    hostile = [delivery(f"h{n}", "whatsapp", title, HOSTILE_SUMMARY, order=10.0 + n,
                        link="javascript:window.__pwned=8" if n == 0 else "https://www.comune.example.it/n/1")
               for n, title in enumerate(HOSTILE_TITLES)]
    return [
        delivery("d1", "whatsapp", "Lavori in via Roma", "Chiusa dal 9 dicembre.", order=1.0),
        delivery("t1", "telegram", "Lavori in via Roma", "Chiusa dal 9 dicembre.", order=1.0),
        delivery("t2", "telegram", TELEGRAM_HOSTILE, HOSTILE_SUMMARY, order=2.0),
        *hostile,
    ]


def failing_feed(site: ServedConsole) -> None:
    store = site.daemon.store
    store.save_feed(dataclasses.replace(
        store.feed_state("notizie"), last_poll=NOW, failures=4, failing_since=NOW - timedelta(hours=2),
        last_error="HTTP 503 from www.comune.example.it"))


def history(site: ServedConsole) -> None:
    """Four posts in the history: two on WhatsApp, one hostile, one on Telegram."""
    store = site.daemon.store
    posted = [delivery("p1", "whatsapp", "Lavori in via Roma"), delivery("p2", "whatsapp", "Mercato in piazza"),
              delivery("p3", "whatsapp", HOSTILE_TITLES[0]), delivery("p4", "telegram", "Lavori in via Roma")]
    for n, post in enumerate(posted):
        store.add_deliveries([post])
        store.record_post(post, f"true_{n + 1}@newsletter", NOW - timedelta(minutes=n))


GUARDED_LINK = 'https://www.altro.example/bando"><img src=x onerror="window.__pwned=9">'


def guarded_item(site: ServedConsole) -> None:
    """An item the link guard held, with a hostile title and link."""
    store = site.daemon.store
    held = HeldItem("g1", "whatsapp", HOSTILE_TITLES[1], GUARDED_LINK,
                    "the link points to www.altro.example, outside the feed's domains (comune.example.it)",
                    NOW - timedelta(minutes=10))
    store.save_feed(dataclasses.replace(store.feed_state("notizie"), held=(held,)))


def log_in(page: Page, site: ServedConsole, name: str = "m.rossi") -> None:
    page.goto(f"{site.url}/")
    assert page.url == f"{site.url}/login"  # no page without a session
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{site.url}/")


def test_an_office_session_in_a_real_browser(tmp_path: Path) -> None:
    for site in served(tmp_path, queue()):
        site.daemon.wall = NOW.replace(hour=22)  # 23:00 in Rome: quiet hours hold the heads of the queues
        failing_feed(site)
        guarded_item(site)
        history(site)
        with chromium() as browser:
            context = browser.new_context()
            context.set_default_timeout(30_000)
            page = context.new_page()
            marks = Marks(page)

            log_in(page, site)

            # Stato: the failing feed, its error and since when, in Rome's time.
            assert page.locator("h1").inner_text() == "Stato"
            row = page.locator("#feed tbody tr", has_text="Notizie dal Comune")
            assert row.get_attribute("class") == "health-failing"
            cells = row.locator("td").all_inner_texts()
            assert cells[1] == "in errore"
            assert cells[4] == "07/12/2026 09:30"
            assert "HTTP 503 from www.comune.example.it" in cells[5]

            # In coda: the head of the WhatsApp queue held by quiet hours, saying why and until when.
            page.click("nav a[href='/coda']")
            page.wait_for_url(f"{site.url}/coda")
            held = page.locator("#d-d1")
            assert held.locator("dd.state").inner_text() == "trattenuto"
            assert held.locator("dd.reason").inner_text() == "ore di silenzio (22:00-07:00): parte alla fine"
            assert held.locator("dd", has_text="08/12/2026").inner_text() == "08/12/2026 07:00"
            assert page.locator("#d-h0 dd.reason").inner_text() == "in coda dietro 1 avviso"

            # The phone preview: WhatsApp's *title* is bold, and its asterisks are gone; beside
            # it the Telegram channel's own text, its <b> rendered bold, against Telegram's limit.
            beside = page.locator("#d-d1 .phone-telegram")
            assert beside.locator(".where").inner_text() == "telegram · Telegram"
            assert beside.locator("figcaption").inner_text().endswith("/ 4096 caratteri")
            for ident, platform in (("d1", "whatsapp"), ("d1", "telegram"), ("t1", "telegram")):
                bubble = page.locator(f"#d-{ident} .phone-{platform} .bubble .text")
                title = bubble.locator("strong").first
                assert title.inner_text() == "Lavori in via Roma"
                assert int(title.evaluate("e => getComputedStyle(e).fontWeight")) >= 700
                assert "*" not in bubble.inner_text()
                normal = bubble.evaluate("e => getComputedStyle(e).fontWeight")
                assert int(normal) < 600, "only the title is bold"

            # An item the link guard held: its reason and what to do, its hostile title and link as text.
            guarded = page.locator("#d-g1")
            assert guarded.locator("dd.state").inner_text() == "trattenuto"
            assert guarded.locator("dd.reason").inner_text().startswith("il link porta a www.altro.example")
            assert "link_domains" in guarded.locator("dd.remedy").inner_text()
            assert guarded.locator("h2").evaluate("e => e.textContent") == HOSTILE_TITLES[1]
            assert guarded.locator("dd.link").evaluate("e => e.textContent") == GUARDED_LINK
            assert guarded.locator("a, img").count() == 0

            # Hostile feed text: shown as the very text the feed sent, nothing made of it.
            for n, text in enumerate(HOSTILE_TITLES):
                heading = page.locator(f"#d-h{n} h2")
                assert heading.evaluate("e => e.textContent") == text
                assert heading.evaluate("e => e.children.length") == 0
                # bidi controls are shown but kept inside their element (they cannot flip the page)
                assert heading.evaluate("e => getComputedStyle(e).unicodeBidi") in ("isolate", "plaintext")
            for platform in ("whatsapp", "telegram"):  # the Telegram rendering beside it too
                assert "<iframe src=x></iframe>" in page.locator(f"#d-h1 .phone-{platform} .bubble .text").inner_text()
            assert page.locator("#d-t2 h2").evaluate("e => e.textContent") == TELEGRAM_HOSTILE
            for link in page.locator("#d-h0 .bubble a").all():  # the preview may link the alert's https URL
                assert link.evaluate("a => a.protocol") == "https:"
            facts = page.evaluate(DOM_FACTS)
            assert facts["active"] == [] and facts["handlers"] == [] and facts["schemes"] == []
            assert facts["images"] == []
            assert facts["pwned"] is None and marks.dialogs == [] and marks.errors == []
            assert "cb_session" not in facts["cookie"]  # HttpOnly: no script on the page can read it

            # Pubblicati: a search by words and channel, its rows, and the CSV with the same filter.
            page.click("nav a[href='/pubblicati']")
            page.wait_for_url(f"{site.url}/pubblicati")
            assert page.locator("#pubblicati tbody tr").count() == 4
            page.fill("input[name=q]", "via roma")
            page.select_option("select[name=canale]", "whatsapp")
            page.click("form.search button[type=submit]")
            page.wait_for_url(f"{site.url}/pubblicati?q=via+roma&feed=&canale=whatsapp&dal=&al=")
            rows = page.locator("#pubblicati tbody tr")
            assert rows.count() == 1
            cells = rows.first.locator("td").all_inner_texts()
            assert cells[:4] == ["07/12/2026 11:30", "whatsapp", "Notizie dal Comune", "Lavori in via Roma"]
            assert cells[4] == "true_1@newsletter"
            assert page.locator("a[download]").get_attribute("href") == "/pubblicati.csv?q=via+roma&canale=whatsapp"
            hostile = page.locator("#pubblicati td.title")
            page.fill("input[name=q]", "chiusura scuole")
            page.select_option("select[name=canale]", "")
            page.click("form.search button[type=submit]")
            page.wait_for_url(f"{site.url}/pubblicati?q=chiusura+scuole&feed=&canale=&dal=&al=")
            assert hostile.count() == 1
            assert hostile.first.evaluate("e => e.textContent") == HOSTILE_TITLES[0]
            facts = page.evaluate(DOM_FACTS)
            assert facts["active"] == [] and facts["handlers"] == [] and facts["schemes"] == []
            assert facts["pwned"] is None and marks.dialogs == [] and marks.errors == []

            # Logout: the page is refused, and so is the old session's cookie, in a fresh browser.
            [old] = [cookie for cookie in context.cookies() if cookie["name"] == "cb_session"]
            page.click("form.logout button[type=submit]")
            page.wait_for_url(f"{site.url}/login")
            page.goto(f"{site.url}/coda")
            assert page.url == f"{site.url}/login"
            assert page.locator("#d-d1").count() == 0
            replay = browser.new_context()
            replay.add_cookies([old])
            again = replay.new_page()
            again.goto(f"{site.url}/")
            assert again.url == f"{site.url}/login"
            assert again.locator("h1").inner_text() == "Accesso alla console"


def test_a_wrong_password_is_refused_in_the_browser(tmp_path: Path) -> None:
    for site in served(tmp_path):
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{site.url}/login")
            page.fill("input[name=name]", "m.rossi")
            page.fill("input[name=password]", "non è questa")
            page.click("form.login button[type=submit]")
            assert page.locator("p.error[role=alert]").inner_text() == "Nome o password non corretti."
            page.goto(f"{site.url}/")
            assert page.url == f"{site.url}/login"


def test_anteprima_of_a_configured_feed_in_the_browser(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", rss([
        {"title": "Lavori in via Roma", "guid": "a1", "link": "https://www.comune.example.it/n/1",
         "description": "La strada resta chiusa al traffico dal 9 dicembre per lavori.",
         "pubDate": NOW - timedelta(hours=1)},
        {"title": "Premio per te", "guid": "a2", "link": "https://truffa.example.org/",
         "description": "Clicca qui per avere il premio che ti spetta.", "pubDate": NOW - timedelta(hours=2)},
    ]))
    extra = f"""
[[feeds]]
id = "avvisi"
name = "Avvisi del Comune"
url = "{feed_server.url("/feed.xml")}"
channels = ["whatsapp"]
link_domains = ["comune.example.it"]
fetch_article = "never"
"""
    for site in served(tmp_path, extra=extra):
        store = site.daemon.store
        store.save_feed(dataclasses.replace(store.feed_state("avvisi"), primed=("whatsapp",)))
        with chromium() as browser:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            marks = Marks(page)
            log_in(page, site)
            page.click("nav a[href='/anteprima']")
            page.wait_for_url(f"{site.url}/anteprima")
            assert page.locator("#incolla-indirizzo").count() == 0  # a viewer cannot paste an address
            page.select_option("#scegli-feed select[name=feed]", "avvisi")
            page.click("#scegli-feed button[type=submit]")
            page.wait_for_url(f"{site.url}/anteprima/feed?feed=avvisi&quanti=5")
            items = page.locator("li.preview-item")
            assert items.count() == 2
            posted = items.nth(0)
            assert posted.locator("h3").inner_text() == "Lavori in via Roma"
            assert posted.locator(".verdict-post dd.verdict").inner_text() == "sarebbe pubblicato"
            title = posted.locator(".phone-whatsapp .bubble .text strong").first
            assert title.inner_text() == "Lavori in via Roma"
            assert int(title.evaluate("e => getComputedStyle(e).fontWeight")) >= 700
            assert "*" not in posted.locator(".phone-whatsapp .bubble .text").inner_text()
            held = items.nth(1)
            assert held.locator(".verdict-held dd.verdict").inner_text() == "trattenuto"
            assert "fuori dai domini del feed" in held.locator("dd.reason").inner_text()
            assert held.locator(".phone").count() == 0  # a held item has no alert to show
            facts = page.evaluate(DOM_FACTS)
            assert facts["active"] == [] and facts["handlers"] == [] and facts["schemes"] == []
            assert marks.dialogs == [] and marks.errors == []
        assert store.deliveries(state=None) == []  # a preview queues nothing


def awaiting() -> list[Any]:
    return [delivery("a1", "whatsapp", "Lavori in via Roma", "La strada resta chiusa dal 9 dicembre.", order=1.0,
                     state="awaiting"),
            delivery("a2", "whatsapp", "Mercato in piazza", "Il mercato si sposta in piazza Garibaldi.", order=2.0,
                     state="awaiting")]


def test_an_editor_approves_one_alert_and_edits_another_in_the_browser(tmp_path: Path) -> None:
    for site in served(tmp_path, awaiting()):
        AccountBook(site.daemon.config.bridge.state_dir).add("e.bianchi", "editor", PASSWORD)
        store = site.daemon.store
        with chromium() as browser:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            marks = Marks(page)
            log_in(page, site, "e.bianchi")
            page.click("nav a[href='/coda']")
            page.wait_for_url(f"{site.url}/coda")
            assert page.locator("#d-a1 dd.state").inner_text() == "da approvare"
            page.click("#d-a1 form.act-approve button")
            page.wait_for_url(f"{site.url}/coda#d-a1")
            assert page.locator("p.notice").inner_text() == "Avviso «Lavori in via Roma» approvato: parte al suo turno."
            assert store.delivery("a1").state == "pending"  # type: ignore[union-attr]

            # The edit: the text in the textarea, its phone preview, the fact guard's warning
            # and its checkbox, which the browser itself requires before the form goes.
            page.click("#d-a2 details.act-edit summary")
            text = "Dal 14 dicembre il mercato si sposta in piazza Garibaldi."
            page.fill("#d-a2 textarea[name=testo]", text)
            page.click("#d-a2 details.act-edit button[type=submit]")
            page.wait_for_url(f"{site.url}/coda/modifica")
            bubble = page.locator(".phone-whatsapp .bubble .text")
            assert text in bubble.inner_text()
            assert bubble.locator("strong").first.inner_text() == "Mercato in piazza"
            assert page.locator("p.warning").inner_text().startswith("Il testo ha «14»")
            page.click("button.approve-edited")
            assert page.url == f"{site.url}/coda/modifica"  # unchecked: the browser does not send it
            assert store.delivery("a2").state == "awaiting"  # type: ignore[union-attr]
            page.check("input[name=conferma]")
            page.click("button.approve-edited")
            page.wait_for_url(f"{site.url}/coda#d-a2")
            assert page.locator("p.notice").inner_text() == (
                "Avviso «Mercato in piazza» approvato con il testo modificato: parte al suo turno.")
            edited = store.delivery("a2")
            assert edited is not None and edited.alert.summary == text and edited.state == "pending"

            # The audit trail, newest first, with the editor's name and the new text.
            page.click("nav a[href='/audit']")
            page.wait_for_url(f"{site.url}/audit")
            rows = page.locator("#audit tbody tr")
            assert rows.count() == 2
            assert rows.nth(0).locator("td.action").inner_text() == "approvato con il testo modificato"
            assert rows.nth(0).locator("ins").inner_text() == text
            assert rows.nth(1).locator("td.who").inner_text() == "e.bianchi"
            assert marks.dialogs == [] and marks.errors == []


def test_a_viewer_sees_the_buttons_disabled_and_forged_or_tokenless_forms_are_refused(tmp_path: Path) -> None:
    for site in served(tmp_path, awaiting()):
        AccountBook(site.daemon.config.bridge.state_dir).add("e.bianchi", "editor", PASSWORD)
        store = site.daemon.store
        with chromium() as browser:
            viewer = browser.new_context()
            viewer.set_default_timeout(30_000)
            page = viewer.new_page()
            log_in(page, site)
            page.goto(f"{site.url}/coda")
            buttons = page.locator("#d-a1 .actions button")
            assert buttons.count() >= 4
            assert all(b.is_disabled() for b in buttons.all())
            assert page.locator("#d-a1 input[name=motivo]").is_disabled()
            # The form posted anyway, with the viewer's own session and form token.
            token = page.locator("#d-a1 form.act-approve input[name=form_token]").get_attribute("value")
            forged = viewer.request.post(f"{site.url}/coda/approva", form={"form_token": token or "", "id": "a1"},
                                         headers={"Origin": site.url}, max_redirects=0)
            assert forged.status == 403 and "riservata agli editor" in forged.text()

            # An editor's form without its token (as a page of another site would post it).
            editor = browser.new_context()
            editor.set_default_timeout(30_000)
            page = editor.new_page()
            log_in(page, site, "e.bianchi")
            page.goto(f"{site.url}/coda")
            page.locator("#d-a1 form.act-approve input[name=form_token]").evaluate("e => e.remove()")
            with page.expect_response(f"{site.url}/coda/approva") as answer:
                page.click("#d-a1 form.act-approve button")
            assert answer.value.status == 403
            assert "codice di sicurezza" in page.locator("body").inner_text()
        assert store.delivery("a1").state == "awaiting"  # type: ignore[union-attr]
        assert store.audit_entries() == [] and site.daemon.acted == []


@pytest.mark.e2e
def test_an_editor_approves_an_alert_and_composes_an_urgent_one_that_reaches_the_channel(
        tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha) -> None:
    """The real daemon (`channel-bridge run`) with its console, a feed in approval mode and the
    fake WAHA: in the browser, an editor approves the waiting alert, then composes an urgent
    one on *Componi*, previews it as WhatsApp shows it and sends it; both reach the channel once."""
    from test_console_act_daemon import API_KEY, CHAT, free_port, news

    waha_server.api_key = API_KEY
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"""
[bridge]
state_dir = "state"

[[feeds]]
id = "notizie"
url = "{feed_server.url('/feed.xml')}"
interval = "1s"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
approve = true

[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"

[console]
listen = "127.0.0.1:{port}"
""", encoding="utf-8")
    AccountBook(tmp_path / "state").add("e.bianchi", "editor", PASSWORD)
    env = bridge_environment({"WAHA_API_KEY": API_KEY}, without=("RUNTIME_DIRECTORY",))
    feed_server.set_feed("/feed.xml", rss([news(1, hours_ago=30)]))
    url = f"http://127.0.0.1:{port}"
    with Daemon(config, tmp_path / "daemon.log", env=env) as daemon, chromium() as browser:
        assert daemon.wait_started(), daemon.log()
        assert daemon.wait_for_log("first poll"), daemon.log()
        feed_server.set_feed("/feed.xml", rss([news(2, hours_ago=1), news(1, hours_ago=30)]))
        page = browser.new_page()
        page.set_default_timeout(30_000)
        marks = Marks(page)
        page.goto(f"{url}/login")
        page.fill("input[name=name]", "e.bianchi")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button[type=submit]")
        page.wait_for_url(f"{url}/")
        page.click("nav a[href='/coda']")
        for _ in range(60):
            if page.locator("li.state-awaiting form.act-approve button").count():
                break
            page.wait_for_timeout(500)
            page.reload()
        page.click("li.state-awaiting form.act-approve button")
        assert "approvato: parte al suo turno" in page.locator("p.notice").inner_text()
        assert wait_for(lambda: len(waha_server.posts) == 1, 30), daemon.log()

        page.click("nav a[href='/componi']")
        page.wait_for_url(f"{url}/componi")
        page.fill("input[name=titolo]", "Neve: scuole chiuse")
        page.fill("textarea[name=testo]", "Domani le scuole restano chiuse per neve.")
        page.fill("input[name=link]", "https://www.comune.esempio.it/novita/neve/")
        page.check("input[name=urgente]")
        page.click("button.preview")
        page.wait_for_url(f"{url}/componi/anteprima")
        bubble = page.locator(".phone-whatsapp .bubble .text")
        assert bubble.locator("strong").first.inner_text() == "Neve: scuole chiuse"
        assert "Domani le scuole restano chiuse per neve." in bubble.inner_text()
        page.click("button.send")
        page.wait_for_url(f"{url}/coda")
        assert "messo in coda per whatsapp: parte subito" in page.locator("p.notice").inner_text()
        assert wait_for(lambda: len(waha_server.posts) == 2, 30), daemon.log()
        assert marks.dialogs == [] and marks.errors == []
        assert daemon.stop() == 0
    assert [post.text.splitlines()[0] for post in waha_server.posts] == [
        "*Avviso numero 2: lavori in via Roma*", "*Neve: scuole chiuse*"]
    audit = json.loads(subprocess.run(bridge_command(config, "audit", "--format", "json"), env=env,
                                      capture_output=True, text=True, timeout=60, check=True).stdout)
    assert [(e["action"], e["who"], e["where"]) for e in audit] == [
        ("approve", "e.bianchi", "console"), ("compose", "e.bianchi", "console")]


def test_a_viewer_sees_the_compose_form_disabled_and_forged_or_tokenless_posts_are_refused(tmp_path: Path) -> None:
    for site in served(tmp_path):
        AccountBook(site.daemon.config.bridge.state_dir).add("e.bianchi", "editor", PASSWORD)
        filled = {"titolo": "Falso", "testo": "Falso avviso.", "link": "https://www.comune.example.it/n/1",
                  "canale": "whatsapp", "urgente": "si", "id": "f1"}
        with chromium() as browser:
            viewer = browser.new_context()
            viewer.set_default_timeout(30_000)
            page = viewer.new_page()
            log_in(page, site)
            page.click("nav a[href='/componi']")
            page.wait_for_url(f"{site.url}/componi")
            controls = page.locator("form.compose-form input:not([type=hidden]), form.compose-form textarea, "
                                    "form.compose-form button")
            assert controls.count() >= 7 and all(c.is_disabled() for c in controls.all())
            token = page.locator("form.compose-form input[name=form_token]").get_attribute("value")
            for path in ("/componi/anteprima", "/componi/invia"):
                forged = viewer.request.post(f"{site.url}{path}", form={"form_token": token or "", **filled},
                                             headers={"Origin": site.url}, max_redirects=0)
                assert forged.status == 403 and "riservata agli editor" in forged.text()

            editor = browser.new_context()
            editor.set_default_timeout(30_000)
            page = editor.new_page()
            log_in(page, site, "e.bianchi")
            page.goto(f"{site.url}/componi")
            page.fill("input[name=titolo]", "Neve: scuole chiuse")
            page.fill("textarea[name=testo]", "Domani le scuole restano chiuse.")
            page.fill("input[name=link]", "https://www.comune.example.it/n/1")
            page.locator("form.compose-form input[name=form_token]").evaluate("e => e.remove()")
            with page.expect_response(f"{site.url}/componi/anteprima") as answer:
                page.click("button.preview")
            assert answer.value.status == 403
            assert "codice di sicurezza" in page.locator("body").inner_text()
        assert site.daemon.composed == [] and site.daemon.store.deliveries(state=None) == []
        assert site.daemon.store.audit_entries() == []


def test_without_chromium_the_browser_tests_fail_with_the_install_hint(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(BROWSER_VARIABLE, raising=False)
    with pytest.raises(BrowserMissingError, match="apt-get install chromium"):
        chromium_path()
    monkeypatch.setenv(BROWSER_VARIABLE, str(tmp_path / "chromium"))
    with pytest.raises(BrowserMissingError, match="is not an executable"):
        chromium_path()
