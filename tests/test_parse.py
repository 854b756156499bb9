"""Feed parsing: golden files for every feed shape seen on Italian comune sites, and the
hostile bodies a fetch can bring back (a web page, nothing, garbage, the wrong charset).

Each `tests/fixtures/feeds/<name>.xml` is parsed as if fetched from `FEED_URL` and compared
with `<name>.expected.json`. After a deliberate change, rewrite the expected files with

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_parse.py

and read the diff before committing it: the expected files are the specification.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from bridge.parse import ParsedFeed, ParseError, parse_feed

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
FEED_URL = "https://www.comune.esempio.it/feed/notizie.xml"
# What a server usually says: an XML type with no charset, so the XML prolog decides.
HEADERS = {"content-type": "application/xml"}
CONTENT_PREVIEW = 200

# feedparser warns when asked for `updated_parsed` of an entry whose date it could not parse;
# that is exactly what an undated item is, and the warning says nothing about our code.
pytestmark = pytest.mark.filterwarnings("ignore:To avoid breaking existing software:DeprecationWarning")

NOT_FEEDS = {
    "empty.xml": "the response is empty",
    "garbage.bin": "not an RSS or Atom feed",
    "myportal_api.json": "not an RSS or Atom feed",
    "web_page.html": "looks like a web page",
}
FEEDS = sorted(
    p.name
    for p in FIXTURES.iterdir()
    if p.name not in NOT_FEEDS and not p.name.endswith(".expected.json")
)


def _view(feed: ParsedFeed) -> dict[str, Any]:
    """The JSON-ready part of a parsed feed that a golden file pins."""
    return {
        "title": feed.title,
        "link": feed.link,
        "items": [
            {
                "title": item.title,
                "link": item.link,
                "guid": item.guid,
                "text": item.text,
                "content": item.content[:CONTENT_PREVIEW],
                "published": item.published.isoformat() if item.published else None,
                "categories": list(item.categories),
                "image_url": item.image_url,
                "keys": len(item.keys),
            }
            for item in feed.items
        ],
    }


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _parse(name: str, *, url: str = FEED_URL, headers: dict[str, str] | None = None) -> ParsedFeed:
    body = (FIXTURES / name).read_bytes()
    return parse_feed("esempio", body, url=url, headers=HEADERS if headers is None else headers)


def test_every_fixture_is_either_a_feed_or_a_known_non_feed() -> None:
    assert len(FEEDS) >= 15
    for name in NOT_FEEDS:
        assert (FIXTURES / name).exists(), name


@pytest.mark.parametrize("name", FEEDS)
def test_golden(name: str) -> None:
    actual = _dump(_view(_parse(name)))
    expected_path = FIXTURES / (Path(name).stem + ".expected.json")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(actual, encoding="utf-8")
        pytest.skip(f"rewrote {expected_path.name}")
    if not expected_path.exists():
        pytest.fail(f"{expected_path.name} is missing: run with UPDATE_GOLDEN=1 and review it")
    expected = expected_path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{expected_path.name} (expected)",
            tofile=f"{name} (parsed now)",
        )
        pytest.fail("parsed items differ from the golden file:\n" + "".join(diff), pytrace=False)


# --- not a feed ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "reason"), sorted(NOT_FEEDS.items()))
def test_not_a_feed_is_refused_with_its_reason(name: str, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        _parse(name)
    assert reason in str(caught.value)
    assert caught.value.hint, "the operator needs to be told what to check"


def test_web_page_even_when_served_as_xml() -> None:
    # A CMS that answers a dead feed URL with its home page, still labelled as a feed.
    with pytest.raises(ParseError, match="looks like a web page"):
        _parse("web_page.html", headers={"content-type": "application/rss+xml; charset=utf-8"})


@pytest.mark.parametrize("body", [b"", b"   \r\n\t ", b"\xef\xbb\xbf"], ids=["empty", "whitespace", "bom-only"])
def test_empty_body_is_refused(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed("esempio", body, url=FEED_URL, headers=HEADERS)


def test_garbage_is_refused() -> None:
    body = (FIXTURES / "garbage.bin").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    with pytest.raises(ParseError, match="not an RSS or Atom feed"):
        parse_feed("esempio", body, url=FEED_URL, headers={"content-type": "application/octet-stream"})


# --- character sets ------------------------------------------------------------------------

LATIN1_TITLES = ["Novità per la città: è aperto il nuovo asilo", "Caffè letterario in biblioteca"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/xml"}, {"content-type": "application/rss+xml"}, {"content-type": "text/xml"}],
    ids=["no-header", "application/xml", "application/rss+xml", "text/xml"],
)
def test_charset_declared_only_in_the_prolog(headers: dict[str, str]) -> None:
    body = (FIXTURES / "latin1_prolog.xml").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")  # the fixture really is Latin-1
    feed = parse_feed("esempio", body, url=FEED_URL, headers=headers)
    assert feed.title == "Comune di Esempio - Novità"
    assert [item.title for item in feed.items] == LATIN1_TITLES
    assert feed.items[0].text == "L'asilo di via Verdi è pronto: più posti e orari più lunghi, già dal lunedì."


def _rss(title: str, prolog_encoding: str | None) -> str:
    declaration = f' encoding="{prolog_encoding}"' if prolog_encoding else ""
    return (
        f'<?xml version="1.0"{declaration}?><rss version="2.0"><channel><title>Comune</title>'
        f"<link>https://www.comune.esempio.it/</link><item><title>{title}</title>"
        "<link>https://www.comune.esempio.it/novita/1</link></item></channel></rss>"
    )


def test_content_type_charset_is_honoured() -> None:
    # ISO-8859-15 has "€" at 0xA4, where Latin-1 and windows-1252 have "¤": only the header
    # can tell which one the server meant.
    body = _rss("Contributo di 50 € per la mensa", None).encode("iso-8859-15")
    feed = parse_feed("esempio", body, url=FEED_URL, headers={"content-type": "text/xml; charset=ISO-8859-15"})
    assert feed.items[0].title == "Contributo di 50 € per la mensa"


def test_content_type_charset_beats_a_wrong_prolog() -> None:
    # RFC 7303: the charset parameter of the HTTP header wins over the XML declaration.
    body = _rss("Perché è già qui", "ISO-8859-1").encode("utf-8")
    feed = parse_feed("esempio", body, url=FEED_URL, headers={"Content-Type": "application/rss+xml; charset=UTF-8"})
    assert feed.items[0].title == "Perché è già qui"


# --- characters that no parser takes -------------------------------------------------------

def _items_rss(first: str, *, encoding: str = "utf-8") -> bytes:
    """A feed whose first item has the title `first` (inserted verbatim) and description
    "<first> in piazza.", then three ordinary items."""
    good = "".join(
        f"<item><title>Avviso {n}</title><link>https://www.comune.esempio.it/avviso-{n}</link>"
        f"<description>Testo dell'avviso {n}.</description></item>" for n in (1, 2, 3)
    )
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>Comune</title>'
        f"<item><title>{first}</title><link>https://www.comune.esempio.it/festa</link>"
        f"<description>{first} in piazza.</description></item>{good}</channel></rss>"
    ).encode(encoding, "surrogatepass")


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        pytest.param("Festa &#55357;&#56832;", "Festa \U0001f600", id="decimal-pair"),
        pytest.param("Festa &#xD83D;&#xDE00;", "Festa \U0001f600", id="hex-pair"),
        pytest.param("Festa &#xD800;", "Festa \ufffd", id="lone-half"),
        pytest.param("Festa &#56832;&#55357;", "Festa \ufffd\ufffd", id="halves-reversed"),
        pytest.param("Festa &#1114112;", "Festa \ufffd", id="past-the-last-code-point"),
        pytest.param("Festa &#0;", "Festa \ufffd", id="zero"),
        pytest.param("Festa <![CDATA[&#55357;&#56832;]]>", "Festa \U0001f600", id="pair-in-cdata"),
        pytest.param("Festa &amp;#55357;&amp;#56832;", "Festa \U0001f600", id="pair-escaped-twice"),
        pytest.param("Festa \ud83d\ude00", "Festa \U0001f600", id="cesu-8-bytes-of-a-pair"),
        pytest.param("Festa \udc80", "Festa \ufffd", id="cesu-8-bytes-of-a-lone-half"),
    ],
)
def test_an_item_with_references_to_no_character_does_not_block_its_feed(first: str, expected: str) -> None:
    feed = parse_feed("esempio", _items_rss(first), url=FEED_URL, headers=HEADERS)
    assert [item.title for item in feed.items] == [expected, "Avviso 1", "Avviso 2", "Avviso 3"]
    assert feed.items[0].text == f"{expected} in piazza."


def test_a_latin1_feed_with_a_surrogate_pair_reference_keeps_its_accents() -> None:
    feed = parse_feed("esempio", _items_rss("Città in festa &#55357;&#56832;", encoding="iso-8859-1"),
                      url=FEED_URL, headers=HEADERS)
    assert feed.items[0].title == "Città in festa \U0001f600"
    assert len(feed.items) == 4


# --- links and bases -----------------------------------------------------------------------


def test_relative_links_resolve_against_xml_base_then_the_final_url() -> None:
    feed = _parse("atom_xml_base.xml", url="https://www.comune.esempio.it/rss/tutte/atom.xml")
    assert [item.link for item in feed.items] == [
        "https://www.comune.esempio.it/novita/bandi/contributi-associazioni?id=7",  # entry xml:base
        "https://archivio.esempio.it/delibere/2026.html",  # another entry's xml:base, with ".."
        "https://www.comune.esempio.it/rss/tutte/biblioteca/orari-estivi",  # no xml:base: the URL
    ]
    assert feed.items[0].image_url == "https://www.comune.esempio.it/novita/img/associazioni.png"
    assert feed.link == "https://www.comune.esempio.it/"


def test_final_url_is_the_base_whatever_content_location_says() -> None:
    # Behind a proxy the backend's Content-Location may be relative or name an internal host.
    for content_location in ("/interno/feed.xml", "http://127.0.0.1:8080/feed.xml"):
        feed = _parse(
            "atom_xml_base.xml",
            headers={"content-type": "application/atom+xml", "content-location": content_location},
        )
        assert feed.items[2].link == "https://www.comune.esempio.it/feed/biblioteca/orari-estivi"


def test_xml_base_wins_over_the_url_the_feed_was_fetched_from() -> None:
    # Plone's atom.xml declares xml:base; where the feed was fetched from does not matter.
    feed = _parse("plone_atom.xml", url="https://cdn.esempio.net/mirror/atom.xml")
    assert [item.link for item in feed.items] == [
        "https://www.comune.esempio.it/novita/notizie/richiamo-giocattolo",
        "https://www.comune.esempio.it/novita/notizie/risparmio-idrico-ordinanza",
    ]


def test_relative_enclosure_ignores_a_mangled_channel_link() -> None:
    # OpenCity glues its base URL to an absolute URL in <channel><link>; images must not
    # inherit that bogus host.
    feed = _parse("opencity_ocrss.xml")
    assert feed.items[1].image_url == "https://www.comune.esempio.it/var/opencity/storage/images/temporali.jpg"


def test_plone_item_without_link_takes_its_permalink_guid() -> None:
    feed = _parse("plone_rss20_no_item_link.xml")
    assert all(item.link == item.guid for item in feed.items)
    assert feed.items[0].link == "https://www.comune.esempio.it/novita/notizie/richiamo-giocattolo"


def test_links_that_must_not_be_posted_become_none() -> None:
    feed = _parse("javascript_link.xml")
    assert [item.link for item in feed.items] == [None, None, None, None]
    # The item keeps its other identities: it is still recognised on the next poll.
    assert all(len(item.keys) == 2 for item in feed.items)


def test_undated_items_are_kept_with_no_date() -> None:
    feed = _parse("undated.xml")
    assert len(feed.items) == 3
    assert [item.published for item in feed.items][:2] == [None, None]
    published = feed.items[2].published
    assert published is not None and published.utcoffset() is not None
    assert published.isoformat() == "2026-12-01T00:30:00+00:00"


def _rss_items(*items: str) -> bytes:
    return ("<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Comune</title>"
            "<link>https://www.comune.esempio.it/</link>" + "".join(f"<item>{i}</item>" for i in items)
            + "</channel></rss>").encode()


def test_a_guid_that_is_not_an_address_never_becomes_a_link() -> None:
    body = _rss_items(
        "<title>Solo guid</title><guid>12345</guid>",
        "<title>Guid relativo</title><guid>notizie/12345</guid>",
        "<title>Guid non permalink</title><guid isPermaLink='false'>https://www.comune.esempio.it/p/1</guid>",
        "<title>Niente</title>",
        "<title>Guid permalink</title><guid>https://www.comune.esempio.it/p/2</guid>",
        "<title>Link e guid</title><link>https://www.comune.esempio.it/p/3</link><guid>777</guid>",
        "<title>Guid poi link</title><guid>888</guid><link>/p/4</link>",
    )
    items = parse_feed("notizie", body, url=FEED_URL, headers=HEADERS).items
    assert [item.link for item in items] == [
        None, None, None, None,
        "https://www.comune.esempio.it/p/2",
        "https://www.comune.esempio.it/p/3",
        "https://www.comune.esempio.it/p/4",  # a <link> of its own is resolved as before
    ]
    assert [item.guid for item in items][:2] == ["12345", "notizie/12345"]  # as the feed wrote it
    reasons = [item.no_link_reason for item in items]
    assert reasons[0] == "the item has no link, and its guid (12345) is not an absolute http(s) address"
    assert "isPermaLink" in (reasons[2] or "") and reasons[3] == "the item has no link"
    assert reasons[4:] == [None, None, None]


def test_a_link_with_a_space_inside_is_kept_whole_for_the_guard_to_hold() -> None:
    body = _rss_items("<title>Avviso</title><link>https://www.comune.esempio.it/a https://evil.example/x</link>")
    (item,) = parse_feed("notizie", body, url=FEED_URL, headers=HEADERS).items
    assert item.link == "https://www.comune.esempio.it/a https://evil.example/x"  # never cut to a part
