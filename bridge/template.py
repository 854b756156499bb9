"""Per-channel alert templates with named placeholders, and the category/urgency emoji. Pure.

A template is operator text such as ``"{emoji} {title}\\n\\n{summary}\\n\\n{link}"``
(`EMOJI_TEMPLATE`; `DEFAULT_TEMPLATE` is the same without ``{emoji}``). It is
parsed here, never given to `str.format`: a placeholder is one of the names in `FIELDS`
and nothing else, so a template cannot reach attributes (``{title.__class__}``), index
(``{link[0]}``), format specs or code. ``{{`` and ``}}`` stand for literal braces.

Rendering fills the plain field values in; a renderer passes how to mark up each field
and how to escape literal text (WhatsApp: bold title, look-alikes for its markup
characters; Telegram: HTML-escape everything, ``<b>`` around the title). Layout rules, the
same for every renderer:

- a line whose placeholders are all empty and that has no other visible text is dropped;
- each line is stripped of leading and trailing spaces ("{emoji} {title}" without emoji);
- runs of blank lines collapse to one; leading and trailing blank lines go.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from bridge.item import Alert

__all__ = [
    "DEFAULT_EMOJI",
    "DEFAULT_TEMPLATE",
    "EMOJI_TEMPLATE",
    "FIELDS",
    "URGENT_MARKER",
    "Template",
    "TemplateError",
    "emoji_for",
    "italian_date",
    "parse_template",
    "values_for",
]

FIELDS = ("title", "summary", "link", "feed", "date", "emoji")

URGENT_MARKER = "🚨"

# Category words (matched case-insensitively inside the item's categories, in this order)
# -> emoji. Italian comune news categories as the CMSs name them; first match wins.
DEFAULT_EMOJI: Mapping[str, str] = {
    "allerta": "⚠️",
    "protezione civile": "⚠️",
    "meteo": "🌦️",
    "viabilit": "🚧",
    "lavori": "🚧",
    "strade": "🚧",
    "trasport": "🚌",
    "rifiuti": "♻️",
    "ambiente": "🌳",
    "tribut": "💶",
    "tasse": "💶",
    "bandi": "📄",
    "bando": "📄",
    "concors": "📄",
    "avvis": "📢",
    "scuola": "🏫",
    "istruzione": "🏫",
    "sanit": "🏥",
    "salute": "🏥",
    "social": "🤝",
    "biblioteca": "📚",
    "cultura": "🎭",
    "event": "📅",
    "sport": "🏅",
    "elezion": "🗳️",
}

_MONTHS_IT = (
    "gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno",
    "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre",
)  # fmt: skip

_TOKEN_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    """A template uses an unknown placeholder or an unbalanced brace."""

    hint = "placeholders are {title} {summary} {link} {feed} {date} {emoji}; write {{ and }} for braces"


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: `parts` alternate literal text (str) and field names (`_Field`).

    `timezone` is the zone `{date}` is told in (the bridge's `timezone`; None: Europe/Rome).
    """

    source: str
    parts: tuple[str | _Field, ...]
    timezone: ZoneInfo | None = None

    def fields(self) -> frozenset[str]:
        """The placeholder names this template uses."""
        return frozenset(part.name for part in self.parts if isinstance(part, _Field))

    def render(
        self,
        values: Mapping[str, str],
        *,
        field: Callable[[str, str], str] = lambda name, value: value,
        literal: Callable[[str], str] = lambda text: text,
    ) -> str:
        """Fill the template with `values` (plain text; a missing name counts as "").

        `field(name, value)` marks up a non-empty value (it is not called for an empty
        one); `literal(text)` escapes the template's own text. Layout rules as in the
        module docstring. Deterministic.
        """
        lines: list[list[tuple[bool, str]]] = [[]]  # per line: (is_field, rendered)
        filled: list[bool] = [False]
        for part in self.parts:
            if isinstance(part, _Field):
                value = values.get(part.name, "")
                if value:
                    # A value's own line breaks (a summary never has one, but a feed name
                    # could) stay inside the field: they do not start a template line.
                    lines[-1].append((True, field(part.name, value)))
                    filled[-1] = True
                else:
                    lines[-1].append((True, ""))
                continue
            for n, chunk in enumerate(part.split("\n")):
                if n:
                    lines.append([])
                    filled.append(False)
                if chunk:
                    lines[-1].append((False, chunk))
        out: list[str] = []
        for pieces, has_value in zip(lines, filled, strict=True):
            has_field = any(is_field for is_field, _ in pieces)
            visible = any(not is_field and text.strip() for is_field, text in pieces)
            if has_field and not has_value and not visible:
                continue  # "{summary}" alone on its line, and no summary
            text = "".join(text if is_field else literal(text) for is_field, text in pieces)
            out.append(text.strip(" \t"))
        # Blank-line runs collapse to one; none at either end.
        result: list[str] = []
        for line in out:
            if not line and (not result or not result[-1]):
                continue
            result.append(line)
        while result and not result[-1]:
            result.pop()
        return "\n".join(result)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@lru_cache(maxsize=256)  # a Template is frozen: each channel's is parsed once, not at every send
def parse_template(source: str) -> Template:
    """Parse `source` into a Template.

    Raise TemplateError (with the offending text and its position) for an unknown
    placeholder such as ``{body}`` or ``{title.upper}``, an empty ``{}``, or a lone brace.
    """
    parts: list[str | _Field] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN_RE.finditer(source):
        literal.append(source[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
            continue
        name = match.group(1)
        if name is None:
            raise TemplateError(f"lone {token!r} at position {match.start()} in template {source!r}")
        if name.strip() not in FIELDS:
            raise TemplateError(
                f"unknown placeholder {token!r} at position {match.start()}; known: "
                + " ".join(f"{{{f}}}" for f in FIELDS)
            )
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_Field(name.strip()))
    literal.append(source[position:])
    if "".join(literal):
        parts.append("".join(literal))
    return Template(source=source, parts=tuple(parts))


# The layout every channel had before templates existed; emoji are opt-in (a channel's
# `template`, or EMOJI_TEMPLATE), so an upgrade does not change what subscribers receive.
DEFAULT_TEMPLATE = parse_template("{title}\n\n{summary}\n\n{link}")
def channel_template(source: str | None, timezone: ZoneInfo | None = None) -> Template:
    """The template a channel's `template` setting names, or `DEFAULT_TEMPLATE` when unset,
    telling `{date}` in `timezone` (the bridge's). The config loader has already validated it."""
    return replace(parse_template(source) if source else DEFAULT_TEMPLATE, timezone=timezone)


# The Italian default with the category emoji or the urgent marker before the title.
EMOJI_TEMPLATE = parse_template("{emoji} {title}\n\n{summary}\n\n{link}")


def emoji_for(
    categories: Iterable[str],
    *,
    urgent: bool,
    mapping: Mapping[str, str] = DEFAULT_EMOJI,
    urgent_marker: str = URGENT_MARKER,
) -> str:
    """The emoji of an alert: `urgent_marker` when urgent, else the first `mapping` entry
    (in mapping order) whose key occurs, case-insensitively, in one of `categories`; "" when
    none does."""
    if urgent:
        return urgent_marker
    folded = [c.casefold() for c in categories]
    for key, emoji in mapping.items():
        needle = key.casefold()
        if any(needle in category for category in folded):
            return emoji
    return ""


def italian_date(moment: datetime | None, tz: ZoneInfo | None = None) -> str:
    """ "7 agosto 2026": `moment` in `tz` (default Europe/Rome; a naive moment is UTC),
    or "" for None."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(tz or ZoneInfo("Europe/Rome"))
    return f"{local.day} {_MONTHS_IT[local.month - 1]} {local.year}"


def values_for(
    alert: Alert,
    *,
    emoji: Mapping[str, str] = DEFAULT_EMOJI,
    urgent_marker: str = URGENT_MARKER,
    tz: ZoneInfo | None = None,
) -> dict[str, str]:
    """The plain-text value of every placeholder for `alert`: title, summary, link, feed
    (the feed's name), date (`italian_date` of its publication), emoji (`emoji_for`)."""
    return {
        "title": alert.title,
        "summary": alert.summary,
        "link": alert.link,
        "feed": alert.feed_name,
        "date": italian_date(alert.published, tz),
        "emoji": emoji_for(alert.categories, urgent=alert.urgent, mapping=emoji, urgent_marker=urgent_marker),
    }
