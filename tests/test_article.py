"""bridge.article: the lead of an article page, and the thin-item path against a loopback page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from servers.feeds import FeedServer
from servers.pages import SECRET, FakeDNS, PageServer, RoutedNetwork
from structlog.testing import capture_logs

from bridge import render
from bridge.article import ArticleReader, extract_lead
from bridge.fetch import Fetcher
from bridge.item import Item
from bridge.summary import build_alert, is_thin

PAGES = Path(__file__).parent / "fixtures" / "articles"
HTML = "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("page", "lead_starts"),
    [
        pytest.param("wordpress_design_comuni", "Dal 10 al 14 agosto 2026 via Roma", id="article-descrizione"),
        pytest.param("drupal_design_comuni", "Il bollettino della Regione prevede", id="drupal-skips-fragment"),
        pytest.param("opencity", "Si sono conclusi i lavori", id="opencity-abstract-not-a-sentence"),
        pytest.param("myportal", "Si informa la cittadinanza", id="generic-meta-description-skipped"),
        pytest.param("plone", "Ordinanza del Sindaco per limitare", id="short-description-is-a-sentence"),
        pytest.param("wordpress_generic", "Dal 12 al 18 agosto torna la Sagra", id="truncated-meta-skipped"),
    ],
)
def test_extract_lead(page: str, lead_starts: str) -> None:
    lead = extract_lead((PAGES / f"{page}.html").read_text(encoding="utf-8"))
    assert lead.startswith(lead_starts)
    assert "cookie" not in lead.lower() and "\n" not in lead


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        pytest.param("<html><head><meta name='description' content='Solo un titolo'></head></html>", "Solo un titolo"),
        pytest.param("<p>Breve</p>", ""),
        pytest.param("", ""),
        pytest.param("<main><p>Il Comune informa che la piazza resta chiusa per lavori.", "Il Comune informa che la "
                     "piazza resta chiusa per lavori."),
    ],
)
def test_extract_lead_fallbacks(page: str, expected: str) -> None:
    assert extract_lead(page) == expected


def thin_item(link: str) -> Item:
    return Item(
        feed_id="notizie",
        title="Chiusura di via Roma per lavori",
        link=link,
        guid=None,
        text="Chiusura di via Roma per lavori",
    )


def read(reader_urls: list[str], feed_url: str, *, allow_private: bool = True, fetcher: dict[str, Any] | None = None,
         **kwargs: object) -> list[str]:
    """The leads of `reader_urls` for a feed at `feed_url`. The pages are on loopback, so the
    test switch `allow_private_pages` is on unless `allow_private=False`; `fetcher` adds
    Fetcher options (a resolver, a routed network)."""

    async def go() -> list[str]:
        async with Fetcher(user_agent="test", timeout=5, allow_private_pages=allow_private, **(fetcher or {})) as f:
            reader = ArticleReader(f)
            return [await reader.lead(url, feed_url=feed_url, **kwargs) for url in reader_urls]  # type: ignore[arg-type]

    return asyncio.run(go())


def reasons(logs: list[dict[str, Any]]) -> list[str]:
    return [str(entry["reason"]) for entry in logs if entry["event"] == "article page not used"]


def test_thin_item_gets_the_article_lead(feed_server: FeedServer) -> None:
    page = (PAGES / "wordpress_design_comuni.html").read_text(encoding="utf-8")
    feed_server.set_feed("/novita/chiusura-via-roma/", page, content_type=HTML)
    link = feed_server.url("/novita/chiusura-via-roma/")
    item = thin_item(link)
    assert is_thin(item)

    first, again = read([link, link], feed_url=feed_server.url("/feed/"))

    assert first == again
    assert len(feed_server.requests("/novita/chiusura-via-roma/")) == 1  # cached by URL
    alert = build_alert(item, feed_name="Notizie", article=first)
    assert render.plain(alert) == (
        "Chiusura di via Roma per lavori\n\n"
        "Dal 10 al 14 agosto 2026 via Roma resta chiusa al traffico dalle ore 7.30 alle 18.00 per il "
        "rifacimento dell’asfalto. I residenti possono accedere dal lato di piazza Garibaldi.\n\n"
        f"{link}"
    )


def test_off_domain_article_is_never_fetched(feed_server: FeedServer) -> None:
    feed_server.set_feed("/pagina", "<p>Il Comune informa che la piazza resta chiusa.</p>", content_type=HTML)
    # The page is on 127.0.0.1, the feed on another domain: the guard refuses before any request.
    assert read([feed_server.url("/pagina")], feed_url="https://www.comune.esempio.it/feed/") == [""]
    assert feed_server.requests("/pagina") == []


def test_link_domains_allow_another_host(feed_server: FeedServer) -> None:
    # The region's portal, on a public address (routed to the loopback server), default port.
    feed_server.set_feed("/pagina", "<p>Il Comune informa che la piazza resta chiusa oggi.</p>", content_type=HTML)
    dns = FakeDNS({"portale.regione.veneto.it": [["93.184.216.34"]]})
    network = RoutedNetwork({("93.184.216.34", 80): ("127.0.0.1", feed_server.port)})
    options = {"allow_private": False, "fetcher": {"resolve": dns, "network": network}}
    url = "http://portale.regione.veneto.it/pagina"
    assert read([url], feed_url="https://www.comune.esempio.it/feed/", **options) == [""]  # type: ignore[arg-type]
    assert feed_server.requests("/pagina") == []
    leads = read([url], feed_url="https://www.comune.esempio.it/feed/", link_domains=("regione.veneto.it",),
                 **options)  # type: ignore[arg-type]
    assert leads == ["Il Comune informa che la piazza resta chiusa oggi."]


def test_non_html_answer_and_errors_give_no_lead(feed_server: FeedServer) -> None:
    pdf = b"%PDF-1.4 Il Comune informa che la piazza resta chiusa."
    feed_server.set_feed("/doc.pdf", pdf, content_type="application/pdf")
    feed_server.set_feed("/errore", "<p>x</p>", content_type=HTML)
    feed_server.set_fault("/errore", "500")
    feed = feed_server.url("/feed/")
    assert read([feed_server.url("/doc.pdf"), feed_server.url("/errore"), "javascript:alert(1)"], feed) == ["", "", ""]


def test_thin_item_without_article_falls_back_to_title_and_link() -> None:
    item = thin_item("https://www.comune.esempio.it/novita/x")
    alert = build_alert(item, feed_name="Notizie")
    assert alert.summary == ""


# -- what a feed points to is fetched only from public addresses ---------------------------


def test_a_loopback_page_is_refused_without_the_test_switch(feed_server: FeedServer) -> None:
    # The feed itself is on loopback (the operator's choice); its item's page is not fetched.
    feed_server.set_feed("/interno", f"<main><p>{SECRET}</p></main>", content_type=HTML)
    with capture_logs() as logs:
        leads = read([feed_server.url("/interno")], feed_url=feed_server.url("/feed/"), allow_private=False)
    assert leads == [""]
    assert feed_server.requests("/interno") == []
    assert reasons(logs) == ["fetch failed: 127.0.0.1 is not a public address"]


def test_a_name_on_the_comune_domain_resolving_to_loopback_is_refused(page_server: PageServer) -> None:
    # "intranet.comune.esempio.it" is on the feed's own domain; its DNS says 127.0.0.1.
    page_server.page("/router")
    dns = FakeDNS({"intranet.comune.esempio.it": [["127.0.0.1"]]})
    network = RoutedNetwork({("127.0.0.1", 80): ("127.0.0.1", page_server.port)})
    with capture_logs() as logs:
        leads = read(["http://intranet.comune.esempio.it/router"], feed_url="https://www.comune.esempio.it/feed/",
                     allow_private=False, fetcher={"resolve": dns, "network": network})
    assert leads == [""]
    assert network.connects == [] and page_server.paths == []
    assert reasons(logs) == ["fetch failed: intranet.comune.esempio.it resolves to 127.0.0.1, not a public address"]


def test_another_port_of_the_feeds_own_address_is_never_fetched(
    feed_server: FeedServer, page_server: PageServer
) -> None:
    # Same "domain" as the feed (the IP address), another port: another service. Refused by
    # the link guard even with the test switch on.
    url = page_server.page("/internal")
    with capture_logs() as logs:
        assert read([url], feed_url=feed_server.url("/feed/")) == [""]
    assert page_server.paths == []
    assert "port" in reasons(logs)[0]


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_a_redirect_to_loopback_is_refused_before_it_is_followed(
    feed_server: FeedServer, family: str, request: pytest.FixtureRequest
) -> None:
    internal: PageServer = request.getfixturevalue("page_server" if family == "v4" else "page_server_v6")
    feed_server.set_fault("/vecchia", "redirect", location=internal.page("/internal"), code=302)
    with capture_logs() as logs:
        assert read([feed_server.url("/vecchia")], feed_url=feed_server.url("/feed/")) == [""]
    assert len(feed_server.requests("/vecchia")) == 1
    assert internal.paths == []  # the target never saw a request
    assert reasons(logs)[0].startswith(f"fetch failed: redirect to {internal.url('/internal')} refused")


def test_a_redirect_to_an_internal_name_is_refused_on_the_address(
    feed_server: FeedServer, page_server: PageServer
) -> None:
    # No test switch: the comune's site is "public" (a routed address), it redirects to a name
    # on its own domain (the link guard passes) whose DNS answer is loopback.
    feed_server.set_fault("/vecchia", "redirect", location="http://intranet.comune.esempio.it/router", code=302)
    page_server.page("/router")
    dns = FakeDNS({"www.comune.esempio.it": [["93.184.216.34"]], "intranet.comune.esempio.it": [["127.0.0.1"]]})
    network = RoutedNetwork({("93.184.216.34", 80): ("127.0.0.1", feed_server.port),
                             ("127.0.0.1", 80): ("127.0.0.1", page_server.port)})
    with capture_logs() as logs:
        leads = read(["http://www.comune.esempio.it/vecchia"], feed_url="https://www.comune.esempio.it/feed/",
                     allow_private=False, fetcher={"resolve": dns, "network": network})
    assert leads == [""]
    assert len(feed_server.requests("/vecchia")) == 1
    assert network.connects == [("93.184.216.34", 80)] and page_server.paths == []
    assert reasons(logs) == ["fetch failed: intranet.comune.esempio.it resolves to 127.0.0.1, not a public address"]


def test_a_public_page_is_read_from_the_address_that_was_checked(
    feed_server: FeedServer, page_server: PageServer
) -> None:
    # DNS rebinding: public when asked first, loopback afterwards. The page comes from the
    # checked (public) address; the loopback service never hears of it.
    feed_server.set_feed("/novita", "<p>Il Comune informa che la piazza resta chiusa oggi.</p>", content_type=HTML)
    page_server.page("/novita")
    dns = FakeDNS({"www.comune.esempio.it": [["93.184.216.34"], ["127.0.0.1"]]})
    network = RoutedNetwork({("93.184.216.34", 80): ("127.0.0.1", feed_server.port),
                             ("127.0.0.1", 80): ("127.0.0.1", page_server.port)})
    leads = read(["http://www.comune.esempio.it/novita"], feed_url="https://www.comune.esempio.it/feed/",
                 allow_private=False, fetcher={"resolve": dns, "network": network})
    assert leads == ["Il Comune informa che la piazza resta chiusa oggi."]
    assert dns.questions == ["www.comune.esempio.it"]
    assert network.connects == [("93.184.216.34", 80)] and page_server.paths == []
