"""The image card of an alert ("scheda avviso"): a picture for the platforms that want one.

`draw_card(alert, size=..., style=..., tz=...)` returns a PNG: on top the comune's name and
crest on the band of the alert's category colour, under it "AVVISO URGENTE" on a red band for
an urgent alert, then the title, wrapped between words (smaller for a long title, and ended by
"…" after a whole word when even the smallest size cannot hold it), and the alert's date. It
says nothing the alert does not: no summary, no date made up for an undated alert, and a
character the font cannot draw (an emoji) is left out rather than drawn as an empty box.
`alt_text(alert)` is the picture's description for the platforms that take one.

Pure but for `load_style`, which reads the crest file named by `[cards]`. The typeface is
Titillium Web (SIL Open Font License 1.1, the typeface of Designers Italia), shipped in
bridge/cards/fonts/ with its licence; Pillow draws with its basic layout (FreeType's own kerning),
so a card is the same picture wherever it is drawn.
"""

from __future__ import annotations

import io
import re
import struct
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from bridge.config import DEFAULT_CARD_COLOUR, CardMode, CardSettings
from bridge.item import Alert
from bridge.template import italian_date

FONTS = Path(__file__).parent / "fonts"
REGULAR = FONTS / "TitilliumWeb-Regular.ttf"
BOLD = FONTS / "TitilliumWeb-Bold.ttf"

CardSize = Literal["square", "link"]
# What each platform shows best: a square post (Instagram), a link card (Facebook, Bluesky).
SIZES: Mapping[str, tuple[int, int]] = {"square": (1080, 1080), "link": (1200, 630)}

URGENT_TEXT = "AVVISO URGENTE"
URGENT_COLOUR = "#b00020"  # white on it has a contrast of 7:1
PAPER = (255, 255, 255)
INK = (26, 26, 26)  # the title on white: 17:1
BLACK = (0, 0, 0)  # text on a light band
GREY = (77, 77, 77)  # the date on white: 8:1
ELLIPSIS = "…"
# Crests larger than this are refused: a crest is a small emblem, not a photograph.
MAX_CREST_PIXELS = 4096 * 4096


class CrestError(ValueError):
    """The crest file of `[cards]` is missing or not an image; the message says which and where."""


@dataclass(frozen=True, slots=True)
class CardStyle:
    """The look of every card of an instance: `[cards]` with its crest read (None: no crest)."""

    name: str | None = None
    crest: Image.Image | None = None
    colours: Mapping[str, str] = field(default_factory=dict)
    default_colour: str = DEFAULT_CARD_COLOUR


@dataclass(frozen=True, slots=True)
class _Layout:
    """Measures of one size, in pixels."""

    margin: int
    header: int  # the band with the name and the crest
    name_size: tuple[int, int]  # the largest and smallest size of the comune's name
    urgent: int  # the urgent band
    urgent_size: int
    title_size: tuple[int, int]  # the title's largest and smallest size
    date_size: int
    strip: int  # the band colour's strip along the bottom edge


_LAYOUTS = {
    "square": _Layout(margin=72, header=200, name_size=(54, 32), urgent=96, urgent_size=50,
                      title_size=(92, 44), date_size=40, strip=18),
    "link": _Layout(margin=56, header=132, name_size=(44, 28), urgent=68, urgent_size=38,
                    title_size=(68, 34), date_size=32, strip=14),
}


# ---------------------------------------------------------------------------
# The style: `[cards]` and its crest


def open_crest(path: Path, written: str | None = None) -> Image.Image:
    """The crest image at `path`, read whole (RGBA). Raise `CrestError` saying what is wrong with
    the file, named as the config writes it (`written`) and with the folder it was looked in."""
    shown = f'"{written or path.name}"'
    if not path.exists():
        raise CrestError(f"{shown} does not exist (looked in {path.parent}/)")
    if not path.is_file():
        raise CrestError(f"{shown} is not a file ({path})")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_CREST_PIXELS:
                raise CrestError(f"{shown} is {image.width}×{image.height} pixels: give a crest of at most "
                                 "a few hundred pixels a side")
            image.load()
            return image.convert("RGBA")
    except UnidentifiedImageError:
        raise CrestError(f"{shown} is not an image (a PNG, JPEG or WebP file is expected; {path})") from None
    except OSError as exc:
        raise CrestError(f"{shown} cannot be read as an image: {exc} ({path})") from None
    except Image.DecompressionBombError:
        raise CrestError(f"{shown} is too large an image: give a crest of a few hundred pixels a side") from None


def crest_problem(settings: CardSettings) -> str | None:
    """What is wrong with the crest `settings` name, for `check`; None when it is a readable
    image or when there is no crest."""
    if settings.crest is None:
        return None
    try:
        open_crest(settings.crest, settings.crest_text)
    except CrestError as exc:
        return str(exc)
    return None


def load_style(settings: CardSettings) -> CardStyle:
    """The cards' style from `[cards]`, its crest read. Raise `CrestError` when the crest is
    missing or not an image."""
    crest = open_crest(settings.crest, settings.crest_text) if settings.crest is not None else None
    return CardStyle(name=settings.name, crest=crest, colours=settings.colours,
                     default_colour=settings.default_colour)


def band_colour(alert: Alert, style: CardStyle) -> str:
    """The alert's colour: the first `colours` key (in the config's order) that is the alert's
    feed id or occurs, case-insensitively, in one of its categories; else the default."""
    categories = [category.casefold() for category in alert.categories]
    for key, colour in style.colours.items():
        if key == alert.feed_id.casefold() or any(key in category for category in categories):
            return colour
    return style.default_colour


# ---------------------------------------------------------------------------
# Colours


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2 relative luminance."""
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio of two colours, from 1 to 21."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """White or black, whichever reads better on `background`: one of them always has a contrast
    of at least 4.58 (WCAG AA for text is 4.5), whatever the band's colour."""
    return max((PAPER, BLACK), key=lambda ink: contrast(ink, background))


# ---------------------------------------------------------------------------
# Text the font can draw


@cache
def font_characters(path: Path) -> frozenset[int]:
    """The code points the TrueType font at `path` has glyphs for (its Unicode cmap)."""
    data = path.read_bytes()
    count = struct.unpack_from(">H", data, 4)[0]
    tables = {}
    for index in range(count):
        tag, _, offset, _ = struct.unpack_from(">4sIII", data, 12 + 16 * index)
        tables[tag] = offset
    cmap = tables[b"cmap"]
    subtables = struct.unpack_from(">H", data, cmap + 2)[0]
    chars: set[int] = set()
    for index in range(subtables):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * index)
        if (platform, encoding) not in ((3, 1), (3, 10), (0, 3), (0, 4)):
            continue
        start = cmap + offset
        form = struct.unpack_from(">H", data, start)[0]
        if form == 4:
            segments = struct.unpack_from(">H", data, start + 6)[0] // 2
            ends = struct.unpack_from(f">{segments}H", data, start + 14)
            starts = struct.unpack_from(f">{segments}H", data, start + 16 + 2 * segments)
            deltas = struct.unpack_from(f">{segments}h", data, start + 16 + 4 * segments)
            range_at = start + 16 + 6 * segments
            offsets = struct.unpack_from(f">{segments}H", data, range_at)
            for seg, (first, last) in enumerate(zip(starts, ends, strict=True)):
                for char in range(first, last + 1):
                    if char == 0xFFFF:
                        continue
                    if offsets[seg] == 0:
                        glyph = (char + deltas[seg]) & 0xFFFF
                    else:
                        at = range_at + 2 * seg + offsets[seg] + 2 * (char - first)
                        glyph = struct.unpack_from(">H", data, at)[0]
                        glyph = (glyph + deltas[seg]) & 0xFFFF if glyph else 0
                    if glyph:
                        chars.add(char)
        elif form == 12:
            groups = struct.unpack_from(">I", data, start + 12)[0]
            for group in range(groups):
                first, last, glyph = struct.unpack_from(">III", data, start + 16 + 12 * group)
                chars.update(range(first if glyph else first + 1, last + 1))
    return frozenset(chars)


def drawable(text: str, font: Path = BOLD) -> str:
    """`text` as the card can draw it in `font`: composed (NFC), every run of white space one
    space, every character without a glyph (an emoji, its modifiers and joiners) left out."""
    chars = font_characters(font)
    kept = "".join(" " if c.isspace() else c for c in unicodedata.normalize("NFC", text)
                   if c.isspace() or ord(c) in chars)
    return " ".join(kept.split())


# ---------------------------------------------------------------------------
# Wrapping


@cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)


def wrap(words: Sequence[str], font: ImageFont.FreeTypeFont, width: float, limit: int | None = None) -> list[str]:
    """`words` in lines no wider than `width` in `font`, each line as many whole words as fit; a
    word wider than `width` alone has a line of its own (and is too wide: see `_fits`). With
    `limit`, only the first `limit` lines (so a title of thousands of words costs no more than
    one that fills the card)."""
    lines: list[str] = []
    line = ""
    for word in words:
        candidate = f"{line} {word}" if line else word
        if not line or font.getlength(candidate) <= width:
            line = candidate
        else:
            lines.append(line)
            if limit is not None and len(lines) >= limit:
                return lines
            line = word
    if line:
        lines.append(line)
    return lines


def _fits(lines: Iterable[str], font: ImageFont.FreeTypeFont, width: float) -> bool:
    return all(font.getlength(line) <= width for line in lines)


def _ellipsised(words: Sequence[str], font: ImageFont.FreeTypeFont, width: float, max_lines: int,
                lines: Sequence[str]) -> list[str]:
    """The most leading whole words that fit in `max_lines` lines with "…" after the last;
    `lines` are all the words wrapped, so no more words than their first `max_lines` hold."""
    most = min(len(words) - 1, sum(len(line.split()) for line in lines[:max_lines]))
    for count in range(most, 0, -1):
        kept = [*words[:count - 1], words[count - 1].rstrip(",;:.-–—") + ELLIPSIS]
        lines = wrap(kept, font, width, max_lines + 1)
        if len(lines) <= max_lines and _fits(lines, font, width):
            return lines
    return [words[0] + ELLIPSIS] if words else []


@dataclass(frozen=True, slots=True)
class Block:
    """Lines of text set in one font, `leading` pixels from one baseline to the next."""

    lines: tuple[str, ...]
    font: ImageFont.FreeTypeFont
    leading: int


def fit_text(text: str, path: Path, width: float, height: float, sizes: tuple[int, int], *,
             line_height: float = 1.16, max_lines: int | None = None) -> Block:
    """`text` wrapped between words in the largest size from `sizes` (largest, smallest) whose
    lines fit `width` and `height` (and `max_lines`); at the smallest size, the leading whole
    words that fit, ended by "…". A single word wider than `width` even at the smallest size is
    set smaller still, so no word is ever cut."""
    words = text.split()
    largest, smallest = sizes
    for size in range(largest, smallest - 1, -2):
        font = _font(path, size)
        leading = round(size * line_height)
        room = int(height // leading) if max_lines is None else min(max_lines, int(height // leading))
        lines = wrap(words, font, width, room + 1)
        if len(lines) <= room and _fits(lines, font, width):
            return Block(tuple(lines), font, leading)
    font = _font(path, smallest)
    leading = round(smallest * line_height)
    room = max(1, int(height // leading) if max_lines is None else min(max_lines, int(height // leading)))
    lines = wrap(words, font, width, room + 1)
    if len(lines) > room:
        lines = _ellipsised(words, font, width, room, lines)
    while not _fits(lines, font, width) and font.size > 8:  # a word longer than a whole line
        font = _font(path, font.size - 2)
    return Block(tuple(lines), font, leading)


# ---------------------------------------------------------------------------
# The card


def _crest_pad(tile: int) -> int:
    return max(6, tile // 16)


def _paste_crest(canvas: Image.Image, crest: Image.Image, box: tuple[int, int, int, int]) -> None:
    """Draw `crest` on a white tile filling `box` (left, top, right, bottom), its proportions kept."""
    left, top, right, bottom = box
    pad = _crest_pad(bottom - top)
    scale = min((right - left - 2 * pad) / crest.width, (bottom - top - 2 * pad) / crest.height)
    shown = crest.resize((max(1, round(crest.width * scale)), max(1, round(crest.height * scale))),
                         Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(canvas)
    draw.rounded_rectangle(box, radius=pad * 2, fill=PAPER)
    canvas.alpha_composite(shown, (left + (right - left - shown.width) // 2, top + (bottom - top - shown.height) // 2))


def _draw_block(draw: ImageDraw.ImageDraw, block: Block, left: int, top: int, fill: tuple[int, int, int]) -> int:
    """Draw `block` from `top` (its first line's ascender); return the bottom of its last line."""
    ascent, descent = block.font.getmetrics()
    y = top
    for line in block.lines:
        draw.text((left, y + ascent), line, font=block.font, fill=fill, anchor="ls")
        y += block.leading
    return y - block.leading + ascent + descent


@dataclass(frozen=True, slots=True)
class CardLayout:
    """What a card shows and where: `draw_card` paints it, tests read its words."""

    size: tuple[int, int]
    band: tuple[int, int, int]
    header: int  # the band's height
    crest_box: tuple[int, int, int, int] | None  # the crest's tile: left, top, right, bottom
    name: Block | None
    name_at: tuple[int, int]
    urgent: tuple[int, int] | None  # the urgent band's top and bottom
    urgent_font: ImageFont.FreeTypeFont
    title: Block | None
    title_at: tuple[int, int]
    date: str
    date_at: tuple[int, int]  # the date's baseline, left
    date_font: ImageFont.FreeTypeFont
    strip: int  # the bottom strip's top

    def lines(self) -> tuple[str, ...]:
        """Every line of text on the card, top to bottom."""
        return (*(self.name.lines if self.name else ()), *((URGENT_TEXT,) if self.urgent else ()),
                *(self.title.lines if self.title else ()), *((self.date,) if self.date else ()))


def _block_height(block: Block) -> int:
    ascent, descent = block.font.getmetrics()
    return block.leading * (len(block.lines) - 1) + ascent + descent


def layout_card(alert: Alert, *, size: CardSize = "link", style: CardStyle | None = None,
                tz: ZoneInfo | None = None) -> CardLayout:
    """Where each part of the alert's card goes; see `draw_card`. Raise KeyError for an
    unknown size."""
    style = style or CardStyle()
    width, height = SIZES[size]
    layout = _LAYOUTS[size]
    margin = layout.margin
    inset = layout.header // 7

    # The comune: its crest and name on the category's band.
    text_left = margin
    crest_box = None
    if style.crest is not None:
        tile = layout.header - 2 * inset
        pad = _crest_pad(tile)
        inner = tile - 2 * pad  # a crest is at most twice as wide as it is high on the card
        crest_width = max(1, min(inner * 2, round(inner * style.crest.width / style.crest.height)))
        crest_box = (margin, inset, margin + crest_width + 2 * pad, layout.header - inset)
        text_left = crest_box[2] + margin // 2
    name_text = drawable(style.name or alert.feed_name)
    name = name_at = None
    if name_text:
        name = fit_text(name_text, BOLD, width - margin - text_left, layout.header - 2 * inset, layout.name_size,
                        line_height=1.1, max_lines=2)
        name_at = (text_left, (layout.header - _block_height(name)) // 2)
    top = layout.header
    urgent = None
    if alert.urgent:
        urgent = (top, top + layout.urgent)
        top += layout.urgent

    # The date above the band's strip along the bottom edge, the title in the room between.
    strip = height - layout.strip
    date = drawable(italian_date(alert.published, tz), REGULAR)
    date_at = (margin, strip - margin * 2 // 3)
    bottom = date_at[1] - layout.date_size - margin // 3 if date else date_at[1]
    title_text = drawable(alert.title)
    title = None
    title_at = (margin, top + margin * 2 // 3)
    if title_text:
        title = fit_text(title_text, BOLD, width - 2 * margin, bottom - title_at[1], layout.title_size)
    return CardLayout(size=(width, height), band=_rgb(band_colour(alert, style)), header=layout.header,
                      crest_box=crest_box, name=name, name_at=name_at or (0, 0), urgent=urgent,
                      urgent_font=_font(BOLD, layout.urgent_size), title=title, title_at=title_at, date=date,
                      date_at=date_at, date_font=_font(REGULAR, layout.date_size), strip=strip)


def draw_card(alert: Alert, *, size: CardSize = "link", style: CardStyle | None = None,
              tz: ZoneInfo | None = None) -> bytes:
    """The alert's image card as PNG bytes, `size` "square" (1080×1080) or "link" (1200×630),
    its date told in `tz` (default Europe/Rome). Raise KeyError for an unknown size."""
    style = style or CardStyle()
    card = layout_card(alert, size=size, style=style, tz=tz)
    width, height = card.size
    canvas = Image.new("RGBA", card.size, PAPER)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, card.header), fill=card.band)
    if style.crest is not None and card.crest_box is not None:
        _paste_crest(canvas, style.crest, card.crest_box)
    if card.name is not None:
        _draw_block(draw, card.name, *card.name_at, text_colour(card.band))
    if card.urgent is not None:
        red = _rgb(URGENT_COLOUR)
        draw.rectangle((0, card.urgent[0], width, card.urgent[1]), fill=red)
        draw.text((_LAYOUTS[size].margin, (card.urgent[0] + card.urgent[1]) // 2),
                  URGENT_TEXT, font=card.urgent_font, fill=text_colour(red), anchor="lm")
    if card.title is not None:
        _draw_block(draw, card.title, *card.title_at, INK)
    if card.date:
        draw.text(card.date_at, card.date, font=card.date_font, fill=GREY, anchor="ls")
    draw.rectangle((0, card.strip, width, height), fill=card.band)
    out = io.BytesIO()
    canvas.convert("RGB").save(out, format="PNG")
    return out.getvalue()


def wants_card(mode: CardMode, alert: Alert) -> bool:
    """Whether a channel whose `card` is `mode` posts the alert with its card: "always" yes,
    "never" no, "auto" when the alert has no image of its own. (Only the channel types that post
    pictures ask.)"""
    return mode == "always" or (mode == "auto" and not alert.image_url)


_SENTENCE_END_RE = re.compile(r"[.!?…:;]$")
# Platforms bound an image's description (Mastodon at 1500 characters): an alert's is far shorter,
# but its title has no bound of its own.
ALT_TEXT_LIMIT = 1000


def alt_text(alert: Alert) -> str:
    """The card's description for screen readers, in Italian: "Avviso urgente." for an urgent
    alert (the card's red band says so), then the title and the summary, as the alert has them."""
    parts = ["Avviso urgente."] if alert.urgent else []
    title = " ".join(alert.title.split())
    summary = " ".join(alert.summary.split())
    if summary.casefold() == title.casefold():
        summary = ""
    if title:
        parts.append(title if _SENTENCE_END_RE.search(title) or not summary else title + ".")
    if summary:
        parts.append(summary)
    text = " ".join(parts)
    if len(text) <= ALT_TEXT_LIMIT:
        return text
    cut = text[:ALT_TEXT_LIMIT].rsplit(" ", 1)[0]  # at a word's end
    return cut.rstrip(",;:.-–—") + ELLIPSIS
