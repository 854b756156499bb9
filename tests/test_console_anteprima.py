"""The *Anteprima* page over a real console, a real store and a loopback feed server: the
newest items of a configured feed, or of a pasted address, with what each would become on
each channel and whether it would be posted and why (preview's own decision), every failure
an Italian line on the page and in the log, never a 500, and no state changed by a preview."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from console.harness import NOW, PASSWORD, ServedConsole, served
from servers.feeds import FeedServer, rss
from servers.pages import FakeDNS, RoutedNetwork

from bridge.console.accounts import AccountBook
from bridge.fetch import Fetcher
from bridge.identity import recorded_keys
from bridge.parse import parse_feed

PUBLIC_IP = "93.184.216.34"  # where the test DNS puts www.comune.example.it; routed to the feed server
LINK = "https://www.comune.example.it/novita/"

ITEMS: list[dict[str, Any]] = [
    {"title": "Lavori in via Roma", "guid": "n-post", "link": LINK + "lavori",
     "description": "La strada resta chiusa al traffico dal 9 dicembre per il rifacimento dell'asfalto.",
     "pubDate": NOW - timedelta(hours=1)},
    {"title": "Un sito di un altro", "guid": "n-held", "link": "https://truffa.example.org/premio",
     "description": "Vinci un premio cliccando qui sotto subito.", "pubDate": NOW - timedelta(hours=2)},
    {"title": "Sagra della castagna", "guid": "n-filtered", "link": LINK + "sagra",
     "description": "La sagra torna in piazza con stand e musica.", "pubDate": NOW - timedelta(hours=3)},
    {"title": "Mercato estivo", "guid": "n-old", "link": LINK + "mercato",
     "description": "Il mercato estivo si tiene ogni giovedì in piazza.", "pubDate": NOW - timedelta(days=30)},
    {"title": "Consiglio comunale convocato", "guid": "n-seen", "link": LINK + "consiglio",
     "description": "Il consiglio comunale si riunisce in seduta pubblica.", "pubDate": NOW - timedelta(hours=4)},
    # What survives the parser's own cleaning (tags go): markup characters and bidi controls.
    {"title": 'Tariffe: 2 &lt; 3 &amp;lt;b&amp;gt; "onerror=x" \u202egnp.exe\u202c', "guid": "n-hostile",
     "link": LINK + "avviso", "description": "Testo dell'avviso con <img src=x onerror=alert(1)> dentro.",
     "pubDate": NOW - timedelta(hours=5)},
]


def feed_config(url: str) -> str:
    return f"""
[[feeds]]
id = "avvisi"
name = "Avvisi del Comune"
url = "{url}"
channels = ["whatsapp", "telegram"]
link_domains = ["comune.example.it"]
exclude = ["sagra"]
fetch_article = "never"
"""


@pytest.fixture
def site(tmp_path: Path, feed_server: FeedServer) -> Iterator[ServedConsole]:
    feed_server.set_feed("/feed.xml", rss(ITEMS))
    for site in served(tmp_path, extra=feed_config(feed_server.url("/feed.xml"))):
        AccountBook(site.daemon.config.bridge.state_dir).add("e.bianchi", "editor", PASSWORD)
        yield site


def prime(site: ServedConsole, feed_server: FeedServer) -> None:
    """The feed polled once before, on both channels, its "n-seen" item recorded on WhatsApp."""
    store = site.daemon.store
    body = feed_server.url("/feed.xml")
    parsed = parse_feed("avvisi", rss(ITEMS).encode(), url=body)
    seen = next(item for item in parsed.items if item.guid == "n-seen")
    state = dataclasses.replace(store.feed_state("avvisi"), primed=("telegram", "whatsapp"))
    store.commit(store.plan_save_feed(state, {"whatsapp": set(recorded_keys(seen))}, now=NOW))


def snapshot(site: ServedConsole) -> tuple[object, ...]:
    """What the state holds: the feed's state, every delivery, the seen keys of the items, the files."""
    store = site.daemon.store
    parsed = parse_feed("avvisi", rss(ITEMS).encode(), url="https://www.comune.example.it/feed.xml")
    seen = tuple(dict(store.seen_by(channel, key)) for item in parsed.items for key in recorded_keys(item)
                 for channel in ("whatsapp", "telegram"))
    files = tuple(sorted((str(p), p.read_bytes()) for p in site.daemon.config.bridge.state_dir.rglob("*")
                         if p.is_file() and p.name != "lock"))
    return store.feed_state("avvisi"), tuple(store.deliveries(state=None)), seen, files


def item_block(page: str, title_fragment: str) -> str:
    """The HTML of the item whose title holds `title_fragment` (up to the next item)."""
    blocks = page.split('<li class="preview-item">')
    found = [block for block in blocks[1:] if title_fragment in block.split("</h3>")[0]]
    assert len(found) == 1, title_fragment
    return found[0]


def verdicts(block: str) -> list[str]:
    return re.findall(r'<div class="alert verdict-([a-z-]+)">', block)


def test_a_configured_feed_shows_each_verdict_kind_with_why_and_the_phone_preview(
        site: ServedConsole, feed_server: FeedServer) -> None:
    prime(site, feed_server)
    before = snapshot(site)
    page = site.login().get("/anteprima/feed", params={"feed": "avvisi", "quanti": "10"})
    assert page.status_code == 200, page.text
    text = page.text
    assert "6 notizie nel feed, le 6 più recenti" in text

    posted = item_block(text, "Lavori in via Roma")
    assert verdicts(posted) == ["post", "post"]  # WhatsApp, then Telegram, the feed's order
    assert "sarebbe pubblicato" in posted and "notizia nuova per questo canale" in posted
    assert "<strong>Lavori in via Roma</strong>" in posted  # the WhatsApp text's *bold*, rendered
    assert re.search(r"\d+ / 4096 caratteri", posted)

    held = item_block(text, "Un sito di un altro")
    assert verdicts(held) == ["held", "held"]
    assert "trattenuto" in held and "fuori dai domini del feed" in held
    assert "truffa.example.org" in held  # the decision's own words, as detail

    assert verdicts(item_block(text, "Sagra della castagna")) == ["filtered", "filtered"]
    assert "esclusa dalle parole include/exclude" in item_block(text, "Sagra")

    old = item_block(text, "Mercato estivo")
    assert verdicts(old) == ["too-old", "too-old"] and "più vecchia di max_age (7d)" in old

    seen = item_block(text, "Consiglio comunale")
    assert verdicts(seen) == ["seen", "post"]  # recorded on WhatsApp only
    assert "già visto" in seen

    assert snapshot(site) == before  # nothing recorded, nothing queued


def test_at_its_first_poll_a_feed_records_and_posts_nothing(site: ServedConsole) -> None:
    text = site.login().get("/anteprima/feed", params={"feed": "avvisi"}).text
    block = item_block(text, "Lavori in via Roma")
    assert verdicts(block) == ["record", "record"]
    assert "primo controllo del feed: si pubblicano solo le 0 più recenti (backfill)" in block
    assert "le 5 più recenti" in text  # the default count


def test_at_night_a_post_waits_for_the_end_of_the_quiet_hours(site: ServedConsole, feed_server: FeedServer) -> None:
    prime(site, feed_server)
    site.daemon.wall = NOW.replace(hour=22)  # 23:00 in Rome
    block = item_block(site.login().get("/anteprima/feed", params={"feed": "avvisi"}).text, "Lavori")
    assert "sarebbe pubblicato alla fine delle ore di silenzio" in block
    assert "partirebbe il 08/12/2026 07:00" in block


def test_hostile_feed_text_is_shown_as_text(site: ServedConsole, feed_server: FeedServer) -> None:
    prime(site, feed_server)
    text = site.login().get("/anteprima/feed", params={"feed": "avvisi", "quanti": "10"}).text
    block = item_block(text, "Tariffe")
    assert "<img" not in text and "onerror=alert" not in text and "<b>" not in block
    assert "Tariffe: 2 &lt; 3" in block and "&#34;onerror=x&#34;" in block
    assert "\u202egnp.exe\u202c" in block


def test_the_form_lists_the_configured_feeds_and_offers_pasting_to_editors_only(site: ServedConsole) -> None:
    viewer = site.login().get("/anteprima")
    assert viewer.status_code == 200
    assert '<option value="avvisi"' in viewer.text and '<option value="notizie"' in viewer.text
    assert 'action="/anteprima/indirizzo"' not in viewer.text and "riservato agli editor" in viewer.text
    editor = site.login("e.bianchi").get("/anteprima")
    assert 'action="/anteprima/indirizzo"' in editor.text
    assert 'href="/anteprima" aria-current="page"' in editor.text


@pytest.mark.parametrize(("params", "message"), [
    ({"feed": "nessuno"}, "Questo feed non è nella configurazione."),
    ({}, "Scegliere un feed dall&#39;elenco."),
    ({"feed": "avvisi", "quanti": "0"}, "Il numero di notizie deve essere un intero da 1 a 20."),
    ({"feed": "avvisi", "quanti": "tanti"}, "Il numero di notizie deve essere un intero da 1 a 20."),
])
def test_a_bad_choice_is_a_clear_message(site: ServedConsole, params: dict[str, str], message: str) -> None:
    page = site.login().get("/anteprima/feed", params=params)
    assert page.status_code == 400 and message in page.text


def test_a_configured_feed_that_fails_is_a_message_and_a_log_line(site: ServedConsole,
                                                                  feed_server: FeedServer) -> None:
    feed_server.set_fault("/feed.xml", "503")
    with structlog.testing.capture_logs() as logs:
        page = site.login().get("/anteprima/feed", params={"feed": "avvisi"})
    assert page.status_code == 502
    assert "Il sito ha risposto con un errore (HTTP 503 Service Unavailable)." in page.text
    assert [e["error"] for e in logs if e["event"] == "console preview failed"] == ["HTTP 503 Service Unavailable"]


# -- a pasted address -----------------------------------------------------------------------------------------

def public_fetcher(feed_server: FeedServer, **options: Any) -> Fetcher:
    """A fetcher that checks addresses as in service, on a test internet where
    www.comune.example.it is a public address served by `feed_server`."""
    dns = FakeDNS({"www.comune.example.it": [[PUBLIC_IP]], "intranet.comune.example.it": [["10.1.2.3"]]})
    network = RoutedNetwork({(PUBLIC_IP, 80): ("127.0.0.1", feed_server.port)})
    return Fetcher(user_agent="test", resolve=dns, network=network, **{"timeout": 10, **options})


def paste(site: ServedConsole, url: str, count: str = "") -> Any:
    return site.post_form(site.login("e.bianchi"), "/anteprima/indirizzo", {"url": url, "quanti": count})


def use(site: ServedConsole, fetcher: Fetcher) -> None:
    site.call(site.daemon.use_fetcher(fetcher).aclose())


def test_a_pasted_public_address_is_previewed_as_an_already_polled_feed(site: ServedConsole,
                                                                        feed_server: FeedServer) -> None:
    use(site, public_fetcher(feed_server))
    before = snapshot(site)
    with structlog.testing.capture_logs() as logs:
        page = paste(site, "http://www.comune.example.it/feed.xml", "3")
    assert page.status_code == 200, page.text
    assert "le 3 più recenti" in page.text and "impostazioni predefinite" in page.text
    block = item_block(page.text, "Lavori in via Roma")
    assert verdicts(block) == ["post", "post"] and "<strong>Lavori in via Roma</strong>" in block
    # Its own domain is the link guard's: the item elsewhere is held.
    assert verdicts(item_block(page.text, "Un sito di un altro")) == ["held", "held"]
    assert feed_server.requests("/feed.xml")[0].headers["accept"].startswith("application/rss+xml")
    assert [(e["user"], e["url"]) for e in logs if e["event"] == "console preview of a pasted address"] == \
        [("e.bianchi", "http://www.comune.example.it/feed.xml")]
    assert snapshot(site) == before


@pytest.mark.parametrize(("url", "message"), [
    ("", "Incollare l&#39;indirizzo di un feed"),
    ("ftp://www.comune.example.it/feed.xml", "Si leggono solo indirizzi http:// o https://."),
    ("/etc/passwd", "Si leggono solo indirizzi http:// o https://."),
    ("http:///feed.xml", "Nell&#39;indirizzo manca il nome del sito."),
    ("http://www.comune.example.it:porta/", "Indirizzo non valido."),
    ("http://utente:segreto@www.comune.example.it/feed.xml", "non può contenere nome utente o password"),
    ("http://www.comune.example.it/" + "a" * 2001, "Indirizzo troppo lungo"),
])
def test_a_bad_address_is_refused_before_any_fetch(site: ServedConsole, feed_server: FeedServer, url: str,
                                                    message: str) -> None:
    use(site, public_fetcher(feed_server))
    with structlog.testing.capture_logs() as logs:
        page = paste(site, url)
    assert page.status_code == 400 and message in page.text
    assert feed_server.requests() == []
    failed = [e for e in logs if e["event"] == "console preview failed"]
    assert len(failed) == 1 and "segreto" not in str(failed)


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/feed.xml", "http://intranet.comune.example.it/feed.xml"])
def test_a_private_address_is_refused_and_nothing_is_fetched(site: ServedConsole, feed_server: FeedServer,
                                                              url: str) -> None:
    use(site, public_fetcher(feed_server))
    with structlog.testing.capture_logs() as logs:
        page = paste(site, url.format(port=feed_server.port))
    assert page.status_code == 403
    assert "Indirizzo rifiutato: si leggono solo siti pubblici" in page.text
    assert feed_server.requests() == []
    assert any("not a public address" in e["error"] for e in logs if e["event"] == "console preview failed")


def test_a_redirect_to_a_private_address_is_refused(site: ServedConsole, feed_server: FeedServer) -> None:
    use(site, public_fetcher(feed_server))
    feed_server.set_fault("/vecchio.xml", "redirect", location=f"http://127.0.0.1:{feed_server.port}/feed.xml")
    page = paste(site, "http://www.comune.example.it/vecchio.xml")
    assert page.status_code == 403 and "Indirizzo rifiutato" in page.text
    assert [r.path for r in feed_server.requests()] == ["/vecchio.xml"]


@pytest.mark.parametrize(("fault", "options", "fetcher", "status", "message"), [
    ("slow", {"delay": 5}, {"timeout": 1}, 502, "Il sito non ha risposto in tempo"),
    ("html", {}, {}, 502, "A questo indirizzo non c&#39;è un feed RSS o Atom leggibile."),
    ("garbage", {}, {}, 502, "A questo indirizzo non c&#39;è un feed RSS o Atom leggibile."),
    ("huge", {"size": 64 * 1024}, {"max_bytes": 16 * 1024}, 502, "Il contenuto è troppo grande per essere un feed."),
    ("gzip_bomb", {"size": 1024 * 1024}, {"max_bytes": 16 * 1024}, 502, "troppo grande"),
    ("404", {}, {}, 502, "Il sito ha risposto con un errore (HTTP 404 Not Found)."),
    ("empty", {}, {}, 502, "Il sito ha risposto senza contenuto"),
])
def test_a_feed_that_cannot_be_read_is_a_message_never_a_500(
        site: ServedConsole, feed_server: FeedServer, fault: str, options: dict[str, Any], fetcher: dict[str, Any],
        status: int, message: str) -> None:
    use(site, public_fetcher(feed_server, **fetcher))
    feed_server.set_fault("/feed.xml", fault, **options)
    with structlog.testing.capture_logs() as logs:
        page = paste(site, "http://www.comune.example.it/feed.xml")
    assert page.status_code == status, page.text
    assert message in page.text
    assert '<p class="error" role="alert">' in page.text and 'action="/anteprima/indirizzo"' in page.text
    assert len([e for e in logs if e["event"] == "console preview failed"]) == 1


def test_a_pasted_address_from_another_site_is_refused(site: ServedConsole, feed_server: FeedServer) -> None:
    use(site, public_fetcher(feed_server))
    client = site.login("e.bianchi")
    answer = client.post("/anteprima/indirizzo", data={"url": "http://www.comune.example.it/feed.xml"},
                         headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and feed_server.requests() == []


def test_after_a_lost_state_a_feed_posts_nothing_and_the_page_says_why(site: ServedConsole) -> None:
    store = site.daemon.store
    store.save_feed(dataclasses.replace(store.feed_state("avvisi"), primed=("telegram", "whatsapp"), rebuilt=True))
    block = item_block(site.login().get("/anteprima/feed", params={"feed": "avvisi"}).text, "Lavori in via Roma")
    assert verdicts(block) == ["record", "record"]
    assert "primo controllo dopo la perdita dello stato: si registra tutto e non si pubblica nulla" in block
