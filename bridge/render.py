"""Alert -> the text each channel posts. Pure.

`plain` is the canonical form and `len(plain(alert))` the canonical length of an alert: the
`[alerts] max_length` limit and `bridge.summary.build_alert` are defined on it. Other forms
add only markup around the same words (WhatsApp: two asterisks around the title), so a
channel's own limit (WhatsApp 4096, Telegram 4096, Mastodon 500) is checked by the channel
on its rendered text.
"""

from __future__ import annotations

from datetime import UTC

from bridge.item import Alert

__all__ = ["console", "plain", "whatsapp"]

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


def _blocks(*parts: str) -> str:
    """Join the non-empty parts with one blank line between them."""
    return "\n\n".join(part for part in parts if part)


def plain(alert: Alert) -> str:
    """Return the alert as plain text: title, blank line, summary (if any), blank line, link.

    This is the canonical rendering: `len(plain(alert))` is the length that `max_length`
    limits. An empty title or summary is left out together with its blank line.
    """
    return _blocks(alert.title, alert.summary, alert.link)


def whatsapp(alert: Alert) -> str:
    """Return the alert in WhatsApp markup: `*title*`, summary, link, blank lines between.

    WhatsApp markup characters inside the title and summary are replaced by look-alikes
    (see `_WHATSAPP_NEUTRAL`) so they cannot break or add formatting. The result is
    `len(plain(alert)) + 2` characters long when the alert has a title.
    """
    title = alert.title.translate(_WHATSAPP_NEUTRAL)
    summary = alert.summary.translate(_WHATSAPP_NEUTRAL)
    return _blocks(f"*{title}*" if title else "", summary, alert.link)


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
