"""The channel forms appended to bridge.render: Telegram HTML, Mastodon text, `fit`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servers.mastodon import graphemes, status_length

from bridge import render
from bridge.item import Alert

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "items-real.jsonl"

LINK = "https://www.comune.example.it/notizie/2026/03/01/chiusura-temporanea-di-via-roma-per-lavori?id=1&x=2"


def alert(title: str = "Titolo", summary: str = "Una frase.", link: str = LINK) -> Alert:
    return Alert(feed_id="f", feed_name="F", title=title, summary=summary, link=link)


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("Avviso", "Testo.", f"<b>Avviso</b>\n\nTesto.\n\n{LINK.replace('&', '&amp;')}"),
        ("A < B > C & D", "x<y & \"q\"", f"<b>A &lt; B &gt; C &amp; D</b>\n\nx&lt;y &amp; \"q\"\n\n"
                                          f"{LINK.replace('&', '&amp;')}"),
        ("<script>alert(1)</script>", "", f"<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>\n\n"
                                         f"{LINK.replace('&', '&amp;')}"),
        ("", "Solo testo.", f"Solo testo.\n\n{LINK.replace('&', '&amp;')}"),
        ("&amp; già", "", f"<b>&amp;amp; già</b>\n\n{LINK.replace('&', '&amp;')}"),
    ],
)
def test_telegram_escapes_and_bolds_the_title(title: str, summary: str, expected: str) -> None:
    assert render.telegram(alert(title, summary)) == expected


def test_mastodon_is_plain_when_it_fits() -> None:
    short = alert()
    assert render.mastodon(short) == render.plain(short)


@pytest.mark.parametrize("limit", [100, 200, 500, 1000])
def test_mastodon_fits_the_limit_keeping_the_link(limit: int) -> None:
    long = alert("Titolo dell'avviso", "Parole che continuano. " * 100)
    text = render.mastodon(long, limit)
    assert render.mastodon_length(text) <= limit
    assert status_length(text) <= limit  # as the fake instance counts, independently
    assert text.endswith("\n\n" + LINK)
    assert text.startswith("Titolo dell'avviso\n\nParole")
    assert "…" in text


def test_mastodon_counts_a_long_link_as_23() -> None:
    assert render.mastodon_length(f"abc {LINK}") == 4 + 23
    assert render.mastodon_length("abc") == 3


# (text, what Mastodon counts): its rules (app/validators/status_length_validator.rb and the URL
# and mention patterns it uses), worked out by hand.
MASTODON_COUNTS = [
    ("abc https://x.it def", 4 + 23 + 4),  # a short link costs 23 too
    ("https://www.comune.esempio.it/notizie/avviso-1.", 23 + 1),  # the final period is not the URL's
    ("(vedi https://a.it/x_(y))", 6 + 23 + 1),  # balanced parentheses belong to the URL, the last one not
    ("https://a.it/?q=1&b=2,", 23 + 1),
    ("HTTPS://WWW.COMUNE.IT/AVVISO", 23),
    ("https://a.it https://b.it/x", 23 + 1 + 23),
    ("https://https://a.it", 8 + 23),  # "https://" glued to nothing that is a domain stays text
    ("scrivere a ufficio@comune.esempio.it", 36),  # an address is neither a URL nor a mention
    ("segui @comune@mastodon.uno!", 6 + 7 + 1),  # a remote mention counts as "@comune"
    ("segui @comune", 13),
    ("@comune@mastodon.uno@x", 22),  # not a mention: what follows would be part of it
    ("https://a.it/@comune@mastodon.uno", 23),  # the URL wins over the mention inside it
    ("vedihttps://a.it", 16),  # glued to a word: not a URL
    ("http://192.168.1.10/albo", 24),  # no top-level domain: not shortened
    ("https://intranet/albo", 21),
    ("ftp://www.comune.esempio.it/file", 32),  # only the schemes Mastodon links
    ("https://www.comune.esempio.it/" + "a" * 5000, 30 + 5000),  # over 4096: counted in full
]


@pytest.mark.parametrize(("text", "counted"), MASTODON_COUNTS)
def test_mastodon_counts_as_mastodon_does(text: str, counted: int) -> None:
    assert render.mastodon_length(text) == counted


@pytest.mark.parametrize("text", ["caffe\u0301 al bar", "festa 👨\u200d👩\u200d👧 in piazza", "🇮🇹 Italia"])
def test_mastodon_never_counts_fewer_than_mastodons_graphemes(text: str) -> None:
    # Mastodon counts grapheme clusters; code points are never fewer.
    assert render.mastodon_length(text) == len(text) >= status_length(text)


@pytest.mark.parametrize(("text", "_"), MASTODON_COUNTS)
def test_the_strict_count_bounds_mastodon_and_every_character(text: str, _: int) -> None:
    strict = render.mastodon_length(text, strict=True)
    assert strict >= render.mastodon_length(text)
    assert strict >= status_length(text, url_length=None)  # a server that counts every character
    assert strict == len(text) + 13 * text.count("://")


def test_a_short_link_makes_the_mastodon_form_shorter_than_its_length() -> None:
    short = alert("Titolo", "parola " * 100, "https://c.it/x")  # 14 characters, counted 23
    text = render.mastodon(short, 500)
    assert render.mastodon_length(text) <= 500 and status_length(text) <= 500
    assert len(text) <= 500 - (23 - 14)


def test_a_long_link_leaves_room_for_more_text() -> None:
    long = alert("Titolo", "parola " * 100, LINK)  # 101 characters, counted 23
    text = render.mastodon(long, 500)
    assert 500 - 7 < render.mastodon_length(text) <= 500
    assert len(text) > 500 + (len(LINK) - 23) - 7  # the room a long link saves goes to the summary


def test_the_strict_form_fits_every_way_of_counting() -> None:
    long = alert("Titolo", "parola " * 100, LINK)
    text = render.mastodon(long, 500, strict=True)
    assert len(text) <= 500 and render.mastodon_length(text, strict=True) <= 500
    assert text.endswith("\n\n" + LINK)


def test_the_default_mastodon_limit_is_500() -> None:
    long = alert("Titolo", "parola " * 200, "https://c.it/x")
    assert render.mastodon(long) == render.mastodon(long, 500) == render.mastodon(long, None)
    assert render.MASTODON_LIMIT == 500


def test_mastodon_fits_every_real_alert_as_mastodon_counts() -> None:
    """Over the real corpus (../shared, never copied here): no status the bridge fits is over
    the limit as the fake instance counts, and the two counts agree on every one."""
    if not CORPUS.exists():
        pytest.skip(f"the corpus is not beside the repository ({CORPUS})")
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) > 1000
    for row in rows:
        item = alert(row.get("title") or "", row.get("lead_text") or "", row.get("link") or "")
        for limit in (160, 500):
            text = render.mastodon(item, limit)
            assert status_length(text) <= limit, text
            # The same count, but for the code points an emoji or an accent adds to a grapheme.
            assert render.mastodon_length(text) - status_length(text) == len(text) - graphemes(text), text


def test_fit_cuts_at_a_word_boundary_and_drops_trailing_punctuation() -> None:
    long = alert(summary="Uno, due, tre, quattro, cinque, sei, sette, otto, nove, dieci.", link="https://c.it/x")
    fitted = render.fit(long, 40)
    assert len(render.plain(fitted)) <= 40
    assert fitted.summary.endswith("…")
    assert not fitted.summary.endswith(",…")
    assert fitted.summary[:-1] in long.summary
    assert fitted.link == long.link and fitted.title == long.title


def test_fit_drops_the_summary_then_cuts_the_title() -> None:
    long = alert(title="Un titolo molto lungo di parecchie parole", summary="Testo.", link="https://c.it/x")
    fitted = render.fit(long, 30)
    assert fitted.summary == ""
    assert fitted.title.endswith("…")
    assert len(render.plain(fitted)) <= 30


def test_fit_keeps_only_the_link_when_nothing_else_fits() -> None:
    fitted = render.fit(alert(), len(LINK))
    assert render.plain(fitted) == LINK


def test_fit_returns_the_same_alert_when_it_fits() -> None:
    short = alert()
    assert render.fit(short, 10_000) is short


def test_fit_uses_the_given_measure() -> None:
    long = alert(summary="parola " * 100, link="https://c.it/x")
    fitted = render.fit(long, 200, lambda a: len(render.whatsapp(a)))
    assert len(render.whatsapp(fitted)) <= 200
    assert len(render.whatsapp(fitted)) > 180  # as little cut as possible


def test_fit_is_deterministic() -> None:
    long = alert(summary="parola " * 100)
    assert render.fit(long, 300) == render.fit(long, 300)
