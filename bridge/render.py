"""Alert -> the text each channel posts. Pure.

`plain` is the canonical form and `len(plain(alert))` the canonical length of an alert: the
`[alerts] max_length` limit and `bridge.summary.build_alert` are defined on it. Other forms
add only markup around the same words (WhatsApp: two asterisks around the title), so a
channel's own limit (WhatsApp 4096, Telegram 4096, Mastodon 500) is checked by the channel
on its rendered text.

Every renderer lays the alert out with a `bridge.template.Template` (default:
`DEFAULT_TEMPLATE`, title / summary / link, blank lines between): the template
places the plain values, the renderer only escapes and marks them up. A renderer added here
takes the same `template` keyword and calls `template.render(values_for(alert), field=...,
literal=...)` with its own escaping, so one channel template works on every platform.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC

from bridge.item import Alert
from bridge.template import DEFAULT_TEMPLATE, Template, values_for

__all__ = ["console", "fit", "mastodon", "mastodon_length", "plain", "telegram", "whatsapp"]

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
    return template.render(values_for(alert))


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
        values_for(alert), field=_whatsapp_field, literal=lambda text: text.translate(_WHATSAPP_NEUTRAL)
    )


def console(alert: Alert) -> str:
    """Return a block for a terminal: a header line, then `plain(alert)`.

    The header is "── <feed name> · <published, UTC, YYYY-MM-DD HH:MM> UTC", with
    " · URGENTE" for urgent alerts; the date part is omitted for an undated alert (a naive
    datetime is taken as UTC).
    """
    header = f"── {alert.feed_name}"
    if alert.published is not None:
        published = alert.published
        published = (
            published.replace(tzinfo=UTC) if published.tzinfo is None else published.astimezone(UTC)
        )
        header += f" · {published:%Y-%m-%d %H:%M} UTC"
    if alert.urgent:
        header += " · URGENTE"
    return f"{header}\n{plain(alert)}"


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

    return template.render(values_for(alert), field=field, literal=_telegram_escape)


# Mastodon counts every URL in a status as this many characters, however long it is.
MASTODON_URL_LENGTH = 23


def mastodon_length(text: str, link: str) -> int:
    """Return the length Mastodon counts for `text`: each occurrence of `link` (an http(s)
    URL) counts as `MASTODON_URL_LENGTH` characters when it is longer."""
    if not link.startswith(("http://", "https://")) or len(link) <= MASTODON_URL_LENGTH:
        return len(text)
    return len(text) - text.count(link) * (len(link) - MASTODON_URL_LENGTH)


def mastodon(alert: Alert, limit: int = 500, template: Template = DEFAULT_TEMPLATE) -> str:
    """Return the alert as a Mastodon status: `plain` text laid out by `template`, within
    `limit` characters as Mastodon counts them (a link counts 23), the link kept whole.

    When the text is too long the summary is shortened at a word boundary with "…", then
    dropped, then the title shortened the same way (see `fit`).
    """
    fitted = fit(alert, limit, lambda candidate: mastodon_length(plain(candidate, template), candidate.link))
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
