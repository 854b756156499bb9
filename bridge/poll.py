"""One poll of one feed: fetch, parse, decide what is new, queue alerts, record what was seen.

`select_items` is the pure seen-policy; `poll_feed` is the thin shell around it that talks to
the fetcher and the store. Nothing here sends: new alerts go to the outbox, and the outbox
is written before the keys are marked seen, so a crash between the two loses nothing. A write
that fails (a full disk) raises out of the poll before the keys are marked seen, and the store
keeps nothing of it: the next poll finds the same items new again.

What is new is decided and recorded in one turn of the store (`Store.acommit`): the decision
against the seen keys as they are at that turn, the deliveries written, then the keys. So no
other poll decides in between, and an item that two feeds show is queued once even when their
polls run at once. Article pages are fetched before, for the items that look new then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

import structlog

from bridge import summary
from bridge.article import ArticleReader
from bridge.config import AlertSettings, ChannelConfig, Config, FeedConfig
from bridge.fetch import Fetcher, FetchError, Validators
from bridge.health import rhythm
from bridge.identity import SeenLookup, delivery_id, is_seen
from bridge.item import Alert, Item
from bridge.links import link_problem, with_utm
from bridge.models import Delivery, FeedState
from bridge.parse import ParseError, parse_feed
from bridge.parser_pool import ParserPool
from bridge.store import Plan, Store
from bridge.template import channel_template

log = structlog.get_logger("bridge.poll")

MAX_FEED_BACKOFF = timedelta(hours=1)
MAX_RETRY_AFTER = timedelta(hours=6)
# Seen keys outlive any item a feed still lists: refreshed at every poll that shows them,
# forgotten only after this long out of every feed.
SEEN_RETENTION = timedelta(days=180)


@dataclass(frozen=True, slots=True)
class Selection:
    """For one channel: the items to post (oldest first) and every item to mark seen."""

    post: tuple[Item, ...]
    seen: tuple[Item, ...]
    too_old: int = 0
    no_link: tuple[Item, ...] = ()


@dataclass(slots=True)
class PollResult:
    """What one poll did, for logs, `run --once` and `status`."""

    feed_id: str
    ok: bool = True
    skipped: bool = False
    not_modified: bool = False
    items: int = 0
    queued: list[Delivery] = field(default_factory=list)
    error: str | None = None


def order_key(item: Item, index: int, now: datetime) -> float:
    """Sort key, oldest first: publication time (never in the future), else the feed's order."""
    if item.published is not None:
        return min(item.published, now).timestamp()
    # Undated: feeds list newest first, so a later position means older.
    return now.timestamp() - index * 0.001


def select_items(
    items: Sequence[Item],
    *,
    primed: bool,
    backfill: int,
    max_age: timedelta,
    seen_by: SeenLookup,
    now: datetime,
    wanted: Callable[[Item], bool] = lambda item: True,
) -> Selection:
    """Decide, for one channel, which of a feed's `items` to post.

    An item is new when `is_seen` says none of its keys was seen. On the feed's first poll for
    this channel (`primed` false) only the `backfill` newest new items are posted; the rest
    are recorded. Items older than `max_age`, filtered out by `wanted`, or without a postable
    link are recorded and never posted; undated items are kept.
    """
    position = {id(item): index for index, item in enumerate(items)}
    oldest_allowed = now - max_age
    fresh: list[Item] = []
    too_old = 0
    no_link: list[Item] = []
    for item in items:
        if is_seen(item, seen_by, now) or not wanted(item):
            continue
        if item.published is not None and item.published < oldest_allowed:
            too_old += 1
            continue
        if item.link is None:
            no_link.append(item)
            continue
        fresh.append(item)
    fresh.sort(key=lambda item: order_key(item, position[id(item)], now))
    if not primed:
        fresh = fresh[len(fresh) - backfill :] if backfill else []
    return Selection(post=tuple(fresh), seen=tuple(items), too_old=too_old, no_link=tuple(no_link))


def matches_filters(item: Item, feed: FeedConfig) -> bool:
    """True when the item passes the feed's `include` and `exclude` words (case-insensitive)."""
    haystack = f"{item.title}\n{item.text}\n{' '.join(item.categories)}".casefold()
    if feed.include and not any(word.casefold() in haystack for word in feed.include):
        return False
    return not any(word.casefold() in haystack for word in feed.exclude)


def is_urgent(item: Item, feed: FeedConfig, alerts: AlertSettings) -> bool:
    """An urgent feed, or an urgent keyword in the title or the lead."""
    if feed.urgent:
        return True
    lead = f"{item.title}\n{item.text[:500]}".casefold()
    return any(word in lead for word in alerts.urgent_keywords)


def feed_backoff(failures: int, interval: timedelta, retry_after: float | None) -> timedelta:
    """How long a failing feed rests before the next try: doubling, capped at an hour
    (or at the interval, if that is longer), and never shorter than the server asked."""
    delay: timedelta = min(interval * (2 ** max(failures - 1, 0)), max(MAX_FEED_BACKOFF, interval))
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), MAX_RETRY_AFTER))
    return delay


async def poll_feed(
    feed: FeedConfig,
    *,
    config: Config,
    fetcher: Fetcher,
    store: Store,
    now: Callable[[], datetime],
    force: bool = False,
    parser: ParserPool | None = None,
    reader: ArticleReader | None = None,
    fetching: Callable[[], contextlib.AbstractAsyncContextManager[object]] = contextlib.nullcontext,
) -> PollResult:
    """Poll `feed` once and commit the outcome to `store`.

    A feed that is backing off after failures is skipped unless `force`. Fetch and parse
    problems are recorded in the feed's state and returned, never raised. `parser` runs the
    parse in a separate process under a deadline (the daemon); None parses in-process.
    `reader` fetches the article page of thin items (per the feed's `fetch_article`); None
    never fetches. Items whose link is off the feed's domains are held, never posted.
    `fetching()` is entered while the poll talks to the feed's host and parses (the
    daemon's slots per host and overall), and left before the record waits for its turn of
    the store: a slow disk then holds this poll, not the fetches of the others.

    Raise OSError when the state cannot be written: the deliveries first, then the seen keys,
    so that an item is marked seen only once its deliveries are on disk.
    """
    flog = log.bind(feed=feed.id)
    state = store.feed_state(feed.id)
    started = now()
    result = PollResult(feed_id=feed.id)
    if not force and state.retry_at is not None and started < state.retry_at:
        result.skipped = True
        return result
    validators = Validators(state.etag, state.last_modified)
    items: Sequence[Item] = ()
    articles: dict[str, str] = {}
    try:
        async with fetching():
            fetched = await fetcher.fetch(feed.url, validators)
            if fetched.permanent_redirect:
                flog.warning("feed moved permanently; update its url in config.toml",
                             new_url=fetched.permanent_redirect)
            if not fetched.not_modified:
                if parser is not None:
                    parsed = await parser.parse(feed.id, fetched.body, url=fetched.final_url,
                                                headers=fetched.headers)
                else:
                    parsed = parse_feed(feed.id, fetched.body, url=fetched.final_url, headers=fetched.headers)
                if parsed.warning:
                    flog.info("feed is malformed but readable", detail=parsed.warning)
                items = parsed.items
                if reader is not None:
                    articles = await _article_leads(feed, state, items, store, started, reader)
    except (FetchError, ParseError) as exc:
        return await _record_failure(feed, state, store, started, exc, flog, failed_at=now())

    if fetched.not_modified:
        state = replace(state, last_poll=started, last_success=started, failures=0, failing_since=None,
                        last_error=None, retry_at=None, etag=fetched.validators.etag or state.etag,
                        last_modified=fetched.validators.last_modified or state.last_modified)
        await store.acommit(store.plan_save_feed(state, now=started))
        result.not_modified = True
        flog.debug("feed not modified")
        return result
    # Nothing is caught here: if the deliveries cannot be written, the keys must not be marked.
    queued = await store.acommit(_record(feed, config, store, state, items, fetched.validators, started,
                                         articles, flog))
    result.items = len(items)
    result.queued = queued
    if queued:
        flog.info("new items queued", count=len(queued), channels=list(feed.channels))
    return result


def _selection(feed: FeedConfig, state: FeedState, channel: str, items: Sequence[Item], store: Store,
               started: datetime) -> Selection:
    return select_items(
        items,
        primed=channel in state.primed and not state.rebuilt,
        backfill=0 if state.rebuilt else feed.backfill,
        max_age=feed.max_age,
        seen_by=partial(store.seen_by, channel),
        now=started,
        wanted=lambda item: matches_filters(item, feed),
    )


def _off_domain(item: Item, feed: FeedConfig) -> str | None:
    """Why `item` must be held (its link, or an address in its text, off the feed's domains)."""
    problem = link_problem(item.link, feed_url=feed.url, link_domains=feed.link_domains)
    if problem is None:
        problem = summary.address_problem(item, feed_url=feed.url, link_domains=feed.link_domains)
    return problem


async def _article_leads(feed: FeedConfig, state: FeedState, items: Sequence[Item], store: Store,
                         started: datetime, reader: ArticleReader) -> dict[str, str]:
    """The article leads (link -> lead) of the thin items that look new now, on every channel
    (per the feed's `fetch_article`)."""
    articles: dict[str, str] = {}
    for channel in feed.channels:
        for item in _selection(feed, state, channel, items, store, started).post:
            wants = feed.fetch_article == "always" or (feed.fetch_article == "auto" and summary.is_thin(item))
            if wants and item.link and item.link not in articles and _off_domain(item, feed) is None:
                articles[item.link] = await reader.lead(item.link, feed_url=feed.url, link_domains=feed.link_domains)
    return articles


def _record(feed: FeedConfig, config: Config, store: Store, state: FeedState, items: Sequence[Item],
            validators: Validators, started: datetime, articles: dict[str, str],
            flog: structlog.typing.FilteringBoundLogger) -> Plan[list[Delivery]]:
    """The poll's change of the store, decided at its turn: what is new on each channel, its
    deliveries queued, then every item's keys marked seen and the poll state kept."""
    deliveries: list[Delivery] = []
    seen: dict[str, set[str]] = {}
    held: str | None = state.last_held
    for channel in feed.channels:
        selection = _selection(feed, state, channel, items, store, started)
        for item in selection.no_link:
            flog.warning("item held: it has no http(s) link to the comune's site", title=item.title, channel=channel)
        postable = []
        for item in selection.post:
            problem = _off_domain(item, feed)
            if problem is None:
                postable.append(item)
                continue
            held = f"{item.title}: {problem}"
            flog.warning("item held: it points outside the feed's domains", title=item.title, link=item.link,
                         reason=problem, channel=channel)
        deliveries.extend(_deliveries(feed, channel, postable, items, config, started, articles))
        seen[channel] = {key for item in selection.seen for key in item.keys}
    queued = yield from store.plan_add_deliveries(deliveries)
    dates = [min(item.published, started) for item in items if item.published is not None]
    gap = rhythm(dates)
    state = replace(
        state,
        newest_item=max(dates, default=state.newest_item),
        usual_gap=gap.total_seconds() if gap is not None else state.usual_gap,
        etag=validators.etag,
        last_modified=validators.last_modified,
        primed=tuple(sorted(set(state.primed) | set(feed.channels))),
        last_poll=started,
        last_success=started,
        last_new_item=started if queued else state.last_new_item,
        failures=0,
        failing_since=None,
        last_error=None,
        retry_at=None,
        rebuilt=False,
        last_held=held,
    )
    yield from store.plan_save_feed(state, seen, now=started,
                                    forget_before=started - max(SEEN_RETENTION, feed.max_age * 2))
    return queued


# Room kept for the title when an over-long link forces an alert beyond max_length.
_TITLE_ROOM_BESIDE_LONG_LINK = 120


def alert_for(
    item: Item, feed: FeedConfig, alerts: AlertSettings, channel: ChannelConfig, *, article: str = ""
) -> Alert:
    """The alert for `item` of `feed` on `channel`: the channel's UTM parameters on the link,
    its template and length limit (else `alerts.max_length`), `article` as the lead of a thin
    item (see `bridge.article`), no address off the feed's domains in its text (see
    `bridge.summary`; an item that `summary.address_problem` holds raises
    `summary.AddressOnlyTitleError`).

    A link longer than the limit is never cut and the item is never dropped for it: the alert
    becomes a shortened title + the link, and a warning says so.
    """
    urgent = is_urgent(item, feed, alerts)
    linked = replace(item, link=with_utm(item.link, channel.utm)) if item.link else item
    template = channel_template(channel.template)
    limit = channel.max_length or alerts.max_length
    try:
        return summary.build_alert(linked, feed_name=feed.name, max_length=limit, urgent=urgent,
                                   article=article, template=template, feed_url=feed.url,
                                   link_domains=feed.link_domains)
    except summary.LinkTooLongError as exc:
        log.warning("link longer than max_length; posting title and link only", feed=feed.id,
                    title=item.title, error=str(exc))
        stretched = len(linked.link or "") + _TITLE_ROOM_BESIDE_LONG_LINK
        return summary.build_alert(linked, feed_name=feed.name, max_length=stretched, urgent=urgent,
                                   template=template, feed_url=feed.url, link_domains=feed.link_domains)


def _deliveries(
    feed: FeedConfig,
    channel: str,
    chosen: Sequence[Item],
    items: Sequence[Item],
    config: Config,
    now: datetime,
    articles: dict[str, str],
) -> list[Delivery]:
    position = {id(item): index for index, item in enumerate(items)}
    deliveries = []
    for item in chosen:
        article = articles.get(item.link or "", "")
        alert = alert_for(item, feed, config.alerts, config.channels[channel], article=article)
        deliveries.append(
            Delivery(
                id=delivery_id(channel, item),
                channel=channel,
                feed_id=feed.id,
                alert=alert,
                created=now,
                order=order_key(item, position[id(item)], now),
                urgent=alert.urgent,
            )
        )
    return deliveries


async def _record_failure(
    feed: FeedConfig,
    state: FeedState,
    store: Store,
    started: datetime,
    exc: FetchError | ParseError,
    flog: structlog.typing.FilteringBoundLogger,
    *,
    failed_at: datetime,
) -> PollResult:
    failures = state.failures + 1
    retry_after = exc.retry_after if isinstance(exc, FetchError) else None
    # From the time read after the fetch, not `started`: a step of the wall clock during the
    # fetch is then already accounted for (see `bridge.clock`).
    retry_at = failed_at + feed_backoff(failures, feed.interval, retry_after)
    state = replace(
        state,
        last_poll=started,
        failures=failures,
        failing_since=state.failing_since or started,
        last_error=str(exc),
        retry_at=retry_at,
    )
    await store.acommit(store.plan_save_feed(state, now=started))
    flog.warning("feed poll failed", error=str(exc), hint=exc.hint, failures=failures, retry_at=retry_at.isoformat())
    return PollResult(feed_id=feed.id, ok=False, error=str(exc))

