"""Item -> Alert: the title, one or two lead units of the item's own text, the link. Pure.

The summary is extractive and verbatim (SPEC 5: "the summary never says anything the source
does not"). Its units, in source order, news being written lead-first:

- *sentences*: whole sentences of the text (`bridge.sentences`), as written;
- a *lead line*: most comune feeds (OpenCity, MyPortal, Design Comuni) give a subtitle line
  without final punctuation ("Illuminazione più omogenea per una maggiore sicurezza"). A
  whole source line of at least four words that does not look cut off (no ellipsis, no
  trailing comma, dash or preposition, not a bare date, not a heading in capitals) is used
  as the first unit, closed with a "." -- the one character the summary may add.

If the first unit alone is longer than the room left, it is cut at a clause boundary in
its second half, or else at a word, and ends with "…"; no word is cut and none is added.
Then the fact guard (`bridge.facts`): every number, date, time and amount of the alert
occurs in the source, and the summary is a verbatim run of it; otherwise the alert is
title + link. Same input, same bytes.

The alert's link is the checked one, and no other address off the feed's domains may reach
citizens as a link (WhatsApp and Telegram make links of "www.x.it" and "x.com/path" too):
`off_site_addresses` finds them (`bridge.inline_links`) and judges each with the link guard
(`bridge.links.link_problem`). A unit with one is never used; one in the title is removed,
and an item whose title is little more than such an address is held (`address_problem`).
Addresses on the feed's own domains stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from bridge import render
from bridge.facts import is_verbatim, unsupported_facts
from bridge.inline_links import Address, find_addresses
from bridge.item import Alert, Item
from bridge.links import link_problem
from bridge.sentences import is_complete_sentence, split_sentences
from bridge.template import DEFAULT_TEMPLATE, Template
from bridge.text import clean_title, strip_boilerplate

__all__ = [
    "AddressOnlyTitleError",
    "LinkTooLongError",
    "TitleScreen",
    "address_problem",
    "build_alert",
    "is_thin",
    "lead_units",
    "off_site_addresses",
    "screen_title",
]


class LinkTooLongError(ValueError):
    """The item's link alone does not fit in `max_length`: no alert can honour the limit.

    Seen in real feeds (portal URLs of 400+ characters). The caller decides: hold and
    report the item, or raise `[alerts] max_length` for that feed.
    """

    hint = "raise [alerts] max_length, or report the over-long link to the site's editors"


class AddressOnlyTitleError(ValueError):
    """The item's title is little more than a web address off the feed's domains: removing
    the address leaves nothing to post, posting it would send citizens elsewhere. The item
    is held and reported."""

    hint = ("if the site really lives on that domain, add it to the feed's link_domains in config.toml; "
            "otherwise ask the site's editors to give the item a title")


_MAX_UNITS = 2
_ELLIPSIS = "…"
_NON_WORD_RE = re.compile(r"[\W_]+")
# A title keeps at least this many words of two letters or more once addresses are removed.
_TITLE_MIN_WORDS = 2
_LEAD_LINE_MIN_WORDS = 4
# A cut sentence keeps at least this many words (and a third of the room), or the summary is empty.
_CUT_MIN_WORDS = 6
# Words that cannot end a line or a cut: a line ending on one was cut off by the CMS.
_FUNCTION_WORDS = frozenset(
    """
    a ad al all allo alla ai agli alle che chi con col coi come da dal dall dallo dalla dai dagli
    dalle del dell dello della dei degli delle di e ed fra gli i il in l la le lo ma ne nel nell
    nello nella nei negli nelle non o od per più se sia sotto su sul sull sullo sulla sui sugli
    sulle tra un una uno verso ovvero oppure quale quali cui tramite presso via ore
    """.split()
)
_MONTHS = (
    "gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|dicembre"
)
_WEEKDAYS = "luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica"
# A line that is only a date (and maybe a time): a listing's publication date, not a lead.
_DATE_LINE_RE = re.compile(
    rf"^(?:(?:{_WEEKDAYS}),?\s+)?\d{{1,2}}\s+(?:{_MONTHS})\s+\d{{4}}(?:\s*[-,]?\s*(?:ore\s+)?\d{{1,2}}[.:]\d{{2}})?$",
    re.I,
)
_CUT_OFF_END_RE = re.compile(r"(?:\.\.|…|[,;:(/'’\-–—])$")
# Clause boundaries for cutting a long sentence: after , ; : or before a dash or bracket.
_CLAUSE_RE = re.compile(r"[,;:](?=\s)|\s(?=[-–—]\s)|\s(?=\()")
_CLOSERS = "\"”»’')]"


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str  # as it goes into the summary
    complete: bool  # a whole sentence of the source (else a lead line closed with ".")


def _comparable(text: str) -> str:
    """Case- and punctuation-insensitive form, to recognise a title repeated in the text."""
    return _NON_WORD_RE.sub(" ", text.casefold()).strip()


def _repeats_title(key: str, title_key: str) -> bool:
    """True when a unit (comparable form `key`) only repeats the title.

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


def _is_all_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters if c.isupper() or c.islower())


def _lead_line(line: str) -> _Unit | None:
    """`line` as a lead unit closed with ".", or None when it does not read as a whole one.

    A whole source line of at least four words (three of them words of letters), ending
    on a letter, digit, closing bracket or quote, not on a function word ("di", "per",
    "la"), an ellipsis or a comma/dash; not a bare date line, not an all-caps heading.
    """
    words = line.split()
    if len(words) < _LEAD_LINE_MIN_WORDS:
        return None
    if sum(1 for w in words if sum(c.isalpha() for c in w) >= 2) < 3:
        return None
    if _CUT_OFF_END_RE.search(line) or _DATE_LINE_RE.match(line) or _is_all_caps(line):
        return None
    last = line[-1]
    if not (last.isalnum() or last in _CLOSERS):
        return None  # an emoji or a symbol: no place for a period
    if _comparable(words[-1]).split(" ")[-1] in _FUNCTION_WORDS:
        return None
    return _Unit(f"{line}.", complete=False)


def off_site_addresses(text: str, *, feed_url: str = "", link_domains: Iterable[str] = ()) -> list[Address]:
    """The web addresses in `text` (`bridge.inline_links.find_addresses`: scheme URLs, "www."
    names, bare host names) that the link guard would not let an item of the feed at
    `feed_url` link to (`bridge.links.link_problem`), in order. With no `feed_url` and no
    `link_domains`, every address is off-site."""
    domains = tuple(link_domains)
    return [a for a in find_addresses(text) if link_problem(a.url, feed_url=feed_url, link_domains=domains)]


@dataclass(frozen=True, slots=True)
class TitleScreen:
    """A title with its off-site addresses removed (`text`), the addresses as written
    (`removed`), and why the item must be held instead (`problem`, None when it need not)."""

    text: str
    removed: tuple[str, ...] = ()
    problem: str | None = None


_EMPTY_BRACKETS_RE = re.compile(r"\(\s*\)|\[\s*\]|«\s*»|“\s*”|\"\s*\"")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,.;:!?)\]»”])")
_DANGLING = " \t,;:|/-–—(«“\"'"


def _without_dangling_words(text: str) -> str:
    """`text` without the connectors left hanging at its end ("Iscrizioni su", "Info:")."""
    words = text.rstrip(_DANGLING).split(" ")
    while words and words[-1] and _comparable(words[-1]) in _FUNCTION_WORDS:
        words.pop()
        words = " ".join(words).rstrip(_DANGLING).split(" ")
    return " ".join(words)


def screen_title(title: str, *, feed_url: str = "", link_domains: Iterable[str] = ()) -> TitleScreen:
    """Remove from `title` (a cleaned title) every address off the feed's domains
    (`off_site_addresses`), with the words left hanging before it ("su", "al link:") and
    the brackets left empty. When fewer than two words of two letters or more remain, the
    item must be held: `problem` says why. A title without off-site addresses comes back
    unchanged. Pure."""
    found = off_site_addresses(title, feed_url=feed_url, link_domains=link_domains)
    if not found:
        return TitleScreen(title)
    pieces: list[str] = []
    position = 0
    for address in found:
        pieces.append(_without_dangling_words(title[position : address.start]))
        position = address.end
    pieces.append(title[position:])
    text = " ".join(piece.strip() for piece in pieces if piece.strip())
    text = _EMPTY_BRACKETS_RE.sub("", text)
    text = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", " ".join(text.split()))
    text = _without_dangling_words(text).strip(" \t,;:|/-–—")
    removed = tuple(address.written for address in found)
    words = [w for w in text.split() if sum(c.isalpha() for c in w) >= 2]
    if len(words) < _TITLE_MIN_WORDS:
        where = ", ".join(removed)
        return TitleScreen(text, removed, f"the title is little more than an address outside the feed's domains "
                                          f"({where})")
    return TitleScreen(text, removed)


def address_problem(item: Item, *, feed_url: str = "", link_domains: Iterable[str] = ()) -> str | None:
    """Why `item` is held for the addresses in its title (see `screen_title`), or None.
    Addresses in its text never hold it: the sentences with one are simply not used."""
    return screen_title(clean_title(item.title), feed_url=feed_url, link_domains=link_domains).problem


def lead_units(
    text: str, title: str, *, feed_url: str = "", link_domains: Iterable[str] = ()
) -> list[_Unit]:
    """The units of `text` that may open the summary, in order, at most two.

    Boilerplate is stripped; leading lines equal to the title and units that only repeat
    the title are skipped. The first unit may be a lead line (see `_lead_line`), the others
    are whole sentences. The list stops at the first fragment after a usable unit, so the
    summary never skips over text to reach a later one. Units with a web address off the
    feed's domains (`off_site_addresses`; all of them without `feed_url` and `link_domains`)
    are never used: the alert's only outside link would be one nobody checked.
    """
    domains = tuple(link_domains)
    body = strip_boilerplate(text)
    title_key = _comparable(title)
    units: list[_Unit] = []
    for line in body.split("\n"):
        if not line.strip():
            continue
        segments = split_sentences(line)
        for segment in segments:
            key = _comparable(segment)
            if not key or (not units and _repeats_title(key, title_key)):
                continue
            unit: _Unit | None = None
            if off_site_addresses(segment, feed_url=feed_url, link_domains=domains):
                unit = None
            elif is_complete_sentence(segment) and not _repeats_title(key, title_key):
                unit = _Unit(segment, complete=True)
            elif not units and len(segments) == 1:
                unit = _lead_line(segment)
            if unit is None:
                if units:
                    return units
                if len(segments) == 1:
                    break  # a heading or a date line before the lead: look at the next line
                return units  # a fragment inside prose: what follows it is not the lead
            units.append(unit)
            if len(units) == _MAX_UNITS or not unit.complete:
                # A lead line stands alone: what follows it is the body, often a repeat.
                return units
    return units


def is_thin(item: Item) -> bool:
    """True when the feed gives no whole sentence to summarise the item: its text and
    content are empty, equal the title, are cut off, or have only fragments or a lead line.
    The caller may then fetch the article page (`bridge.article`)."""
    title = clean_title(item.title)
    return not any(unit.complete for source in (item.text, item.content) for unit in lead_units(source, title))


def _cut(sentence: str, room: int) -> str:
    """`sentence` cut to at most `room` characters with "…": at the last clause boundary in
    the second half of the room, else after the last whole word; trailing function words,
    numbers, abbreviations and punctuation go. "" when fewer than `_CUT_MIN_WORDS` words or
    less than a third of the room would remain."""
    if len(sentence) <= room:
        return sentence
    limit = room - len(_ELLIPSIS)
    if limit <= 0:
        return ""
    head = sentence[: limit + 1]  # one more: a space right after the room is a word end
    clauses = [m.start() for m in _CLAUSE_RE.finditer(head) if limit // 2 <= m.start() <= limit]
    if clauses:
        head = head[: clauses[-1]]
    else:
        space = head.rfind(" ")
        if space <= 0:
            return ""
        head = head[:space]
    words = head.split()
    # "chiuso dal 3…" would read as an open-ended closure: a cut never ends on a number or
    # on a word that needs the next one.
    # Nor on an abbreviation ("degli artt. nn."), whose period is not a sentence end.
    while words and (
        _comparable(words[-1]) in _FUNCTION_WORDS
        or not _comparable(words[-1])
        or any(c.isdigit() for c in words[-1])
        or words[-1].endswith(".")
    ):
        words.pop()
    head = " ".join(words).rstrip(" ,;:.-–—(«“\"'’")
    # A stub ("Ora il testo sarà…") says less than the title: better title + link.
    if len(head.split()) < _CUT_MIN_WORDS or len(head) < room // 3:
        return ""
    return head + _ELLIPSIS


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


def _units(item: Item, title: str, article: str, feed_url: str, link_domains: tuple[str, ...]) -> list[_Unit]:
    """The units of the first source with a whole sentence (feed text, feed content, article
    lead), else the first source's lead line, else []."""
    found = [lead_units(source, title, feed_url=feed_url, link_domains=link_domains)
             for source in (item.text, item.content, article) if source]
    for units in found:
        if units and units[0].complete:
            return units
    for units in found:
        if units:
            return units
    return []


def build_alert(
    item: Item,
    *,
    feed_name: str,
    max_length: int = 400,
    urgent: bool = False,
    article: str = "",
    template: Template = DEFAULT_TEMPLATE,
    feed_url: str = "",
    link_domains: Iterable[str] = (),
) -> Alert:
    """Return the alert for `item`: title, up to two lead units, link.

    The summary comes from `item.text` (the feed's description), else `item.content`, else
    `article` (the plain-text lead of the article page, see `bridge.article`), as described
    in the module docstring; it is "" when nothing usable fits or the fact guard fails. The
    title is `item.title` cleaned with `clean_title` and shortened at a word boundary with
    "…" only when title + link alone exceed the limit. Lengths are measured with
    `render.plain(alert, template)`, which is always `<= max_length`. Deterministic.
    Addresses off the domains of the feed at `feed_url` and of `link_domains` (every
    address, without either) are removed from the title, and units with one are not used
    (see the module docstring).

    Raise ValueError if `item.link` is None; raise LinkTooLongError (a ValueError) if the
    link alone leaves no room for a title within `max_length`; raise AddressOnlyTitleError
    (a ValueError) when the title is little more than an off-site address
    (`address_problem` says so beforehand).
    """
    if item.link is None:
        raise ValueError(f"item of feed {item.feed_id!r} has no link; it cannot become an alert")
    domains = tuple(link_domains)
    screened = screen_title(clean_title(item.title), feed_url=feed_url, link_domains=domains)
    if screened.problem is not None:
        raise AddressOnlyTitleError(screened.problem)
    full_title = screened.text
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

    def length(candidate: Alert) -> int:
        return len(render.plain(candidate, template))

    # Lengths are measured on render.plain itself, the canonical measure, so a change of
    # layout there cannot silently break the limit here (a one-character title stands in
    # for any title, as an empty one would drop its separator).
    title_room = max_length - length(replace(alert, title="T")) + 1
    if title_room < len(_ELLIPSIS) + 1:
        raise LinkTooLongError(
            f"link of {len(item.link)} characters leaves no room for a title in max_length={max_length}"
        )
    alert = replace(alert, title=_shorten(full_title, title_room))

    summary = ""
    for unit in _units(item, full_title, article, feed_url, domains):
        candidate = f"{summary} {unit.text}" if summary else unit.text
        if length(replace(alert, summary=candidate)) <= max_length:
            summary = candidate
            continue
        if not summary:
            # One unit, too long: cut it, measuring the room with a one-character summary.
            room = max_length - length(replace(alert, summary="S")) + 1
            summary = _cut(unit.text, room)
        break

    # The source as read and as summarised: without boilerplate, a lead line may end where
    # "Tempo di lettura: 1 min" began.
    texts = (item.text, item.content, article)
    source = "\n".join((item.title, full_title, *texts, *(strip_boilerplate(t) for t in texts if t)))
    if summary and (unsupported_facts(f"{alert.title}\n{summary}", source) or not is_verbatim(summary, source)):
        summary = ""
    return replace(alert, summary=summary)
