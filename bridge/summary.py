"""Item -> Alert: the title, one or two lead units of the item's own text, the link. Pure.

The summary is extractive and verbatim (SPEC 5: "the summary never says anything the source
does not"). Its units, in source order, news being written lead-first:

- *sentences*: whole sentences of the text (`bridge.sentences`), as written;
- a *lead line*: most comune feeds (OpenCity, MyPortal, Design Comuni) give a subtitle line
  without final punctuation ("Illuminazione più omogenea per una maggiore sicurezza"). A
  whole source line of at least four words that does not look cut off (no ellipsis, no
  trailing comma, dash or preposition, not a bare date, not a heading in capitals) is used
  as the first unit, closed with a "." where its paragraph ends, with "…" where the
  paragraph goes on -- the one character the summary may add.

The text is read first (`_lines`): a line the feed broke inside a sentence is joined to the
next one ("la raccolta dei rifiuti" + "NON sarà effettuata"), an all-caps text is put in
sentence case as titles are, bureaucratic formulas ("Si rende noto che", "con deliberazione
di Giunta Comunale n. 85 del ...") are dropped: words are removed, never added. When the
item names a date that neither its title nor its lead says, its own when/where line
("QUANDO: Domenica 27 settembre 2026, ...") or dated sentence goes after the first lead
unit, or alone when both do not fit.

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
from bridge.facts import has_date, is_verbatim, unsupported_facts
from bridge.inline_links import Address, find_addresses
from bridge.item import Alert, Item
from bridge.links import link_problem
from bridge.sentences import is_complete_sentence, split_sentences
from bridge.template import DEFAULT_TEMPLATE, Template
from bridge.text import clean_title, drop_formulas, is_shouted, restore_case, strip_boilerplate

__all__ = [
    "TITLE_ROOM_BESIDE_LONG_LINK",
    "AddressOnlyTitleError",
    "TitleScreen",
    "address_problem",
    "build_alert",
    "excess",
    "is_thin",
    "lead_units",
    "off_site_addresses",
    "screen_title",
]


# Room for the title when an over-long link leaves none within the limit: the link is never
# cut and the item never dropped for it.
TITLE_ROOM_BESIDE_LONG_LINK = 120


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
    complete: bool  # a whole sentence of the source (else a lead line closed with "." or "…")


@dataclass(frozen=True, slots=True)
class _Line:
    """A line of the text as the summary reads it: its sentences and fragments, and
    whether its paragraph goes on after it (then it may not be closed with a ".")."""

    segments: tuple[str, ...]
    goes_on: bool
    shouted: bool = False  # the whole text was in capitals (its case restored here)


# A line that ends a sentence: terminal punctuation, maybe closing quotes, maybe emoji.
_ENDS_SENTENCE_RE = re.compile(rf"[.!?…][{re.escape(_CLOSERS)}]*(?:\s*[^\w\s.!?,;:]+)*$")
_FIRST_WORD_RE = re.compile(r"^[^\w]*(\w+)")
_WEEKDAY_START_RE = re.compile(rf"^(?:{_WEEKDAYS})\s+\d", re.I)


def _continues(line: str, following: str) -> bool:
    """True when `following`, the next line of the same paragraph, goes on with the sentence
    `line` leaves open: `line` has no sentence end and either ends on a comma, colon, dash
    or a word that needs the next one ("la raccolta dei rifiuti" + "NON sarà effettuata",
    "QUANDO:" + "Domenica 27 settembre"), or `following` opens with a lower-case word, a
    number after a lower-case word ("per l'anno scolastico" + "2025/2026 sono tenute"), a
    shouted word in a line that is not a heading ("NON sarà effettuata"), or a weekday and
    a day ("Venerdì 14 agosto")."""
    if _ENDS_SENTENCE_RE.search(line):
        return False
    if re.search(r"[,;:(\-–—/]$", line) or _comparable(line.split()[-1]).split(" ")[-1] in _FUNCTION_WORDS:
        return True
    first = _FIRST_WORD_RE.match(following)
    if first is None:
        return False
    word = first.group(1)
    if word[0].islower():
        return True
    if word[0].isdigit():
        return line[-1].islower()
    if len(word) >= 2 and word.isupper() and not is_shouted(following):
        return True
    return _WEEKDAY_START_RE.match(following) is not None


def _lines(text: str) -> list[_Line]:
    """The lines of `text` as the summary reads them.

    Boilerplate is stripped (`strip_boilerplate`); lines that go on with the sentence of
    the line before (`_continues`) are joined to it; each line is split into sentences
    (`split_sentences`); a shouted text (all of it in capitals) is put in sentence case as
    titles are (`restore_case`); bureaucratic formulas are dropped from each sentence
    (`drop_formulas`). Only the item's own words remain, in their order.
    """
    body = strip_boilerplate(text)
    shouted = is_shouted(body)
    out: list[_Line] = []
    for paragraph in body.split("\n\n"):
        joined: list[str] = []
        for line in paragraph.split("\n"):
            line = line.strip()
            if not line:
                continue
            if joined and _continues(joined[-1], line):
                joined[-1] = f"{joined[-1]} {line}"
            else:
                joined.append(line)
        for index, line in enumerate(joined):
            segments = split_sentences(line)
            if shouted:
                segments = [restore_case(segment) for segment in segments]
            segments = [kept for kept in (drop_formulas(segment) for segment in segments) if kept]
            if segments:
                out.append(_Line(tuple(segments), goes_on=index < len(joined) - 1, shouted=shouted))
    return out


def _read_text(lines: list[_Line]) -> str:
    """`lines` as text again (paragraph ends where no line goes on): what the fact guard
    takes as the source the summary was read from."""
    parts: list[str] = []
    for line in lines:
        parts.append(" ".join(line.segments))
        parts.append("\n" if line.goes_on else "\n\n")
    return "".join(parts)


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


def _lead_line(line: str, *, goes_on: bool = False) -> _Unit | None:
    """`line` as a lead unit, or None when it does not read as a whole one.

    A whole source line of at least four words (three of them words of letters), or of
    two with a date ("15/08/2026 chiuso"), ending on a letter, digit, closing bracket or
    quote, not on a function word ("di", "per", "la"), an ellipsis or a comma/dash; not a
    bare date line, not an all-caps heading. It is closed with "." when its paragraph ends
    there, and with "…" when the paragraph goes on (the source says more than the line).
    """
    words = line.split()
    letter_words = sum(1 for w in words if sum(c.isalpha() for c in w) >= 2)
    dated = has_date(line) and len(words) >= 2 and letter_words >= 1
    if len(words) < _LEAD_LINE_MIN_WORDS and not dated:
        return None
    if letter_words < 3 and not dated:
        return None
    if _CUT_OFF_END_RE.search(line) or _DATE_LINE_RE.match(line) or _is_all_caps(line):
        return None
    last = line[-1]
    if not (last.isalnum() or last in _CLOSERS):
        return None  # an emoji or a symbol: no place for a period
    if _comparable(words[-1]).split(" ")[-1] in _FUNCTION_WORDS:
        return None
    return _Unit(f"{line}{_ELLIPSIS if goes_on else '.'}", complete=False)


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

    The text is read as `_lines` reads it (boilerplate and formulas out, broken lines
    joined); leading lines equal to the title and units that only repeat the title are
    skipped. The first unit may be a lead line (see `_lead_line`), the others are whole
    sentences; in a shouted text, the last fragment of a paragraph after whole sentences
    may close it as a lead line does. The list stops at the first fragment after a usable unit, so the
    summary never skips over text to reach a later one. Units with a web address off the
    feed's domains (`off_site_addresses`; all of them without `feed_url` and
    `link_domains`) are never used: the alert's only outside link would be one nobody
    checked.
    """
    return _lead_units(_lines(text), title, feed_url=feed_url, link_domains=tuple(link_domains))


def _lead_units(lines: list[_Line], title: str, *, feed_url: str, link_domains: tuple[str, ...]) -> list[_Unit]:
    title_key = _comparable(title)
    units: list[_Unit] = []
    for line in lines:
        segments = line.segments
        for position, segment in enumerate(segments):
            key = _comparable(segment)
            if not key or (not units and _repeats_title(key, title_key)):
                continue
            unit: _Unit | None = None
            last = position == len(segments) - 1
            if off_site_addresses(segment, feed_url=feed_url, link_domains=link_domains):
                unit = None
            elif is_complete_sentence(segment) and not _repeats_title(key, title_key):
                unit = _Unit(segment, complete=True)
            elif not units and len(segments) == 1:
                unit = _lead_line(segment, goes_on=line.goes_on)
            elif line.shouted and units and units[-1].complete and last and not line.goes_on:
                # A shouted notice rarely closes its last sentence: "15/08/2026 CHIUSO.
                # 14/08/2026 APERTURA STRAORDINARIA". Elsewhere a last fragment is often a
                # description cut by the feed, and is left out.
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


# The item's own when/where lines: "QUANDO: Domenica 27 settembre", "DOVE: Piazza Garibaldi",
# "Orari: 9-12".
_WHEN_WHERE_RE = re.compile(
    r"^(?:QUANDO|DOVE|ORARI|ORARIO|DATA|DATE|LUOGO|SCADENZA|Quando|Dove|Orari|Orario|Data|Luogo|Scadenza)"
    r"(?:\s+e\s+(?:DOVE|dove|ORARI|orari))?\s*:\s*\S",
)


def _when_units(lines: list[_Line], title: str, *, feed_url: str, link_domains: tuple[str, ...]) -> list[_Unit]:
    """The item's own lines that say when or where, in order: a line labelled "QUANDO:",
    "DOVE:", "ORARI:" (and the like), a whole sentence with a date. Each is a whole
    sentence or a line closed as `_lead_line` closes it."""
    title_key = _comparable(title)
    found: list[_Unit] = []
    for line in lines:
        for position, segment in enumerate(line.segments):
            key = _comparable(segment)
            if not key or _repeats_title(key, title_key):
                continue
            if off_site_addresses(segment, feed_url=feed_url, link_domains=link_domains):
                continue
            labelled = _WHEN_WHERE_RE.match(segment) is not None
            if not (labelled or has_date(segment)):
                continue
            if is_complete_sentence(segment):
                found.append(_Unit(segment, complete=True))
            elif labelled and position == len(line.segments) - 1:
                unit = _lead_line(segment, goes_on=line.goes_on)
                if unit is not None:
                    found.append(unit)
    return found


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


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one source of an item offers the summary: its lines as read, its lead units,
    the text as read (for the fact guard) and whether it names a date."""

    lines: list[_Line]
    units: list[_Unit]
    read: str
    dated: bool


def _reading(source: str, title: str, feed_url: str, link_domains: tuple[str, ...]) -> _Reading:
    lines = _lines(source)
    read = _read_text(lines)
    return _Reading(
        lines=lines,
        units=_lead_units(lines, title, feed_url=feed_url, link_domains=link_domains),
        read=read,
        dated=has_date(read),
    )


def _choose(readings: list[_Reading]) -> _Reading | None:
    """The reading of the first source with a whole sentence (feed text, feed content,
    article lead), else the first with a lead line, else None."""
    for reading in readings:
        if reading.units and reading.units[0].complete:
            return reading
    for reading in readings:
        if reading.units:
            return reading
    return None


def _dated_alternatives(
    reading: _Reading, title: str, feed_url: str, link_domains: tuple[str, ...]
) -> list[list[_Unit]]:
    """Unit lists to try, best first, when the lead units say no date that the item names:
    the first lead unit with the item's own when/where line after it ("QUANDO: Domenica 27
    settembre 2026, ..."), then that line alone. A preamble without a date says less than
    the line with it."""
    when = [unit for unit in _when_units(reading.lines, title, feed_url=feed_url, link_domains=link_domains)
            if has_date(unit.text)]
    if not when:
        return []
    first = when[0]
    lead = reading.units
    tries = [[lead[0], first]] if lead and lead[0] != first and lead[0].complete else []
    return [*tries, [first]]


def excess(
    alert: Alert, *, max_length: int, template: Template = DEFAULT_TEMPLATE, platform: render.Platform | None = None
) -> int:
    """How many characters `alert` is over its limits (0 or less: it fits): `max_length`
    on `render.plain(alert, template)` (the `[alerts] max_length` measure), and the
    `platform`'s own limit as the platform counts (`render.Platform.measure`). The one
    measure of an alert's length: `build_alert` fits with it, a caller reports with it."""
    over = len(render.plain(alert, template)) - max_length
    if platform is not None:
        over = max(over, platform.measure(alert, template) - platform.text_limit)
    return over


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
    platform: render.Platform | None = None,
) -> Alert:
    """Return the alert for `item`: title, up to two lead units, link.

    The summary comes from `item.text` (the feed's description), else `item.content`, else
    `article` (the plain-text lead of the article page, see `bridge.article`), as described
    in the module docstring; it is "" when nothing usable fits or the fact guard fails. The
    title is `item.title` cleaned with `clean_title` and shortened at a word boundary with
    "…" only when title + link alone exceed the limit. Lengths are measured with `excess`:
    `render.plain(alert, template)` is `<= max_length`, and the text fits the `platform`'s
    own limit as it counts (`render.platform_for(channel type)`; None: `max_length` only),
    so no channel has to cut it again. A link that leaves no room for a title within the
    limits is never cut and the item never dropped for it: the alert is the title shortened
    to `TITLE_ROOM_BESIDE_LONG_LINK` characters and the link, beyond the limit (`excess`
    says by how much). Deterministic.
    Addresses off the domains of the feed at `feed_url` and of `link_domains` (every
    address, without either) are removed from the title, and units with one are not used
    (see the module docstring).

    Raise ValueError if `item.link` is None; raise AddressOnlyTitleError
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

    def over(candidate: Alert) -> int:
        return excess(candidate, max_length=max_length, template=template, platform=platform)

    # Lengths are measured on the renderings themselves, so a change of layout there cannot
    # silently break the limit here (a one-character title stands in for any title, as an
    # empty one would drop its separator).
    title_room = 1 - over(replace(alert, title="T"))
    if title_room < len(_ELLIPSIS) + 1:
        return replace(alert, title=_shorten(full_title, TITLE_ROOM_BESIDE_LONG_LINK))
    alert = replace(alert, title=_shorten(full_title, title_room))

    readings = [_reading(source, full_title, feed_url, domains)
                for source in (item.text, item.content, article) if source]
    chosen = _choose(readings)
    # The source as read and as summarised: without boilerplate, a lead line may end where
    # "Tempo di lettura: 1 min" began; without formulas, a sentence starts where "Si rende
    # noto che" ended.
    texts = (item.text, item.content, article)
    source = "\n\n".join((item.title, full_title, *texts, *(strip_boilerplate(t) for t in texts if t),
                           *(reading.read for reading in readings)))

    def compose(units: list[_Unit]) -> str:
        summary = ""
        for unit in units:
            candidate = f"{summary} {unit.text}" if summary else unit.text
            if over(replace(alert, summary=candidate)) <= 0:
                summary = candidate
                continue
            if not summary:
                # One unit, too long: cut it, measuring the room with a one-character summary.
                room = 1 - over(replace(alert, summary="S"))
                summary = _cut(unit.text, room)
            break
        if summary and (unsupported_facts(f"{alert.title}\n{summary}", source) or not is_verbatim(summary, source)):
            return ""
        return summary

    summary = compose(chosen.units) if chosen is not None else ""
    if chosen is not None and chosen.dated and not has_date(full_title) and not has_date(summary):
        for units in _dated_alternatives(chosen, full_title, feed_url, domains):
            candidate = compose(units)
            if has_date(candidate):
                summary = candidate
                break
    return replace(alert, summary=summary)
