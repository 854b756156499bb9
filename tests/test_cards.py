"""The image card of an alert (bridge/cards): golden pictures, and what the card says.

The golden pictures are in tests/fixtures/cards/, at half the card's size (each pixel the mean
of four): a card matches when its pixels differ from the golden's by little on average and few
differ much, so a new FreeType's antialiasing passes and a changed word, band or crest does not.
After a deliberate change of the card's look, write them anew and look at them:

    CARDS_GOLDEN=write .venv/bin/python -m pytest -q tests/test_cards.py
"""

from __future__ import annotations

import dataclasses
import io
import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageChops, ImageStat

from bridge.cards import (
    BLACK,
    BOLD,
    PAPER,
    REGULAR,
    SIZES,
    URGENT_TEXT,
    CardStyle,
    alt_text,
    band_colour,
    contrast,
    draw_card,
    drawable,
    fit_text,
    font_characters,
    layout_card,
    load_style,
    text_colour,
    wants_card,
)
from bridge.config import CardSettings
from bridge.item import Alert

FIXTURES = Path(__file__).parent / "fixtures" / "cards"
CREST = FIXTURES / "stemma.png"
ROME = ZoneInfo("Europe/Rome")
# A golden matches when the mean difference over all pixels and channels is at most this (0-255)...
MEAN_TOLERANCE = 1.0
# ...and at most this share of the pixels differ by more than DIFFERENT in any channel.
SHARE_TOLERANCE = 0.002
DIFFERENT = 64

PUBLISHED = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 2 dicembre in Rome
STYLE = load_style(CardSettings(crest=CREST, name="Comune di Esempio",
                                colours={"protezione civile": "#b71c1c", "scuola": "#ffb300"}))


def alert(title: str = "Raccolta dei rifiuti: nuovo calendario dal 1° gennaio", *, urgent: bool = False,
          summary: str = "Il calendario della raccolta porta a porta cambia per tutti i quartieri.",
          categories: tuple[str, ...] = (), published: datetime | None = PUBLISHED,
          feed_id: str = "notizie") -> Alert:
    return Alert(feed_id=feed_id, feed_name="Notizie dal Comune", title=title, summary=summary,
                 link="https://www.comune.esempio.it/notizie/1", published=published, urgent=urgent,
                 categories=categories)


LONG = ("Avviso pubblico per la concessione di contributi economici a sostegno delle famiglie con figli "
        "iscritti ai servizi educativi per la prima infanzia e alle scuole dell'infanzia paritarie del "
        "territorio comunale per l'anno educativo 2026/2027, con scadenza per la presentazione delle domande "
        "fissata al trentuno gennaio e modalità di rendicontazione delle spese sostenute entro giugno")
CAPS = "ORDINANZA DI CHIUSURA DELLE SCUOLE DI OGNI ORDINE E GRADO PER ALLERTA METEO ROSSA"
ACCENTS = "Perché è già lì: Città, Università e Comunità — «Sì» all’unità di Forlì e Cantù"
EMOJI = "Festa di Natale in piazza 🎄 con il coro dei bambini 👧🏽 e la banda 🎺"

# name -> (alert, size)
GOLDEN = {
    "normale-link": (alert(), "link"),
    "normale-quadrata": (alert(), "square"),
    "titolo-lungo-link": (alert(LONG), "link"),
    "titolo-lungo-quadrata": (alert(LONG), "square"),
    "maiuscole-link": (alert(CAPS, categories=("Scuola",)), "link"),
    "accenti-quadrata": (alert(ACCENTS), "square"),
    "emoji-link": (alert(EMOJI), "link"),
    "urgente-quadrata": (alert("Allerta meteo rossa: chiusi i parchi e i cimiteri", urgent=True,
                               categories=("Protezione civile",)), "square"),
}


def reduced(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").reduce(2)


def difference(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    """The mean difference over pixels and channels, and the share of pixels that differ by more
    than DIFFERENT in a channel."""
    diff = ImageChops.difference(a, b)
    mean = sum(ImageStat.Stat(diff).mean) / 3
    red, green, blue = diff.split()
    largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)  # each pixel's largest difference
    strong = largest.point(lambda value: 255 if value > DIFFERENT else 0)
    return mean, ImageStat.Stat(strong).mean[0] / 255


def assert_like_golden(png: bytes, name: str) -> None:
    path = FIXTURES / f"{name}.png"
    picture = reduced(png)
    if os.environ.get("CARDS_GOLDEN") == "write":
        picture.save(path, optimize=True)
    assert path.exists(), f"no golden {path}: write it with CARDS_GOLDEN=write (and look at it)"
    with Image.open(path) as golden:
        assert golden.size == picture.size
        mean, share = difference(picture, golden.convert("RGB"))
    assert mean <= MEAN_TOLERANCE and share <= SHARE_TOLERANCE, (
        f"{name}: mean difference {mean:.2f}, {share:.2%} of the pixels differ (write the golden anew "
        "with CARDS_GOLDEN=write only if the change is meant)")


@pytest.mark.parametrize("name", list(GOLDEN))
def test_card_matches_its_golden(name: str) -> None:
    item, size = GOLDEN[name]
    png = draw_card(item, size=size, style=STYLE, tz=ROME)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == SIZES[size]
    assert_like_golden(png, name)


def test_the_comparison_tells_a_changed_card_from_its_golden() -> None:
    """The tolerance lets antialiasing through, not a changed word, band or crest."""
    changed = {
        "a word": alert("Raccolta dei rifiuti: nuovo calendario dal 2 gennaio"),
        "the urgent band": alert(urgent=True),
        "the category colour": alert(categories=("Protezione civile",)),
        "the date": alert(published=datetime(2026, 12, 3, 12, tzinfo=UTC)),
    }
    golden = reduced((FIXTURES / "normale-link.png").read_bytes())
    for what, item in changed.items():
        mean, share = difference(reduced(draw_card(item, size="link", style=STYLE, tz=ROME)), golden)
        assert mean > MEAN_TOLERANCE or share > SHARE_TOLERANCE, what
    without_crest = CardStyle(name="Comune di Esempio")
    mean, share = difference(reduced(draw_card(alert(), size="link", style=without_crest, tz=ROME)), golden)
    assert mean > MEAN_TOLERANCE or share > SHARE_TOLERANCE


def test_a_card_is_the_same_picture_every_time() -> None:
    assert draw_card(alert(LONG), style=STYLE, tz=ROME) == draw_card(alert(LONG), style=STYLE, tz=ROME)


# ---------------------------------------------------------------------------
# What the card says


def words_of(*texts: str) -> set[str]:
    return {word for text in texts for word in text.split()}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("title", [alert().title, LONG, CAPS, ACCENTS, EMOJI, "x" * 120, LONG.upper()])
def test_the_card_says_nothing_the_alert_does_not(size: str, title: str) -> None:
    """Every word on the card is the comune's name, the urgent band, a whole word of the title
    (the last one may carry "…") or the alert's date."""
    item = alert(title, urgent=True)
    card = layout_card(item, size=size, style=STYLE, tz=ROME)  # type: ignore[arg-type]
    allowed = words_of("Comune di Esempio", URGENT_TEXT, drawable(title), "2 dicembre 2026")
    shown = words_of(*card.lines())
    last = card.title.lines[-1].split()[-1] if card.title else ""
    assert shown - allowed <= ({last} if last.endswith("…") else set()), shown - allowed
    assert card.date == "2 dicembre 2026"


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("title", [LONG, CAPS, LONG.upper(), ACCENTS])
def test_the_title_is_wrapped_between_words_inside_the_card(size: str, title: str) -> None:
    card = layout_card(alert(title), size=size, style=STYLE, tz=ROME)  # type: ignore[arg-type]
    assert card.title is not None
    width, _ = SIZES[size]
    left, top = card.title_at
    for line in card.title.lines:
        assert left + card.title.font.getlength(line) <= width - left, line
    ascent, descent = card.title.font.getmetrics()
    title_bottom = top + card.title.leading * (len(card.title.lines) - 1) + ascent + descent
    date_top = card.date_at[1] - card.date_font.getmetrics()[0]
    assert title_bottom <= date_top
    # The words in their order, none cut: the whole title, or its first words and "…".
    shown = " ".join(card.title.lines).split()
    words = drawable(title).split()
    if shown[-1].endswith("…"):
        assert shown[:-1] == words[:len(shown) - 1]
        assert words[len(shown) - 1].startswith(shown[-1][:-1].rstrip(",;:.-–—"))
        assert shown[-1][:-1] == words[len(shown) - 1].rstrip(",;:.-–—")
    else:
        assert shown == words


def test_a_long_title_is_set_smaller_and_a_longer_one_ends_at_a_word_with_an_ellipsis() -> None:
    short = layout_card(alert("Mercato sospeso"), size="link", style=STYLE).title
    long = layout_card(alert(LONG[:160]), size="link", style=STYLE).title
    longest = layout_card(alert(f"{LONG}, {LONG}"), size="link", style=STYLE).title
    assert short is not None and long is not None and longest is not None
    assert short.font.size > long.font.size >= longest.font.size
    assert not " ".join(long.lines).endswith("…")
    assert " ".join(longest.lines).endswith("…")


def test_a_title_of_thousands_of_words_ends_at_a_word_all_the_same() -> None:
    card = layout_card(alert("parola " * 5000), size="square", style=STYLE)
    assert card.title is not None
    shown = " ".join(card.title.lines).split()
    assert shown[-1] == "parola…" and set(shown[:-1]) == {"parola"}


def test_a_word_wider_than_the_card_is_set_smaller_never_cut() -> None:
    word = "Precipitevolissimevolmente" * 3
    block = fit_text(word, BOLD, 600, 200, (60, 40))
    assert block.lines == (word,)
    assert block.font.getlength(word) <= 600


@pytest.mark.parametrize(("text", "shown"), [
    ("Festa 🎄 in piazza", "Festa in piazza"),
    ("Vaccini 👩🏽‍⚕️ in farmacia", "Vaccini in farmacia"),
    ("🚨 Allerta 🚨", "Allerta"),
    ("Numero 1️⃣ e ✔️ fatto", "Numero 1 e fatto"),
    ("Città, perché e così: È già più", "Città, perché e così: È già più"),
    ("Cafe\u0301 e citta\u0300", "Café e città"),  # decomposed accents, composed for the font
    ("Sì «virgolette» “curve” – trattino … €", "Sì «virgolette» “curve” – trattino … €"),
])
def test_what_the_font_cannot_draw_is_left_out_never_a_box(text: str, shown: str) -> None:
    assert drawable(text) == shown
    chars = font_characters(BOLD)
    assert all(ord(c) in chars for c in drawable(text) if c != " ")


def test_an_emoji_leaves_no_mark_on_the_card() -> None:
    """The card of a title with emoji is, pixel for pixel, the card of the title without them."""
    with_emoji = draw_card(alert("Festa 🎄 in piazza 🎺"), style=STYLE, tz=ROME)
    assert with_emoji == draw_card(alert("Festa in piazza"), style=STYLE, tz=ROME)


def test_the_font_has_the_letters_of_italian() -> None:
    for path in (REGULAR, BOLD):
        chars = font_characters(path)
        assert all(ord(c) in chars for c in "àèéìíòóùÀÈÉÌÒÙ’«»“”–—…€°")
        assert 0x1F384 not in chars  # 🎄


def test_an_undated_alert_has_no_date_on_its_card() -> None:
    card = layout_card(alert(published=None), style=STYLE)
    assert card.date == ""
    assert "dicembre" not in " ".join(card.lines())


def test_the_date_is_told_in_rome() -> None:
    assert layout_card(alert(), style=STYLE, tz=ROME).date == "2 dicembre 2026"
    assert layout_card(alert(), style=STYLE, tz=ZoneInfo("UTC")).date == "1 dicembre 2026"


def test_without_a_name_the_card_shows_the_feed_name() -> None:
    card = layout_card(alert(), style=CardStyle())
    assert card.name is not None and card.name.lines == ("Notizie dal Comune",)


def test_an_unknown_size_is_refused() -> None:
    with pytest.raises(KeyError):
        draw_card(alert(), size="banner")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Colours


def test_the_band_colour_follows_the_category_then_the_feed_then_the_default() -> None:
    style = CardStyle(colours={"protezione civile": "#b71c1c", "eventi": "#2e7d32", "scuol": "#ffb300"},
                      default_colour="#0066cc")
    assert band_colour(alert(categories=("Protezione Civile",)), style) == "#b71c1c"
    assert band_colour(alert(categories=("Scuole e istruzione",)), style) == "#ffb300"
    assert band_colour(alert(feed_id="eventi"), style) == "#2e7d32"
    assert band_colour(alert(categories=("Scuola", "Protezione civile")), style) == "#b71c1c"  # config order
    assert band_colour(alert(categories=("Sport",)), style) == "#0066cc"


@pytest.mark.parametrize("colour", ["#0066cc", "#ffb300", "#ffffff", "#000000", "#777777", "#b71c1c",
                                    "#2e7d32", "#00bcd4", "#ff00ff", "#808000"])
def test_the_text_on_a_band_is_the_colour_that_reads_best(colour: str) -> None:
    rgb = (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))
    ink = text_colour(rgb)
    other = BLACK if ink == PAPER else PAPER
    assert contrast(ink, rgb) >= contrast(other, rgb)
    assert contrast(ink, rgb) >= 4.5  # WCAG AA for text on every band


def test_text_on_a_light_band_is_dark_and_on_a_dark_band_white() -> None:
    assert text_colour((255, 179, 0)) == BLACK
    assert text_colour((0, 102, 204)) == PAPER
    assert round(contrast(PAPER, (0, 0, 0)), 1) == 21.0


# ---------------------------------------------------------------------------
# Alt text


def test_alt_text_is_the_title_and_the_summary() -> None:
    assert alt_text(alert()) == ("Raccolta dei rifiuti: nuovo calendario dal 1° gennaio. "
                                 "Il calendario della raccolta porta a porta cambia per tutti i quartieri.")


def test_alt_text_of_an_urgent_alert_says_so_as_its_band_does() -> None:
    text = alt_text(alert("Allerta meteo rossa", urgent=True, summary="Chiusi i parchi."))
    assert text == "Avviso urgente. Allerta meteo rossa. Chiusi i parchi."


@pytest.mark.parametrize(("title", "summary", "expected"), [
    ("Mercato sospeso", "", "Mercato sospeso"),
    ("Mercato sospeso!", "Riprende lunedì.", "Mercato sospeso! Riprende lunedì."),
    ("Mercato sospeso", "Mercato sospeso", "Mercato sospeso"),
    ("Festa 🎄  in\npiazza", "Con il coro.", "Festa 🎄 in piazza. Con il coro."),
])
def test_alt_text_adds_only_the_stops_between_title_and_summary(title: str, summary: str, expected: str) -> None:
    assert alt_text(alert(title, summary=summary)) == expected


def test_alt_text_of_an_endless_title_ends_at_a_word() -> None:
    text = alt_text(alert("parola " * 400, summary=""))
    assert len(text) <= 1000 and text.endswith("parola…")
    assert set(text[:-1].split()) == {"parola"}


# ---------------------------------------------------------------------------
# When a card goes with the alert


@pytest.mark.parametrize(("mode", "image", "expected"), [
    ("auto", None, True), ("auto", "https://www.comune.esempio.it/foto.jpg", False),
    ("always", None, True), ("always", "https://www.comune.esempio.it/foto.jpg", True),
    ("never", None, False), ("never", "https://www.comune.esempio.it/foto.jpg", False),
])
def test_a_card_goes_when_the_channel_wants_one(mode: str, image: str | None, expected: bool) -> None:
    item = dataclasses.replace(alert(), image_url=image)
    assert wants_card(mode, item) is expected  # type: ignore[arg-type]
