"""bridge.article: the lead of an article page, and the thin-item path against a loopback page."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from servers.feeds import FeedServer

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


def read(reader_urls: list[str], feed_url: str, **kwargs: object) -> list[str]:
    async def go() -> list[str]:
        async with Fetcher(user_agent="test", timeout=5) as fetcher:
            reader = ArticleReader(fetcher)
            return [await reader.lead(url, feed_url=feed_url, **kwargs) for url in reader_urls]  # type: ignore[arg-type]

    return asyncio.run(go())


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
    feed_server.set_feed("/pagina", "<p>Il Comune informa che la piazza resta chiusa oggi.</p>", content_type=HTML)
    leads = read([feed_server.url("/pagina")], feed_url="https://www.comune.esempio.it/feed/",
                 link_domains=("127.0.0.1",))
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
