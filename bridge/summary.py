"""Item -> Alert: the title, one or two lead sentences of the item's own text, the link. Pure.

The summary is extractive and verbatim: whole source sentences, in source order, or nothing.
That is the fact guard of the product (SPEC 5: "the summary never says anything the source
does not"): no word is added, reordered or cut, so every date, time, amount and name in the
alert is in the source. When no whole sentence fits, the alert is title + link.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bridge import render
from bridge.item import Alert, Item
from bridge.sentences import is_complete_sentence, split_sentences
from bridge.text import clean_title, strip_boilerplate

__all__ = ["LinkTooLongError", "build_alert"]


class LinkTooLongError(ValueError):
    """The item's link alone does not fit in `max_length`: no alert can honour the limit.

    Seen in real feeds (portal URLs of 400+ characters). The caller decides: hold and
    report the item, or raise `[alerts] max_length` for that feed.
    """

    hint = "raise [alerts] max_length, or report the over-long link to the site's editors"

_MAX_SENTENCES = 2
_ELLIPSIS = "…"
_NON_WORD_RE = re.compile(r"[\W_]+")


def _comparable(text: str) -> str:
    """Case- and punctuation-insensitive form, to recognise a title repeated in the text."""
    return _NON_WORD_RE.sub(" ", text.casefold()).strip()


def _repeats_title(key: str, title_key: str) -> bool:
    """True when a sentence (comparable form `key`) only repeats the title.

    Either it is (a piece of) the title, or it is the start of the title after a short
    label, as listing snippets have it ("Biblioteca e Cultura <title> ...").
    """
    if not title_key:
        return False
    if key in title_key:
        return True
    words = key.split(" ")
    for skip in range(1, 4):
        rest = words[skip:]
        if len(rest) >= 3 and title_key.startswith(" ".join(rest)):
            return True
    return False


def _lead_sentences(text: str, title: str) -> list[str]:
    """The whole sentences of `text` that may open the summary, in order.

    Boilerplate is stripped first; a leading line equal to the title and any sentence that
    only repeats (part of) the title are skipped. The list stops at the first fragment that
    follows a usable sentence, so the summary never skips over text to reach a later one.
    """
    body = strip_boilerplate(text)
    title_key = _comparable(title)
    lines = body.split("\n")
    while lines and (not lines[0].strip() or _comparable(lines[0]) == title_key):
        lines.pop(0)
    sentences: list[str] = []
    for segment in split_sentences("\n".join(lines)):
        key = _comparable(segment)
        usable = bool(key) and is_complete_sentence(segment)
        if usable and not _repeats_title(key, title_key):
            sentences.append(segment)
            if len(sentences) == _MAX_SENTENCES:
                break
        elif sentences:
            # A heading, a cut-off fragment or the title again after the lead: the lead is
            # over; jumping past it would join sentences the source does not join.
            break
    return sentences


def _shorten(title: str, limit: int) -> str:
    """Cut `title` at a word boundary to at most `limit` characters, ending with "…"."""
    if len(title) <= limit:
        return title
    room = limit - len(_ELLIPSIS)
    cut = title[: room + 1]
    space = cut.rfind(" ")
    # Back to the last whole word; a single word longer than the room is cut hard.
    head = cut[:space] if space > 0 else title[:room]
    return head.rstrip(" ,;:.-–—(") + _ELLIPSIS


def build_alert(
    item: Item, *, feed_name: str, max_length: int = 400, urgent: bool = False
) -> Alert:
    """Return the alert for `item`: title, up to two lead sentences, link.

    The summary is one or two whole sentences taken verbatim from `item.text` (the feed's
    description) or, when that yields none, from `item.content`; boilerplate is removed and
    sentences repeating the title are skipped. It is "" when no whole sentence fits. The
    title is `item.title` cleaned with `clean_title` (idempotent on parser output) and
    shortened at a word boundary with "…" only when title + link alone exceed the limit.
    `len(render.plain(alert)) <= max_length` always holds. Deterministic.

    Raise ValueError if `item.link` is None; raise LinkTooLongError (a ValueError) if the
    link alone leaves no room for a title within `max_length`.
    """
    if item.link is None:
        raise ValueError(f"item of feed {item.feed_id!r} has no link; it cannot become an alert")
    full_title = clean_title(item.title)
    alert = Alert(
        feed_id=item.feed_id,
        feed_name=feed_name,
        title="",
        summary="",
        link=item.link,
        published=item.published,
        urgent=urgent,
        image_url=item.image_url,
        categories=item.categories,
    )
    # Lengths are measured on render.plain itself, the canonical measure, so a change of
    # layout there cannot silently break the limit here (a one-character title stands in
    # for any title, as an empty one would drop its separator).
    title_room = max_length - len(render.plain(replace(alert, title="T"))) + 1
    if title_room < len(_ELLIPSIS) + 1:
        raise LinkTooLongError(
            f"link of {len(item.link)} characters leaves no room for a title "
            f"in max_length={max_length}"
        )
    alert = replace(alert, title=_shorten(full_title, title_room))

    sentences = _lead_sentences(item.text, full_title)
    if not sentences and item.content:
        sentences = _lead_sentences(item.content, full_title)
    summary = ""
    for sentence in sentences:
        candidate = f"{summary} {sentence}" if summary else sentence
        if len(render.plain(replace(alert, summary=candidate))) > max_length:
            break
        summary = candidate
    return replace(alert, summary=summary)
