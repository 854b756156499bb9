"""A channel's text -> the HTML of its phone preview. Pure.

The input is the exact text a channel sends (`bridge.channels.outgoing_for`), and it holds
feed text, which is hostile: everything is escaped first, and only the platform's own markup
becomes tags: WhatsApp's `*bold*`, `_italic_`, `~strike~`, ```` ```mono``` ```` and its
automatic links (http and https only); Telegram's HTML subset (`<b>`, `<i>`, `<a href>`, ...)
and its automatic links.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from markupsafe import Markup, escape

_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def _link(url: str) -> str:
    safe = html.escape(url, quote=True)
    return f'<a href="{safe}" rel="noopener noreferrer nofollow" target="_blank">{safe}</a>'


# On escaped text (which holds no "*", "_", "~" or "`" of its own making): a span opens on a
# marker followed by a non-space and closes on a non-space followed by the marker, within a
# line, not inside a word, as WhatsApp does.
_WHATSAPP_SPANS = [
    (re.compile(r"```(.+?)```", re.DOTALL), "code"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])"), "s"),
]


def _whatsapp_spans(text: str) -> str:
    out = str(escape(text))
    for pattern, tag in _WHATSAPP_SPANS:
        out = pattern.sub(lambda m, tag=tag: f"<{tag}>{m.group(1)}</{tag}>", out)  # type: ignore[misc]
    return out


def whatsapp_html(text: str) -> Markup:
    """WhatsApp text as HTML: markup rendered, links made links, the rest escaped; line breaks
    are kept by the page's CSS (white-space: pre-wrap)."""
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        parts.append(_whatsapp_spans(text[last:match.start()]))
        parts.append(_link(match.group(0)))
        last = match.end()
    parts.append(_whatsapp_spans(text[last:]))
    return Markup("".join(parts))  # every part above is escaped or made of escaped parts


_TELEGRAM_TAGS = {"b": "strong", "strong": "strong", "i": "em", "em": "em", "u": "u", "ins": "u", "s": "s",
                  "strike": "s", "del": "s", "code": "code", "pre": "code", "a": "a"}


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode, kept to its tags; anything else is shown as text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.in_link = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = _TELEGRAM_TAGS.get(tag)
        if kind is None:
            self.out.append(html.escape(self.get_starttag_text() or ""))
        elif kind == "a":
            self.in_link += 1
            href = dict(attrs).get("href") or ""
            if _URL.fullmatch(href):
                self.out.append(f'<a href="{html.escape(href, quote=True)}" rel="noopener noreferrer nofollow" '
                                'target="_blank">')
            else:
                self.out.append("<a>")
        else:
            self.out.append(f"<{kind}>")

    def handle_endtag(self, tag: str) -> None:
        kind = _TELEGRAM_TAGS.get(tag)
        if kind == "a":
            self.in_link = max(0, self.in_link - 1)
        self.out.append(f"</{kind}>" if kind else html.escape(f"</{tag}>"))

    def handle_data(self, data: str) -> None:
        # Telegram links a bare http(s) address by itself, as it shows it to readers.
        self.out.append(html.escape(data) if self.in_link else str(plain_html(data)))


def telegram_html(text: str) -> Markup:
    """Telegram HTML-mode text as the page's HTML: its tags kept, any other escaped."""
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    return Markup("".join(parser.out))  # built from escaped data and fixed tags


def plain_html(text: str) -> Markup:
    """Plain text (Mastodon, webhook, console) as HTML: escaped, links made links."""
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        parts.append(str(escape(text[last:match.start()])))
        parts.append(_link(match.group(0)))
        last = match.end()
    parts.append(str(escape(text[last:])))
    return Markup("".join(parts))
