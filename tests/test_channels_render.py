"""The channel forms appended to bridge.render: Telegram HTML, Mastodon text, `fit`."""

from __future__ import annotations

import pytest

from bridge import render
from bridge.item import Alert

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
    assert render.mastodon_length(text, LINK) <= limit
    assert text.endswith("\n\n" + LINK)
    assert text.startswith("Titolo dell'avviso\n\nParole")
    assert "…" in text


def test_mastodon_counts_a_long_link_as_23() -> None:
    text = f"abc {LINK}"
    assert render.mastodon_length(text, LINK) == 4 + 23
    assert render.mastodon_length("abc", "https://x.it") == 3


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
