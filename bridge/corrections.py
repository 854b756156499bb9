"""Corrections: whether an item changed at its source "in what matters" since it was posted,
and the text of the "Rettifica:" follow-up that says so. Pure.

What matters is what a citizen acts on: the title, and the dates, times, numbers and places
the alert's text gives. A change counts when something the post said is no longer what the
source says:

- the title, unless the two differ only at typo level: punctuation, case, whitespace, an
  accent, or a small spelling fix within a word (never a digit);
- a date, a time or a number of the title or the summary that is gone or replaced (a new
  one added beside those already said is more news, not a correction);
- a place (a street, a square, "presso ...", "a/in" + a name) replaced by another, beyond a
  small spelling fix of its name.

Dates are what `bridge.facts` reads as dates (the fact guard's reading, so both agree);
times are "10.30", "15:00", "ore 21"; numbers are every other figure. `what_changed` answers
with the changes in Italian words for an editor and in English for the log.

`correction_mode` says how a correction is followed on one channel (`corrections` of the
feed or [defaults], else of the channel): "edit" the post in place, "post" a "Rettifica:"
follow-up, "ask" an editor, "off" only record it. Without a setting: "ask" where approval mode
applies (an editor already vets what goes out, so they vet what changes it), else "edit": a
corrected post is what a citizen should read, and an edit adds no second message to the
channel; where the platform cannot edit the post (`EditUnsupported`) a "Rettifica" follow-up
goes out instead, so a correction is never lost.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from bridge.approval import needs_approval
from bridge.facts import date_mentions, fact_tokens
from bridge.item import Alert, Item

if TYPE_CHECKING:
    from bridge.config import ChannelConfig, FeedConfig
    from bridge.models import Post

__all__ = ["CORRECTION_PREFIX", "Change", "Correction", "Version", "correction_alert", "correction_mode",
           "posted_version", "what_changed"]

EDIT = "edit"
POST = "post"
ASK = "ask"
OFF = "off"
#: The audit trail's name for a correction the bridge queued (by `channel-bridge`, from `daemon`).
CORRECTION = "correction"
#: ... and a correction that could not be an edit, sent as a "Rettifica" post instead.
AS_POST = "correction-as-post"

#: At most this many corrections follow one post; a later change is only recorded (in the
#: log), so an item edited back and forth at its source does not flood the channel.
MAX_CORRECTIONS = 3


def item_digest(item: Item) -> str:
    """A fingerprint of what a feed says of an item (title, text, content, as parsed): equal
    on every poll while the item is unchanged, so only a changed item is compared (its alert
    made again and `what_changed` asked). Cheap: a hash of text the parse already made."""
    digest = hashlib.sha256()
    for part in (item.title, item.text, item.content):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def correction_id(posted_id: str, digest: str) -> str:
    """The delivery id of the correction of post `posted_id` to the item's version `digest`:
    one per change, so a second poll of the same change adds nothing."""
    return f"{posted_id}~{digest[:12]}"


def rettifica(current: Alert, note: str) -> Alert:
    """`correction_alert` from the stored words of what changed (`Correction.italian`)."""
    return replace(current, title=CORRECTION_PREFIX + current.title, summary=note, image_url=None)

#: How a "Rettifica" follow-up's title starts.
CORRECTION_PREFIX = "Rettifica: "

# The kinds of change, in the order they are reported, with the editor's (Italian) and the
# log's (English) name for each.
_KINDS = {
    "title": ("il titolo", "title"),
    "date": ("la data", "date"),
    "time": ("l'orario", "time"),
    "number": ("un numero", "number"),
    "place": ("il luogo", "place"),
}

_TIME_RE = re.compile(
    r"(?<![\d.,:/])(?:[01]?\d|2[0-3])[:.][0-5]\d(?![\d]|[.,:/]\d)|\bore\s+(?:[01]?\d|2[0-3])\b(?![.,:/]\d)",
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(r"\d+(?:[.,:/'’-]\d+)*")
_CALENDAR_WORD_RE = re.compile(
    r"\b(?:gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|"
    r"dicembre|luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica)\b",
    re.IGNORECASE,
)
# A place: a street word (or "presso") and the name after it, up to punctuation, a figure or
# a word that starts something else; or "a"/"in"/"al"... and a capitalised name.
_STREET_WORDS = (r"via|viale|piazza|piazzale|p\.zza|corso|largo|vicolo|contrada|strada|"
                 r"località|loc\.|frazione|fraz\.|presso")
_PLACE_RE = re.compile(rf"\b(?:{_STREET_WORDS})\s+[^\s,.;:!?()«»\"\d][^,.;:!?()«»\"\n\d]*", re.IGNORECASE)
_NAMED_PLACE_RE = re.compile(
    r"\b(?:a|ad|al|alla|allo|all'|all’|in|nel|nella|nello)\s+"
    r"([A-ZÀ-Ý][\w'’-]*(?:\s+(?:(?:d[ei]|del|della|dei|degli|di)\s+)?[A-ZÀ-Ý][\w'’-]*)*)"
)
# Words that end a place's name: what follows is a time, a date or another clause.
_PLACE_STOP = {"alle", "dalle", "dal", "dallo", "al", "ore", "per", "e", "ed", "con", "dove", "che",
               "fino", "entro", "da", "tra", "nel", "nella", "in", "a", "il", "lo", "la", "le", "ai",
               "dai", "sarà", "sara", "è", "e'", "resterà", "rimarrà", "chiusa", "chiuso", "aperta",
               "aperto", "dalla", "alla", "verso", "oggi", "domani"}
_PLACE_WORDS = 6
_ARTICLES = {"il", "lo", "la", "l", "i", "gli", "le"}
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Version:
    """The words of an item that a correction compares: its title and its summary (as
    posted, or as the feed now gives them)."""

    title: str
    summary: str = ""

    @classmethod
    def of(cls, alert: Alert) -> Version:
        return cls(alert.title, alert.summary)


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that changed: `kind` ("title", "date", "time", "number", "place"), what the
    post said (`before`) and what the source says now (`after`, "" when it says nothing in
    its place)."""

    kind: str
    before: str
    after: str

    @property
    def italian(self) -> str:
        """"la data era «24 agosto», ora è «26 agosto»" (or "..., ora non compare più")."""
        name = _KINDS[self.kind][0]
        now = f"ora è «{self.after}»" if self.after else "ora non compare più"
        return f"{name} era «{self.before}», {now}"

    @property
    def english(self) -> str:
        """"date "24 agosto" -> "26 agosto"" (or "... -> (none)")."""
        now = f'"{self.after}"' if self.after else "(none)"
        return f'{_KINDS[self.kind][1]} "{self.before}" -> {now}'


@dataclass(frozen=True, slots=True)
class Correction:
    """What changed in what matters, in the order of `_KINDS` (at least one change)."""

    changes: tuple[Change, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(change.kind for change in self.changes)

    @property
    def italian(self) -> str:
        """The changes for an editor, one sentence: "Aggiornato: la data era «...», ora è «...»."."""
        label = "Aggiornato: " if len(self.changes) == 1 else "Aggiornati: "
        return label + "; ".join(change.italian for change in self.changes) + "."

    @property
    def english(self) -> str:
        """The changes for the log, one line."""
        return "changed: " + "; ".join(change.english for change in self.changes)


def what_changed(posted: Version, current: Version) -> Correction | None:
    """Compare what was posted for an item with the item as its feed now gives it; return the
    changes that matter (see the module docstring), or None when there is none: the texts
    are equal, or differ only at typo level, or only add facts. A title that changed only in
    its dates, times or numbers is reported as those, not as a new title."""
    changes: list[Change] = []
    if not _same_at_typo_level(_without_figures(posted.title), _without_figures(current.title)):
        changes.append(Change("title", posted.title, current.title))
    before = _facts(f"{posted.title}\n{posted.summary}")
    after = _facts(f"{current.title}\n{current.summary}")
    for kind in ("date", "time", "number"):
        gone = before[kind] - after[kind]
        if gone:
            new = after[kind] - before[kind]
            changes.append(Change(kind, _listed(gone, before.spelling), _listed(new, after.spelling)))
    gone_places = Counter({p: n for p, n in before["place"].items() if not any(_close(p, q) for q in after["place"])})
    new_places = Counter({q: n for q, n in after["place"].items() if not any(_close(q, p) for p in before["place"])})
    if gone_places and new_places:
        changes.append(Change("place", _listed(gone_places, before.spelling), _listed(new_places, after.spelling)))
    return Correction(tuple(changes)) if changes else None


def posted_version(post: Post) -> Version | None:
    """The version of the item a post was made from (its title and summary as the feed gave
    them then), or None for a post recorded without one: such a post gets no correction."""
    if post.version is None:
        return None
    return Version(*post.version)


def correction_mode(feed: FeedConfig | None, channel: ChannelConfig | None) -> str:
    """How a correction of `feed`'s item is followed on `channel`: the feed's `corrections`
    (or [defaults]'), else the channel's, else "ask" where approval mode applies and "edit"
    elsewhere (see the module docstring)."""
    mode = (feed.corrections if feed is not None else None) or (
        channel.corrections if channel is not None else None)
    if mode is not None:
        return mode
    return ASK if needs_approval(feed, channel) else EDIT


def correction_alert(current: Alert, correction: Correction) -> Alert:
    """The "Rettifica:" follow-up of a posted alert whose item changed: its title is
    "Rettifica: " and the item's current title, its summary says what changed (Italian), its
    link is the item's own, and it carries no image (it is a short notice, not the news
    again). Every channel renders and fits it as any alert (`bridge.channels.outgoing_for`);
    a fitting that must cut, cuts the summary, never the title's prefix or the link."""
    return rettifica(current, correction.italian)


# -- reading the facts ---------------------------------------------------------------------


class _Facts(dict[str, Counter[str]]):
    """The facts of one text by kind, as multisets of folded keys; `spelling` gives each key
    as the text first wrote it (what an editor reads)."""

    def __init__(self) -> None:
        super().__init__((kind, Counter()) for kind in ("date", "time", "number", "place"))
        self.spelling: dict[str, str] = {}

    def add(self, kind: str, key: str, written: str) -> None:
        self[kind][key] += 1
        self.spelling.setdefault(key, " ".join(written.split()))


_APOSTROPHE_ACCENT_RE = re.compile(r"(?<=\w)([aeiouAEIOU])['’](?=[\s,.;:!?]|$)")
_GRAVE = str.maketrans("aeiouAEIOU", "àèìòùÀÈÌÒÙ")


def _facts(text: str) -> _Facts:
    """The dates, times, numbers and places of `text`. A final vowel written with an
    apostrophe for its accent ("LUNEDI’", "e'") is read as the accented vowel."""
    text = unicodedata.normalize("NFKC", text)
    text = _APOSTROPHE_ACCENT_RE.sub(lambda m: m.group(1).translate(_GRAVE), text)
    facts = _Facts()
    rest = list(text)
    for start, end in date_mentions(text):
        facts.add("date", _fold(text[start:end]), text[start:end])
        rest[start:end] = " " * (end - start)
    remaining = "".join(rest)
    for match in _TIME_RE.finditer(remaining):
        facts.add("time", _time_key(match.group(0)), match.group(0))
    remaining = _TIME_RE.sub(" ", remaining)
    for match in _CALENDAR_WORD_RE.finditer(remaining):
        facts.add("date", _fold(match.group(0)), match.group(0))
    for token in fact_tokens(remaining):
        if _NUMBER_RE.fullmatch(token):
            facts.add("number", token, token)
    for match in _PLACE_RE.finditer(text):
        place = _place_name(match.group(0))
        if place:
            facts.add("place", _fold(place), place)
    for match in _NAMED_PLACE_RE.finditer(text):
        facts.add("place", _fold(match.group(1)), match.group(1))
    return facts


def _without_figures(title: str) -> str:
    """`title` without its dates, times and numbers (they are compared as facts)."""
    title = unicodedata.normalize("NFKC", title)
    chars = list(title)
    for start, end in date_mentions(title):
        chars[start:end] = " " * (end - start)
    return _NUMBER_RE.sub(" ", _TIME_RE.sub(" ", "".join(chars)))


def _place_name(phrase: str) -> str:
    """A street word and its name, folded, without what follows the name."""
    words = phrase.split()
    kept = [words[0]]
    for index, word in enumerate(words[1:_PLACE_WORDS + 1]):
        bare = _fold(word).strip("'’")
        if index == 0 and (bare in _ARTICLES or bare.startswith(("l'", "l’"))):
            kept.append(word)
            continue
        if bare in _PLACE_STOP:
            break
        kept.append(word)
    if len(kept) < 2 or all(_fold(w).strip("'’") in _ARTICLES for w in kept[1:]):
        return ""
    return " ".join(kept)


def _time_key(text: str) -> str:
    """"10.30", "10:30" and "ore 10" as one spelling each: "10:30", "10:00"."""
    digits = re.findall(r"\d+", text)
    hours = int(digits[0])
    minutes = int(digits[1]) if len(digits) > 1 else 0
    return f"{hours}:{minutes:02d}"


def _listed(counter: Counter[str], spelling: dict[str, str]) -> str:
    """The facts of `counter` as written, in a stable order."""
    return ", ".join(spelling.get(key, key) for key in sorted(counter.elements()))


# -- typo level ----------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Case, accents and runs of whitespace left out; apostrophes as "'"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(_fold(unicodedata.normalize("NFKC", text)))


def _same_at_typo_level(before: str, after: str) -> bool:
    """True when `after` is `before` with only punctuation, case, whitespace, accents, or a
    small spelling fix in a few words changed; a figure that changes is never a typo, nor a
    word added, removed or replaced by another."""
    old, new = _words(before), _words(after)
    if "".join(old) == "".join(new):  # spacing only: "sotto passo" / "sottopasso"
        return True
    fixed = 0
    for op, i1, i2, j1, j2 in SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        if op != "replace" or i2 - i1 != j2 - j1:
            return False
        for a, b in zip(old[i1:i2], new[j1:j2], strict=True):
            if not _spelling_fix(a, b):
                return False
            fixed += 1
    return fixed <= max(1, len(old) // 4)


def _spelling_fix(a: str, b: str) -> bool:
    """Two spellings of one word: no figure in either, and at most one edit (two in a word of
    eight letters or more)."""
    if any(char.isdigit() for char in a + b):
        return False
    return _distance(a, b) <= (2 if min(len(a), len(b)) >= 8 else 1)


def _close(a: str, b: str) -> bool:
    """Two place names that are one place spelt twice (a letter or two apart)."""
    return a == b or _distance(a, b) <= (2 if min(len(a), len(b)) >= 10 else 1)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (adjacent swaps count one), for short words."""
    previous = list(range(len(b) + 1))
    before_previous: list[int] = []
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            cost = 0 if char_a == char_b else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                value = min(value, before_previous[j - 2] + 1)
            current.append(value)
        before_previous, previous = previous, current
    return previous[-1]
