"""Screenshots of each console page (PNG), taken in Debian's headless Chromium from a real
`Console` over a real `Store` holding a small, made-up but typical day: three feeds (one
failing), a paused channel, an ops alert, alerts waiting for several reasons. The ones in docs/ are made by

    make screenshots

(`python -m console.screens docs`, with tests/ on the import path); tests/test_console_screens.py
makes them into a temporary directory, so a page that cannot be shot fails the suite.
"""

from __future__ import annotations

import dataclasses
import struct
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, Route
from servers.feeds import rss
from servers.waha import FakeWaha

from bridge.audit import AuditEntry, AuditLog
from bridge.config import OPS_FEED
from bridge.console.accounts import AccountBook
from bridge.models import HeldItem
from bridge.ops import ops_alert
from bridge.store import Delivery
from console.browser import chromium
from console.harness import NOW, PASSWORD, ServedConsole, delivery, read_counts, served

VIEWPORT = {"width": 1280, "height": 800}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Two more feeds beside the harness's "notizie", in the harness's config.
FEEDS = """
[[feeds]]
id = "eventi"
name = "Eventi e cultura"
url = "feed.xml"
link_domains = ["comune.example.it"]
channels = ["whatsapp"]

[[feeds]]
id = "albo"
name = "Albo pretorio"
url = "feed.xml"
link_domains = ["comune.example.it"]
channels = ["telegram"]

[channels.ced]
type = "console"

[ops]
channel = "ced"
"""


class ScreenshotError(RuntimeError):
    """A page could not be shot: it did not load, or it was not the page expected."""


CHANNEL_ID = "120363000000000000@newsletter"


def _queue() -> list[Delivery]:
    return [
        delivery("q1", "whatsapp", "Lavori in via Roma: strada chiusa dal 9 dicembre",
                 "Dalle 8 alle 18 la via resta chiusa al traffico; deviazioni per via Garibaldi.", order=1.0,
                 urgent=True),
        delivery("q2", "whatsapp", "Mercatino di Natale in piazza dei Signori",
                 "Sabato e domenica, dalle 10 alle 20.", order=2.0),
        dataclasses.replace(delivery("q3", "whatsapp", "Concerto di Capodanno al teatro comunale",
                                     "Ingresso libero fino a esaurimento posti.", order=3.0), held=True),
        delivery("q4", "telegram", "Avviso di deposito: variante al piano degli interventi",
                 "Gli atti sono consultabili all'albo pretorio.", order=1.0,
                 link="https://www.comune.example.it/n/4", next_attempt=NOW + timedelta(minutes=5), attempts=2,
                 last_error="HTTP 502 Bad Gateway"),
        delivery("q5", "whatsapp", "Chiusura uffici il 24 dicembre", "Riapertura il 27.", order=4.0,
                 link="https://www.comune.example.it/n/5"),
        delivery("q6", "whatsapp", "Nuovi orari dello sportello anagrafe",
                 "Da gennaio lo sportello apre anche il giovedì pomeriggio.", order=5.0,
                 link="https://www.comune.example.it/n/6", state="awaiting"),
    ]


def _audit() -> list[AuditEntry]:
    """Three actions of the office on the day's alerts, for *Audit*."""
    before = {"state": "awaiting", "summary": "Sabato e domenica, dalle 10 alle 20.", "send_now": False}
    return [
        AuditEntry(at=NOW - timedelta(hours=2), who="a.neri", where="console", action="approve", alert_id="p1",
                   channel="whatsapp", feed_id="notizie", title="Raccolta rifiuti: nuovo calendario",
                   before=before, after={**before, "state": "pending",
                                         "summary": "Sabato e domenica il mercatino è aperto dalle 10 alle 20."}),
        AuditEntry(at=NOW - timedelta(minutes=50), who="root", where="cli", action="hold", alert_id="q2",
                   channel="whatsapp", feed_id="notizie", title="Mercatino di Natale in piazza dei Signori",
                   before=before, after={**before, "state": "stopped"}),
        AuditEntry(at=NOW - timedelta(minutes=10), who="a.neri", where="console", action="drop", alert_id="q7",
                   channel="telegram", feed_id="notizie", title="Mercatino di Natale in piazza dei Signori",
                   before=before, after=None, reason="notizia già pubblicata ieri"),
    ]


# The newest items of "notizie": one to post, one pointing off the comune's site, one too old.
# Whole sentences, so that no article page is fetched.
_NEWS = [
    {"title": "Allerta meteo gialla per vento forte", "guid": "v1", "link": "https://www.comune.example.it/n/10",
     "description": "Domani dalle 8 alle 20 sono previste raffiche di vento forte su tutto il territorio comunale. "
                    "Si raccomanda di fissare vasi e oggetti sui balconi.", "pubDate": NOW - timedelta(minutes=20)},
    {"title": "Hai vinto un buono spesa", "guid": "v2", "link": "https://buoni-spesa.example.org/comune",
     "description": "Compila il modulo per ricevere il buono spesa del Comune entro oggi.",
     "pubDate": NOW - timedelta(hours=2)},
    {"title": "Festa di fine estate", "guid": "v3", "link": "https://www.comune.example.it/n/3",
     "description": "La festa di fine estate si tiene in piazza dei Signori con musica dal vivo.",
     "pubDate": NOW - timedelta(days=90)},
]


def _stage(site: ServedConsole, waha: FakeWaha) -> None:
    """The day on the store: feed states, a paused channel, posts in the history, and the
    views and reactions of the WhatsApp ones, read from `waha`; and what the "notizie" feed
    lists now, for *Anteprima* (the file its config names)."""
    store = site.daemon.store
    (site.daemon.config.path.parent / "feed.xml").write_text(rss(_NEWS), encoding="utf-8")
    for feed_id, changes in {
        "notizie": {"last_poll": NOW, "last_success": NOW, "last_new_item": NOW - timedelta(minutes=40),
                    "primed": ("telegram", "whatsapp")},
        "eventi": {"last_poll": NOW, "last_success": NOW, "last_new_item": NOW - timedelta(days=2)},
        "albo": {"last_poll": NOW, "failures": 6, "failing_since": NOW - timedelta(hours=3),
                 "last_error": "HTTP 503 from albo.comune.example.it"},
    }.items():
        store.save_feed(dataclasses.replace(store.feed_state(feed_id), **changes))  # type: ignore[arg-type]
    posted = delivery("p1", "whatsapp", "Raccolta rifiuti: nuovo calendario", order=0.5)
    store.add_deliveries([posted])
    store.record_post(posted, "true_120363000000000000@newsletter_ABC", NOW - timedelta(hours=1))
    waha.seed_post(CHANNEL_ID, posted.alert.title, message_id="ABC")
    waha.set_engagement("ABC", 312, {"👍": 14, "❤️": 3})
    titles = ["Raccolta rifiuti: nuovo calendario 2027", "Allerta meteo gialla per vento forte",
              "Iscrizioni al nido comunale aperte fino al 31 gennaio", "Biblioteca: orario di Natale",
              "Lavori in via Roma: strada chiusa dal 9 dicembre", "Consiglio comunale convocato il 12 dicembre"]
    for n in range(24):
        earlier = delivery(f"p{n + 2}", "whatsapp" if n % 3 else "telegram", titles[n % len(titles)], order=0.4)
        store.add_deliveries([earlier])
        store.record_post(earlier, f"true_120363000000000000@newsletter_{n + 100:X}",
                          NOW - timedelta(hours=5 + 7 * n))
        if earlier.channel == "whatsapp" and n < 18:  # the older ones: beyond the channel's newest read
            waha.seed_post(CHANNEL_ID, earlier.alert.title, message_id=f"{n + 100:X}")
            waha.set_engagement(f"{n + 100:X}", 1400 - 61 * n, {"👍": 20 - n, "🙏": n % 4})
    reported = NOW - timedelta(hours=2)
    ops = Delivery(id="o1", channel="ced", feed_id=OPS_FEED, created=reported, order=1.0, alert=ops_alert(
        "channel telegram paused", "401 Unauthorized", "check the bot token", reported, ZoneInfo("Europe/Rome")))
    store.add_deliveries([ops])
    store.record_post(ops, None, reported)
    store.set_channel_pause("telegram", "401 Unauthorized: il token del bot è stato rifiutato")
    read_counts(site, waha.url)
    # An item the link guard held: its link leaves the comune's site.
    held = HeldItem("g1", "whatsapp", "Bando per contributi alle famiglie", "https://www.bandi-esempio.example/famiglie",
                    "the link points to www.bandi-esempio.example, outside the feed's domains (comune.example.it)",
                    NOW - timedelta(minutes=25))
    store.save_feed(dataclasses.replace(store.feed_state("eventi"), held=(held,)))
    AuditLog(site.daemon.config.bridge.state_dir).append(_audit())
    AccountBook(site.daemon.config.bridge.state_dir).add("a.neri", "editor", PASSWORD)


def expect_page(page: Page, title: str) -> None:
    """Raise ScreenshotError unless `page` shows the page whose heading is `title`."""
    heading = page.locator("h1").first.inner_text()
    if heading != title:
        raise ScreenshotError(f"{page.url} shows {heading!r}, not the page {title!r}")


# (file name, path, heading): one screenshot each, in this order (the login page first).
PAGES = (
    ("console-login.png", "/login", "Accesso alla console"),
    ("console-stato.png", "/", "Stato"),
    ("console-coda.png", "/coda", "In coda"),
    ("console-pubblicati.png", "/pubblicati", "Pubblicati"),
    ("console-riepilogo.png", "/pubblicati/riepilogo", "Riepilogo mensile"),
    ("console-anteprima.png", "/anteprima/feed?feed=notizie&quanti=3", "Anteprima"),
    ("console-audit.png", "/audit", "Audit"),
    ("console-componi.png", "/componi", "Componi un avviso"),
)


# What a page's screenshot must show beyond its heading (a CSS selector): In coda, a WhatsApp
# alert with its Telegram rendering beside it.
MUST_SHOW = {"/coda": "li.alert:has(.phone-whatsapp) .phone-telegram", "/audit": "#audit ins"}


def _compose(page: Page) -> None:
    """Componi with an urgent alert written and previewed, as each chosen channel shows it."""
    page.fill("input[name=titolo]", "Neve: domani scuole chiuse")
    page.fill("textarea[name=testo]", "Per la neve prevista, domani 10 dicembre le scuole di ogni ordine restano "
                                      "chiuse. Gli uffici comunali sono aperti.")
    page.fill("input[name=link]", "https://www.comune.example.it/novita/neve-scuole-chiuse/")
    page.check("input[name=urgente]")
    page.click("button.preview")
    page.wait_for_selector(".phone-telegram")


# What is done on a page before its screenshot (a form filled and previewed).
FILL = {"/componi": _compose}


def shoot(directory: Path) -> list[Path]:
    """Write one full-page PNG of each of PAGES into `directory` (created if missing); return
    their paths. Raise ScreenshotError when a page is not the one expected, BrowserMissingError
    without Chromium."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for site in served(Path(scratch), _queue(), extra=FEEDS):
            with FakeWaha() as waha:
                _stage(site, waha)
            with chromium() as browser:
                page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                page.route("**/*", _loopback_only)
                for name, path, heading in PAGES:
                    if path != "/login" and page.url.endswith("/login"):
                        _log_in(page, site)
                    page.goto(f"{site.url}{path}")
                    if path in FILL:
                        FILL[path](page)
                    expect_page(page, heading)
                    if path in MUST_SHOW and page.locator(MUST_SHOW[path]).count() == 0:
                        raise ScreenshotError(f"{page.url} does not show {MUST_SHOW[path]}")
                    target = directory / name
                    page.screenshot(path=str(target), full_page=True)
                    png_size(target)
                    written.append(target)
    return written


def _loopback_only(route: Route) -> None:
    """Requests to the console go; nothing else leaves the machine (an alert's image would)."""
    if route.request.url.startswith("http://127.0.0.1:"):
        route.continue_()
    else:
        route.abort()


def _log_in(page: Page, site: ServedConsole) -> None:
    page.fill("input[name=name]", "a.neri")  # an editor: In coda with its buttons
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{site.url}/")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of the PNG at `path`; ScreenshotError if it is not a PNG."""
    head = path.read_bytes()[:24]
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ScreenshotError(f"{path} is not a PNG image")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m console.screens DIRECTORY", file=sys.stderr)
        return 2
    for path in shoot(Path(argv[0])):
        width, height = png_size(path)
        print(f"{path} ({width}x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
