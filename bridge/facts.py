"""The fact guard: an alert may only say what its source says. Pure.

Two checks, both needed by `bridge.summary.build_alert` before an alert with a summary is
accepted (SPEC 5: "every date, time, amount and name in it appears in the source"):

- `unsupported_facts`: every number (dates "12.10.2024", "15/08/2026", times "10.30",
  "15:00", amounts "1.500", "2.000,50"), month and weekday name of the alert appears in the
  source, as a whole token;
- `is_verbatim`: every piece of the summary is a verbatim run of the source (whitespace and
  the summary's own closing "." or "…" aside), so names cannot be altered either.
"""

from __future__ import annotations

import re

__all__ = ["date_mentions", "fact_tokens", "has_date", "is_verbatim", "unsupported_facts"]

# A number with its inner separators: "1.500", "2.000,50", "10:30", "15/08/2026", "2024-25".
_NUMBER_RE = re.compile(r"\d+(?:[.,:/'’-]\d+)*")
_DATE_WORD_RE = re.compile(
    r"\b(?:gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|"
    r"dicembre|luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica)\b",
    re.I,
)
_SPACE_RE = re.compile(r"\s+")
_MONTH_NAMES = "gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|dicembre"
_WEEKDAY_NAMES = "luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica"
# A calendar date: "05/08/2026", "27.09.26", "15/08", "27 settembre", "1° agosto", "domenica 27".
_DATE_RE = re.compile(
    rf"(?<![\d/.-])\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:\d{{4}}|\d{{2}})(?![\d/-]|\.\d)|"
    rf"(?<![\d/])\d{{1,2}}/\d{{1,2}}(?![\d/])|"
    rf"\b\d{{1,2}}\s*[°º]?\s+(?:{_MONTH_NAMES})\b|"
    rf"\b(?:{_WEEKDAY_NAMES})\s+\d{{1,2}}\b",
    re.I,
)


def fact_tokens(text: str) -> list[str]:
    """The numbers, month names and weekday names of `text`, in order (names lower-cased,
    "ì" and "i" not distinguished)."""
    tokens = _NUMBER_RE.findall(text)
    tokens += [m.group(0).casefold().replace("ì", "i") for m in _DATE_WORD_RE.finditer(text)]
    return tokens


def has_date(text: str) -> bool:
    """True when `text` names a calendar day: a numeric date ("05/08/2026", "15/08"), a day
    and a month ("27 settembre", "1° agosto") or a weekday and a day ("domenica 27")."""
    return _DATE_RE.search(text) is not None


def date_mentions(text: str) -> list[tuple[int, int]]:
    """The spans (start, end) of the calendar dates of `text` that `has_date` recognises, in
    order: what a comparison of two versions of one text reads as "a date"."""
    return [match.span() for match in _DATE_RE.finditer(text)]


def unsupported_facts(text: str, source: str) -> list[str]:
    """The fact tokens of `text` (see `fact_tokens`) that do not occur in `source`, in
    order; [] when every one does. A number matches only a whole number of the source:
    "1.500" is not supported by "11.500" nor by "1.500,00"."""
    known = set(fact_tokens(source))
    return [token for token in fact_tokens(text) if token not in known]


_PARAGRAPH_END = "\x00"  # NUL never occurs in normalised text


def _flat(text: str) -> str:
    """`text` without whitespace, paragraph ends ("\\n\\n") kept as a marker: a summary's
    piece never spans two paragraphs, and may span the lines of one (a sentence the feed
    broke across lines)."""
    return _SPACE_RE.sub("", re.sub(r"\n\s*\n", _PARAGRAPH_END, text))


def is_verbatim(summary: str, source: str) -> bool:
    """True when `summary` is made of runs of `source` (spaces and single line breaks
    ignored).

    The summary's pieces are its sentences as `build_alert` joined them; a piece may end
    with a "…" the source does not have (a sentence cut short, or a line the source goes on
    after), or with a "." the source does not have only where a paragraph of the source (or
    the source) ends: a lead line closed with a period. A line followed by more of its
    paragraph is never closed as if it were whole.
    """
    flat_source = _flat(source) + _PARAGRAPH_END
    for piece in _pieces(summary):
        flat_piece = _flat(piece)
        if flat_piece in flat_source:
            continue
        if piece.endswith("…") and flat_piece[:-1] in flat_source:
            continue
        if piece.endswith(".") and flat_piece[:-1] + _PARAGRAPH_END in flat_source:
            continue
        return False
    return True


def _pieces(summary: str) -> list[str]:
    """Split a summary where `build_alert` may have joined two units: after ". " / "! " /
    "? " / "… ", or after an emoji or symbol before a capital ("Fimon! 🚴 Partenza"). A
    split in the wrong place only makes the check stricter, never looser."""
    return [p for p in re.split(r"(?<=[.!?…])\s+|(?<=[^\w\s.,;:])\s+(?=[A-ZÀ-Ý])", summary) if p]
