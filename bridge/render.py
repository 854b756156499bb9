"""Alert -> the text each channel posts. Pure.

`plain` is the canonical form and `len(plain(alert))` the canonical length of an alert: the
`[alerts] max_length` limit is defined on it. Each platform's own limits and way of counting
live here, once, in its `Platform` (`platform_for(channel type)`): WhatsApp counts its
rendered text with the markup (4096, caption 1024), Telegram the visible text (4096, caption
1024), Mastodon every URL as 23 characters (500 unless the instance allows more), Bluesky grapheme
clusters (300, and at most 3000 bytes of UTF-8: `bluesky_length`).
`bridge.summary.build_alert` makes the alert fit both `max_length` and the platform's limit
with whole sentences, so a channel never has to cut it again; `fit` stays as the channel's
last guard for what no summary can help (an over-long link).

Every renderer lays the alert out with a `bridge.template.Template` (default:
`DEFAULT_TEMPLATE`, title / summary / link, blank lines between): the template
places the plain values, the renderer only escapes and marks them up. A renderer added here
takes the same `template` keyword and calls `template.render(values_for(alert,
tz=template.timezone), field=..., literal=...)` with its own escaping, so one channel template
works on every platform (and tells `{date}` in the template's time zone).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC
from zoneinfo import ZoneInfo

from bridge.item import Alert
from bridge.template import DEFAULT_TEMPLATE, Template, values_for

__all__ = [
    "BLUESKY",
    "MASTODON",
    "PLAIN",
    "TELEGRAM",
    "WHATSAPP",
    "Platform",
    "bluesky_length",
    "console",
    "fit",
    "graphemes",
    "mastodon",
    "mastodon_length",
    "plain",
    "platform_for",
    "telegram",
    "whatsapp",
]

# WhatsApp has no escape character for its markup (*bold*, _italic_, ~strike~, `code`,
# ```mono```): a "*" inside the title would close the bold early, a pair of "_" in the
# summary would italicise the words between them. Each markup character in the title and
# summary is therefore replaced by a look-alike that WhatsApp does not interpret. The text
# stays readable and the same for every reader; the link is left untouched, since it must
# stay exact, and WhatsApp does not format inside a URL.
_WHATSAPP_NEUTRAL = str.maketrans(
    {
        "*": "\u2217",  # ∗ ASTERISK OPERATOR
        "_": "\u02cd",  # ˍ MODIFIER LETTER LOW MACRON
        "~": "\u223c",  # ∼ TILDE OPERATOR
        "`": "\u02cb",  # ˋ MODIFIER LETTER GRAVE ACCENT
    }
)


def plain(alert: Alert, template: Template = DEFAULT_TEMPLATE) -> str:
    """Return the alert as plain text laid out by `template` (default: title, blank line,
    summary (if any), blank line, link).

    This is the canonical rendering: `len(plain(alert, template))` is the length that
    `max_length` limits. An empty title or summary is left out together with its blank line.
    """
    return template.render(values_for(alert, tz=template.timezone))


def _whatsapp_field(name: str, value: str) -> str:
    if name == "link":
        return value
    value = value.translate(_WHATSAPP_NEUTRAL)
    return f"*{value}*" if name == "title" else value


def whatsapp(alert: Alert, template: Template = DEFAULT_TEMPLATE) -> str:
    """Return the alert in WhatsApp markup, laid out by `template`: `*title*`, summary, link.

    WhatsApp markup characters inside every value but the link, and in the template's own
    text, are replaced by look-alikes (see `_WHATSAPP_NEUTRAL`) so they cannot break or add
    formatting. The result is `len(plain(alert, template)) + 2` characters long when the
    alert has a title and the template shows it.
    """
    return template.render(
        values_for(alert, tz=template.timezone), field=_whatsapp_field,
        literal=lambda text: text.translate(_WHATSAPP_NEUTRAL),
    )


def console(alert: Alert, template: Template = DEFAULT_TEMPLATE) -> str:
    """Return a block for a terminal: a header line, then `plain(alert, template)`.

    The header is "── <feed name> · <published, YYYY-MM-DD HH:MM> <zone>" in the template's
    time zone (the bridge's `timezone`; Europe/Rome when it has none: "2026-08-07 10:32
    CEST"), with " · URGENTE" for urgent alerts; the date part is omitted for an undated
    alert (a naive datetime is taken as UTC).
    """
    header = f"── {alert.feed_name}"
    if alert.published is not None:
        published = alert.published
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        local = published.astimezone(template.timezone or ZoneInfo("Europe/Rome"))
        header += f" · {local:%Y-%m-%d %H:%M} {local.tzname()}"
    if alert.urgent:
        header += " · URGENTE"
    return f"{header}\n{plain(alert, template)}"


# -- Telegram, Mastodon, and fitting a platform's limit ----------------------------------
# (Appended by the channels; the functions above are the canonical forms they build on.)


def _telegram_escape(text: str) -> str:
    return html.escape(text, quote=False)


def telegram(alert: Alert, template: Template = DEFAULT_TEMPLATE) -> str:
    """Return the alert for Telegram's HTML parse mode, laid out by `template`: `<b>title</b>`,
    summary, link.

    `<`, `>` and `&` in every value and in the template's own text are escaped (and nothing
    else: Telegram's HTML mode knows only these three entities plus `&quot;`), so feed text can
    never add or break markup; the link stays a bare URL, which Telegram links by itself. What
    a reader sees is exactly `plain(alert, template)`: Telegram counts its limits (4096 text,
    1024 caption) on that.
    """

    def field(name: str, value: str) -> str:
        escaped = _telegram_escape(value)
        return f"<b>{escaped}</b>" if name == "title" and value else escaped

    return template.render(values_for(alert, tz=template.timezone), field=field, literal=_telegram_escape)


# -- Mastodon's own way of counting ------------------------------------------------------
# Mastodon checks a status against its limit (500 unless the instance is configured otherwise)
# after rewriting it: every URL it recognises counts as 23 characters, however long or short
# it is, and a remote mention "@user@domain" counts as "@user"; what is left is counted in
# grapheme clusters. `mastodon_length` follows those rules; the regular expressions below
# mirror the ones Mastodon uses (twitter-text's URL extractor with Mastodon's own path rules,
# and its mention pattern), without twitter-text's list of top-level domains: a host whose
# last label is letters (or punycode) counts as a domain. Code points stand in for grapheme
# clusters: there are never fewer, so the count errs only towards fitting a little less.

MASTODON_LIMIT = 500
MASTODON_URL_LENGTH = 23
# twitter-text does not shorten a URL over this many characters: it counts in full.
_MASTODON_MAX_URL = 4096
# The shortest URL Mastodon shortens ("ssb://a.co"): no URL costs more than this many
# characters beyond its own length, which bounds `mastodon_length(strict=True)`.
_MASTODON_SHORTEST_URL = 10

_UCHARS = (
    "\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd"
    "\U00030000-\U0003fffd\U00040000-\U0004fffd\U00050000-\U0005fffd\U00060000-\U0006fffd"
    "\U00070000-\U0007fffd\U00080000-\U0008fffd\U00090000-\U0009fffd\U000a0000-\U000afffd"
    "\U000b0000-\U000bfffd\U000c0000-\U000cfffd\U000d0000-\U000dfffd\U000e1000-\U000efffd"
    "\U0000e000-\U0000f8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"
)
# A domain label may hold anything but ASCII punctuation, spaces and control characters.
_LABEL_CHAR = r"[^!-/:-@\[-`{-~\s\x00-\x1f\x7f\ufeff\ufffe\uffff]"
_PATH_CHAR = r"[^\s<>()?]"
_PARENS = rf"\((?:{_PATH_CHAR}+|{_PATH_CHAR}*\({_PATH_CHAR}+\){_PATH_CHAR}*)\)"
_PATH_END = rf"(?:[^\s()?!*\"'「」<>;:=,.$%\[\]~&|@]|{_PARENS})"
_PATH_PART = rf"(?:{_PATH_CHAR}*(?:{_PARENS}{_PATH_CHAR}*)*{_PATH_END}|{_PATH_CHAR}+/)"
_MASTODON_URL = re.compile(
    r"(?<![A-Za-z0-9@＠$#＃\ufeff\ufffe\uffff])"  # not glued to a word, a mention, a tag
    r"(?:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://"
    rf"(?:(?:{_LABEL_CHAR}(?:[_-]|{_LABEL_CHAR})*)?{_LABEL_CHAR}\.)*"  # subdomains
    rf"(?:(?:{_LABEL_CHAR}(?:-|{_LABEL_CHAR})*)?{_LABEL_CHAR}\.)"  # the domain name
    # The top-level domain: punycode, or two letters or more not glued to more of a name.
    r"(?:xn--[-0-9a-z]+|[a-z]{2,}(?![0-9a-z@+-])|[^\W\d_a-z]{2,}(?![0-9a-z@+-]))"
    r"(?::[0-9]+)?"
    rf"(?:/{_PATH_PART}*)?"
    rf"(?:\?[a-z0-9!?*'();:&=+$/%#\[\]\-_.,~|@^{_UCHARS}]*[a-z0-9_&=#/\-{_UCHARS}])?",
    re.IGNORECASE,
)
# A remote mention: only the "@user" part counts. The domain is matched in ASCII only and the
# mention dropped when a word character follows, so a mention is never taken as shorter than
# Mastodon takes it.
_ASCII_NAME = r"[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*"
_MASTODON_MENTION = re.compile(rf"(?<![=/\w])(@{_ASCII_NAME})@{_ASCII_NAME}")
# What may not follow a mention (twitter-text's "end mention match"): an at sign, a Latin
# accented letter, "://".
_NOT_AFTER_MENTION = re.compile(
    "[@＠\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263\u0268"
    "\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff]|://"
)


def mastodon_length(text: str, *, strict: bool = False) -> int:
    """Return the length Mastodon counts for `text`; pure.

    Every URL Mastodon recognises (http, https and the few other schemes it links) counts as
    `MASTODON_URL_LENGTH` characters whatever its length, a remote mention "@user@domain" as
    "@user", everything else one per code point.

    `strict` gives an upper bound instead, true however the server splits URLs and mentions,
    and also for servers that count every character: every character counts, and each "://"
    adds what the shortest URL Mastodon shortens gains by counting 23. The plainest form of
    a status is fitted with it, as a last try after a refusal.
    """
    if strict:
        return len(text) + text.count("://") * (MASTODON_URL_LENGTH - _MASTODON_SHORTEST_URL)
    spans: list[tuple[int, int, int]] = []  # (start, end, counted length)
    for match in _MASTODON_URL.finditer(text):
        if len(match.group()) <= _MASTODON_MAX_URL:
            spans.append((match.start(), match.end(), MASTODON_URL_LENGTH))
    for match in _MASTODON_MENTION.finditer(text):
        if _mention_counts_short(text, match.start(), match.end()):
            spans.append((match.start(), match.end(), len(match.group(1))))
    spans.sort()
    length, covered = len(text), 0
    for start, end, counted in spans:
        if start < covered:
            continue  # overlaps an entity taken before it, as Mastodon drops it too
        length -= (end - start) - counted
        covered = end
    return length


def _mention_counts_short(text: str, start: int, end: int) -> bool:
    """True when Mastodon takes `text[start:end]`, "@user@domain" in ASCII, as a mention of
    exactly that extent: not after a combining mark (a word character to Mastodon), not
    followed by more of a name in other letters, nor by what may not follow a mention."""
    if start and _is_word(text[start - 1], marks_only=True):
        return False
    rest = text[end:]
    after = rest.lstrip(".-")
    return not (after and _is_word(after[0])) and _NOT_AFTER_MENTION.match(rest) is None


def _is_word(char: str, *, marks_only: bool = False) -> bool:
    """A word character as Mastodon's patterns see it: letter, mark, digit or "_"."""
    is_mark = unicodedata.category(char).startswith("M")
    return is_mark if marks_only else is_mark or char.isalnum() or char == "_"


def mastodon(
    alert: Alert, limit: int | None = None, template: Template = DEFAULT_TEMPLATE, *, strict: bool = False
) -> str:
    """Return the alert as a Mastodon status: `plain` text laid out by `template`, within
    `limit` characters (None: Mastodon's default, 500) as Mastodon counts them
    (`mastodon_length`, `strict` as there), the link kept whole.

    When the text is too long the summary is shortened at a word boundary with "…", then
    dropped, then the title shortened the same way (see `fit`).
    """
    fitted = fit(
        alert,
        limit or MASTODON_LIMIT,
        lambda candidate: mastodon_length(plain(candidate, template), strict=strict),
    )
    return plain(fitted, template)


def fit(alert: Alert, limit: int, length: Callable[[Alert], int] | None = None) -> Alert:
    """Return `alert`, shortened if needed so that `length(alert) <= limit`; pure.

    `length` measures a rendering (default: `len(plain(alert))`) and must grow with the text.
    The link is never touched. First the summary is cut at a word boundary and ends in "…";
    if even no summary is too long, the summary is dropped and the title cut the same way;
    if the link alone is too long, the alert keeps only its link (the platform decides).
    """
    measure = length or (lambda candidate: len(plain(candidate)))
    if measure(alert) <= limit:
        return alert
    if alert.summary:
        shorter = _cut_field(alert.summary, lambda text: replace(alert, summary=text), limit, measure)
        if shorter is not None:
            return shorter
    without_summary = replace(alert, summary="")
    if alert.title:
        shorter = _cut_field(
            alert.title, lambda text: replace(without_summary, title=text), limit, measure
        )
        if shorter is not None:
            return shorter
    return replace(without_summary, title="")


def _cut_field(
    text: str, rebuild: Callable[[str], Alert], limit: int, measure: Callable[[Alert], int]
) -> Alert | None:
    """Return `rebuild(shorter text)` with as little cut from `text` as fits `limit`, or None
    if even an empty text does not fit. Binary search over the number of characters kept."""
    best = rebuild("")
    if measure(best) > limit:
        return None
    low, high = 1, len(text) - 1
    while low <= high:
        middle = (low + high) // 2
        clipped = _clip(text, middle)
        candidate = rebuild(clipped)
        if clipped and measure(candidate) <= limit:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best


def _clip(text: str, keep: int) -> str:
    """Cut `text` to at most `keep` characters, at the last space when there is one in the
    second half, drop trailing punctuation, and end with "…"; "" when nothing is left."""
    head = text[:keep]
    space = head.rfind(" ")
    if space > keep // 2:
        head = head[:space]
    head = head.rstrip(" ,;:.-–—([{\"'«")
    return f"{head}…" if head else ""


# -- Bluesky's own way of counting ----------------------------------------------------------
# A post's text may hold 300 grapheme clusters and 3000 bytes of UTF-8 (the lexicon of
# app.bsky.feed.post: maxGraphemes 300, maxLength 3000). `graphemes` counts clusters without a
# Unicode segmentation library: it joins a character to the one before only where the Unicode
# rules (UAX #29) never break, for the sequences a comune's text can hold (accents written as
# combining marks, variation selectors, skin tones, emoji joined by ZWJ, flags, tag sequences).
# Any other sequence counts a cluster per code point, so the count is never below the one the
# server makes: a text it fits is never refused as too long, it only may keep a little less.

BLUESKY_LIMIT = 300
BLUESKY_BYTES = 3000
_BYTES_PER_GRAPHEME = BLUESKY_BYTES // BLUESKY_LIMIT

# Pictographs that Unicode marks Extended_Pictographic, by whole blocks (only a part of them,
# which keeps the count safe): a ZWJ between two of them joins one emoji.
_PICTOGRAPH_BLOCKS = ((0x1F300, 0x1F3FA), (0x1F400, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF),
                      (0x1FA70, 0x1FAFF))
_PICTOGRAPH_SIGNS = frozenset({0x2640, 0x2642, 0x2695, 0x2696, 0x2708, 0x2764, 0x2B1B, 0x26A7})


def _pictograph(char: str) -> bool:
    code = ord(char)
    return code in _PICTOGRAPH_SIGNS or any(low <= code <= high for low, high in _PICTOGRAPH_BLOCKS)


def _extends(char: str) -> bool:
    """Whether `char` never starts a cluster (Grapheme_Cluster_Break Extend or ZWJ): a
    nonspacing or enclosing mark, a variation selector, a skin tone, a tag, the ZWJ."""
    code = ord(char)
    return (unicodedata.category(char) in ("Mn", "Me") or 0x1F3FB <= code <= 0x1F3FF
            or 0xE0020 <= code <= 0xE007F or code == 0x200D)


def graphemes(text: str) -> int:
    """The grapheme clusters of `text`, never fewer than Unicode's segmentation counts; pure."""
    count = 0
    previous_base = ""  # the character that started the current cluster's last emoji
    after_zwj = False
    regional_odd = False  # inside a pair of regional indicators (a flag)
    for char in text:
        code = ord(char)
        if _extends(char):
            after_zwj = code == 0x200D
            continue
        if after_zwj and previous_base and _pictograph(previous_base) and _pictograph(char):
            after_zwj = False
            previous_base = char
            continue
        if 0x1F1E6 <= code <= 0x1F1FF:
            if regional_odd:
                regional_odd = False
                continue
            regional_odd = True
        else:
            regional_odd = False
        after_zwj = False
        previous_base = char
        count += 1
    return count


def bluesky_length(text: str) -> int:
    """The length Bluesky checks against its 300, as one number: the grapheme clusters, or a
    tenth of the UTF-8 bytes when that is more (3000 bytes are the other bound); pure."""
    size = len(text.encode("utf-8"))
    return max(graphemes(text), -(-size // _BYTES_PER_GRAPHEME))


def bluesky(alert: Alert, limit: int | None = None, template: Template = DEFAULT_TEMPLATE) -> str:
    """Return the alert as a Bluesky post's text: `plain` laid out by `template`, within `limit`
    (None: 300) as `bluesky_length` counts, the link kept whole (see `fit`)."""
    fitted = fit(alert, limit or BLUESKY_LIMIT, lambda candidate: bluesky_length(plain(candidate, template)))
    return plain(fitted, template)


# -- each platform's limits, once ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Platform:
    """A destination's limits and how it counts them: `measure(alert, template)` is the length
    the platform checks against `text_limit` (and `caption_limit` for a caption, None when
    it has none). A channel of that platform posts `alert` whole when
    `measure(alert, template) <= text_limit`."""

    name: str
    text_limit: int
    caption_limit: int | None
    measure: Callable[[Alert, Template], int]

    def with_limit(self, max_length: int | None) -> Platform:
        """This platform with its text limit lowered to a channel's `max_length` (None: as is)."""
        if max_length is None or max_length >= self.text_limit:
            return self
        return replace(self, text_limit=max_length)


WHATSAPP = Platform("whatsapp", 4096, 1024, lambda alert, template: len(whatsapp(alert, template)))
TELEGRAM = Platform("telegram", 4096, 1024, lambda alert, template: len(plain(alert, template)))
MASTODON = Platform("mastodon", MASTODON_LIMIT, None,
                    lambda alert, template: mastodon_length(plain(alert, template)))
# A Facebook Page post's message (and a photo's caption, which is the post's message) holds
# up to 63 206 characters.
FACEBOOK = Platform("facebook", 63206, None, lambda alert, template: len(plain(alert, template)))
BLUESKY = Platform("bluesky", BLUESKY_LIMIT, None, lambda alert, template: bluesky_length(plain(alert, template)))
# Webhook and console: no platform limit of their own beyond `max_length`.
PLAIN = Platform("plain", 1 << 30, None, lambda alert, template: len(plain(alert, template)))

_BY_CHANNEL_TYPE = {
    "waha": WHATSAPP,
    "whapi": WHATSAPP,
    "telegram": TELEGRAM,
    "mastodon": MASTODON,
    "webhook": PLAIN,
    "console": PLAIN,
    "facebook": FACEBOOK,
    "bluesky": BLUESKY,
}


def platform_for(channel_type: str, max_length: int | None = None) -> Platform:
    """The `Platform` a channel of `channel_type` posts to, with the channel's `max_length`:
    for Mastodon the instance's limit (default 500, an instance may allow more), for the
    others a lower limit than the platform's. Raise KeyError for an unknown channel type."""
    platform = _BY_CHANNEL_TYPE[channel_type]
    if platform is MASTODON:
        return replace(MASTODON, text_limit=max_length or MASTODON_LIMIT)
    return platform.with_limit(max_length)
