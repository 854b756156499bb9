"""The search of the *Pubblicati* page and its CSV export, over the history. Pure: the history
is given as its months and a function that reads one month (`Store.month_posts`), which may
leave out the raw lines a quick look (`line_filter`) rules out.

A search reads only the months its dates can touch, newest first, and stops as soon as it
holds its page (and one post more, to know whether a next page exists): its cost is the months
it needs and a bounded page, never the whole history. The export reads the same months, one at
a time, with the same filter (`HistoryQuery.matches`).
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bridge.channels.waha import PostCounts
from bridge.models import Post
from bridge.spreadsheet import csv_cell

# The views and reactions of a post when known (`bridge.engagement.Engagement.counts_for`).
CountsOf = Callable[[Post], PostCounts | None]


def _no_counts(post: Post) -> PostCounts | None:
    return None

PAGE_SIZE = 50
MAX_PAGE = 2000  # 100,000 posts: a farther page is asked for with narrower dates
QUERY_LIMIT = 200  # characters of text searched for


class QueryError(ValueError):
    """A search the page cannot run (a date that is not one, a page out of range): its message
    is one line in Italian, shown to the person who asked."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """What the person asked for: words (all of them, in the title, the link or the remote id,
    whatever the case), a feed id, a channel, the first and last day (in the bridge's time
    zone, both included), the page (from 1). An empty field does not filter."""

    text: str = ""
    feed: str = ""
    channel: str = ""
    first_day: date | None = None
    last_day: date | None = None
    page: int = 1

    @property
    def words(self) -> list[str]:
        return self.text.casefold().split()

    def span(self, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC of the days asked for; None where the query has no bound."""
        start = datetime.combine(self.first_day, time(), tz).astimezone(UTC) if self.first_day else None
        end = (datetime.combine(self.last_day + timedelta(days=1), time(), tz).astimezone(UTC)
               if self.last_day else None)
        return start, end

    def matches(self, post: Post, tz: ZoneInfo) -> bool:
        """Whether `post` is one the query asks for."""
        start, end = self.span(tz)
        if (start is not None and post.posted_at < start) or (end is not None and post.posted_at >= end):
            return False
        if self.feed and post.feed_id != self.feed:
            return False
        if self.channel and post.channel != self.channel:
            return False
        words = self.words
        if words:
            haystack = f"{post.title}\n{post.link}\n{post.remote_id or ''}".casefold()
            return all(word in haystack for word in words)
        return True


def parse_query(params: Mapping[str, str]) -> HistoryQuery:
    """The query of the page's form (`q`, `feed`, `canale`, `dal`, `al`, `pagina`). Raise
    `QueryError` naming the field when a value cannot be read."""
    first = _day(params.get("dal", ""), "dal")
    last = _day(params.get("al", ""), "al")
    if first and last and first > last:
        raise QueryError(f"la data «dal» ({first:%d/%m/%Y}) viene dopo la data «al» ({last:%d/%m/%Y})")
    raw_page = params.get("pagina", "").strip() or "1"
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
        raise QueryError(f"pagina non valida: scrivere un numero da 1 a {MAX_PAGE}")
    return HistoryQuery(text=params.get("q", "").strip()[:QUERY_LIMIT], feed=params.get("feed", "").strip(),
                        channel=params.get("canale", "").strip(), first_day=first, last_day=last,
                        page=int(raw_page))


def _day(text: str, name: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"data «{name}» non valida: {text[:40]!r} (scrivere AAAA-MM-GG)") from None


def months_needed(query: HistoryQuery, months: Iterable[str], tz: ZoneInfo) -> list[str]:
    """The months ("YYYY-MM", UTC) of `months` that can hold a post the query asks for,
    newest first."""
    start, end = query.span(tz)
    first = f"{start:%Y-%m}" if start else ""
    last = f"{end - timedelta(microseconds=1):%Y-%m}" if end else "9999-99"
    return sorted((m for m in months if first <= m <= last), reverse=True)


# A JSON escape, or a character beyond ASCII whose casefold holds ASCII letters ("ß" is "ss",
# the Kelvin sign is "k"): a raw line holding one may match an ASCII word it does not spell.
_FOLDS_TO_ASCII = "\u00df\u0130\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e\u212a" \
                  "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"
_UNSURE = re.compile(b"|".join([re.escape(b"\\"), *(re.escape(c.encode()) for c in _FOLDS_TO_ASCII)]))


def line_filter(query: HistoryQuery) -> Callable[[bytes], bool] | None:
    """A quick look at a history file's raw line that is false only when its record cannot
    match the query's words, so that it need not be parsed: the line lacks one of the
    words spelled in ASCII (its bytes lowered) and holds no JSON escape and no character that
    folds to ASCII. None when the query has no such word (every line is parsed)."""
    words = [word.encode() for word in query.words if word.isascii()]
    if not words:
        return None

    def keep(line: bytes) -> bool:
        if _UNSURE.search(line):
            return True
        lowered = line.lower()
        return all(word in lowered for word in words)

    return keep


ReadMonth = Callable[[str, Callable[[bytes], bool] | None], list[Post]]


@dataclass(frozen=True, slots=True)
class MonthDigest:
    """What a search needs to know of a month's posts to tell that none of them can match,
    without reading its file: the feeds and channels it holds, its first and last post, and
    the words' haystacks of its posts (`HistoryQuery.matches`'s, casefolded), joined by line
    breaks. A word never holds a line break (words are split at white space), so it is in
    `text` exactly when it is in one post's haystack."""

    posts: int
    feeds: frozenset[str]
    channels: frozenset[str]
    first: datetime | None
    last: datetime | None
    text: str

    @property
    def nbytes(self) -> int:
        """About how much memory the digest holds (its text and its names)."""
        return (sys.getsizeof(self.text) + sum(sys.getsizeof(name) for name in self.feeds | self.channels)
                + sys.getsizeof(self.feeds) + sys.getsizeof(self.channels) + 200)


def digest(posts: Iterable[Post]) -> MonthDigest:
    """The digest of one month's posts (all of them, as its file is read)."""
    chosen = list(posts)
    moments = [post.posted_at for post in chosen]
    return MonthDigest(
        posts=len(chosen), feeds=frozenset(post.feed_id for post in chosen),
        channels=frozenset(post.channel for post in chosen),
        first=min(moments) if moments else None, last=max(moments) if moments else None,
        text="\n".join(f"{post.title}\n{post.link}\n{post.remote_id or ''}".casefold() for post in chosen))


def may_match(query: HistoryQuery, month: MonthDigest, tz: ZoneInfo) -> bool:
    """False only when no post of the month of `month` can be one the query asks for: each
    test is one `HistoryQuery.matches` makes of every post, so a month it rules out is one
    whose reading would have found nothing."""
    if month.posts == 0 or month.first is None or month.last is None:
        return False
    start, end = query.span(tz)
    if (start is not None and month.last < start) or (end is not None and month.first >= end):
        return False
    if (query.feed and query.feed not in month.feeds) or (query.channel and query.channel not in month.channels):
        return False
    return all(word in month.text for word in query.words)


# The digest of a month, None when there is none to trust (the current month, a file that
# changed while it was read): the month is then read.
MonthDigests = Callable[[str], MonthDigest | None]


def matching(query: HistoryQuery, months: Iterable[str], read_month: ReadMonth, tz: ZoneInfo,
             digests: MonthDigests | None = None) -> Iterator[Post]:
    """Every post the query asks for, newest first, reading one month at a time (with the
    query's `line_filter`), and only as far as the caller goes on. With `digests`, a month
    whose digest rules it out (`may_match`) is not read."""
    keep = line_filter(query)
    for month in months_needed(query, months, tz):
        known = digests(month) if digests is not None else None
        if known is not None and not may_match(query, known, tz):
            continue
        posts = [post for post in read_month(month, keep) if query.matches(post, tz)]
        posts.sort(key=lambda p: p.posted_at, reverse=True)
        yield from posts


@dataclass(frozen=True, slots=True)
class HistoryPage:
    posts: list[Post]
    page: int
    has_next: bool
    size: int = PAGE_SIZE

    @property
    def first_number(self) -> int:
        """The position (from 1) of the page's first post among all those found."""
        return (self.page - 1) * self.size + 1


def search(query: HistoryQuery, months: Iterable[str], read_month: ReadMonth, tz: ZoneInfo,
           page_size: int = PAGE_SIZE, digests: MonthDigests | None = None) -> HistoryPage:
    """The query's page: at most `page_size` posts, newest first, and whether more follow
    (`digests` as for `matching`)."""
    skip = (query.page - 1) * page_size
    chosen: list[Post] = []
    for number, post in enumerate(matching(query, months, read_month, tz, digests)):
        if number < skip:
            continue
        if len(chosen) == page_size:
            return HistoryPage(chosen, query.page, has_next=True, size=page_size)
        chosen.append(post)
    return HistoryPage(chosen, query.page, has_next=False, size=page_size)


# -- CSV ---------------------------------------------------------------------------------------

# Views and reactions come last, so that the columns an office may already read keep their places.
CSV_HEADER = ["pubblicato", "canale", "feed", "titolo", "link", "id remoto", "verificato", "id consegna",
              "visualizzazioni", "reazioni"]
VERIFIED_IT = {True: "sì", False: "non trovato", None: ""}


def csv_rows(posts: Iterable[Post], tz: ZoneInfo, feed_names: Mapping[str, str],
             counts_of: CountsOf = _no_counts) -> str:
    """The CSV lines of `posts` (no header): semicolons, as a spreadsheet set to Italian reads
    them, every cell quoted where needed and kept from becoming a formula. Views and reactions
    (their total) are empty where `counts_of` knows none: a post on another platform, or one
    the last reading did not cover; never 0 for "not known"."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    for post in posts:
        counts = counts_of(post)
        writer.writerow([csv_cell(cell) for cell in (
            f"{post.posted_at.astimezone(tz):%Y-%m-%d %H:%M}", post.channel,
            feed_names.get(post.feed_id, post.feed_id), post.title, post.link, post.remote_id or "",
            VERIFIED_IT.get(post.verified, ""), post.delivery_id,
            str(counts.views) if counts is not None else "",
            str(counts.reactions_total) if counts is not None else "")])
    return out.getvalue()


def csv_header() -> str:
    """The first line of the export, after the byte-order mark that tells a spreadsheet it is
    UTF-8."""
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerow(CSV_HEADER)
    return "\ufeff" + out.getvalue()


# -- the monthly summary -----------------------------------------------------------------------

MONTHS_IT = ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
             "ottobre", "novembre", "dicembre")


@dataclass(frozen=True, slots=True)
class MonthSummary:
    """The posts of one month of the office's calendar: in all, per channel, per feed, and per
    week (Monday to Sunday, cut at the month's ends: (first day, last day, posts)); with the
    views of the posts of each week whose views are known (`week_views`, in the order of
    `weeks`) and how many posts those are (`with_views`)."""

    year: int
    month: int
    total: int
    by_channel: list[tuple[str, int]]
    by_feed: list[tuple[str, int]]
    weeks: list[tuple[date, date, int]]
    week_views: list[int] = field(default_factory=list)
    with_views: int = 0

    @property
    def name(self) -> str:
        return f"{MONTHS_IT[self.month - 1]} {self.year}"


def parse_month(text: str, today: date) -> tuple[int, int]:
    """The month of the summary's form ("AAAA-MM"), this month when empty. Raise `QueryError`
    when it is not a month."""
    text = text.strip()
    if not text:
        return today.year, today.month
    try:
        moment = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise QueryError(f"mese non valido: {text[:20]!r} (scrivere AAAA-MM)") from None
    return moment.year, moment.month


def month_summary(year: int, month: int, months: Iterable[str], read_month: ReadMonth,
                  tz: ZoneInfo, counts_of: CountsOf = _no_counts) -> MonthSummary:
    """The summary of `month` of `year` in `tz`, from the history files it can touch, with the
    views `counts_of` knows."""
    first = date(year, month, 1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    bounds: list[tuple[date, date]] = []
    start = first
    while start <= last:
        end = min(start + timedelta(days=6 - start.weekday()), last)
        bounds.append((start, end))
        start = end + timedelta(days=1)
    per_week = [0] * len(bounds)
    views_per_week = [0] * len(bounds)
    with_views = 0
    channels: dict[str, int] = {}
    feeds: dict[str, int] = {}
    total = 0
    for post in matching(HistoryQuery(first_day=first, last_day=last), months, read_month, tz):
        day = post.posted_at.astimezone(tz).date()
        total += 1
        channels[post.channel] = channels.get(post.channel, 0) + 1
        feeds[post.feed_id] = feeds.get(post.feed_id, 0) + 1
        week = next(n for n, (_, end) in enumerate(bounds) if day <= end)
        per_week[week] += 1
        counts = counts_of(post)
        if counts is not None:
            views_per_week[week] += counts.views
            with_views += 1

    def ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    return MonthSummary(year, month, total, ranked(channels), ranked(feeds),
                        [(start, end, posts) for (start, end), posts in zip(bounds, per_week, strict=True)],
                        views_per_week, with_views)
