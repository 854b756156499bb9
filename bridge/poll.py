"""One poll of one feed: fetch, parse, decide what is new, queue alerts, record what was seen.

`poll_feed` is orchestration only: it talks to the fetcher, the parser and the store, and asks
`bridge.verdict.decide` (the pure policy) what happens to each item; `polled_state` is the
feed's state after a poll. Nothing here sends: new alerts go to the outbox, and the outbox
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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from bridge.alert_poll import record_alerts
from bridge.alerts.source import SourceRequest, read_request
from bridge.approval import AWAITING, needs_approval
from bridge.article import ArticleReader
from bridge.audit import BRIDGE, AuditEntry, snapshot
from bridge.config import Config, FeedConfig
from bridge.corrections import (
    ASK,
    CORRECTION,
    EDIT,
    MAX_CORRECTIONS,
    OFF,
    Version,
    correction_id,
    correction_mode,
    item_digest,
    posted_version,
    rettifica,
    what_changed,
)
from bridge.deletion import DELETE, DELETED
from bridge.fetch import Fetcher, FetchError, Validators
from bridge.health import rhythm
from bridge.identity import delivery_id, recorded_keys
from bridge.item import Item
from bridge.models import HELD_KEPT, Delivery, FeedState, HeldItem, Post
from bridge.parse import ParseError, parse_feed
from bridge.parser_pool import ParserPool
from bridge.store import Plan, Store
from bridge.summary import AddressOnlyTitleError
from bridge.verdict import HELD, NO_LINK, NOTHING_TO_SAY, FeedMemory, Verdict, alert_for, decide, wants_article
from bridge.withdrawn import WITHDRAWN, watched_since, withdrawn_posts

log = structlog.get_logger("bridge.poll")

MAX_FEED_BACKOFF = timedelta(hours=1)
MAX_RETRY_AFTER = timedelta(hours=6)
# Seen keys outlive any item a feed still lists: refreshed at every poll that shows them,
# forgotten only after this long out of every feed.
SEEN_RETENTION = timedelta(days=180)


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
            if not fetched.not_modified and feed.is_alert_source:
                request = SourceRequest(feed.type, zones=feed.zones, regions=feed.regions)
                snapshot = (await parser.read_alerts(feed.id, request, fetched.body) if parser is not None
                            else read_request(request, fetched.body))
            elif not fetched.not_modified:
                if parser is not None:
                    parsed = await parser.parse(feed.id, fetched.body, url=fetched.final_url,
                                                headers=fetched.headers)
                else:
                    parsed = parse_feed(feed.id, fetched.body, url=fetched.final_url, headers=fetched.headers)
                if parsed.warning:
                    flog.info("feed is malformed but readable", detail=parsed.warning)
                items = parsed.items
                if reader is not None:
                    # The pages of the items that post now; at the record's turn `decide` is
                    # asked again, against the keys as they are then.
                    looking = decide(feed, items, config=config, memory=memory_of(state, store), now=started,
                                     alerts="none")
                    articles = await article_leads(feed, (v for v in looking if v.posts), reader)
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
    if feed.is_alert_source:
        queued = await store.acommit(record_alerts(feed, config, store, state, snapshot, fetched.validators,
                                                   started, flog))
        result.items = len(snapshot.observations)
        result.queued = queued
        return result
    # Nothing is caught here: if the deliveries cannot be written, the keys must not be marked.
    queued = await store.acommit(_record(feed, config, store, state, items, fetched.validators, started,
                                         articles, flog))
    result.items = len(items)
    result.queued = queued
    if queued:
        flog.info("new items queued", count=len(queued), channels=list(feed.channels))
    return result


def memory_of(state: FeedState, store: Store) -> FeedMemory:
    """What `store` knows of the feed whose state is `state`, for `bridge.verdict.decide`."""
    return FeedMemory(primed=frozenset(state.primed), rebuilt=state.rebuilt, seen_by=store.seen_by)


async def article_leads(feed: FeedConfig, verdicts: Iterable[Verdict], reader: ArticleReader) -> dict[str, str]:
    """The leads (link -> lead) of the article pages that the alerts of `verdicts` would use
    (see `bridge.verdict.wants_article`), each page fetched once through `reader`."""
    articles: dict[str, str] = {}
    for verdict in verdicts:
        link = verdict.item.link
        if link and link not in articles and wants_article(verdict.item, feed):
            articles[link] = await reader.lead(link, feed_url=feed.url, link_domains=feed.link_domains)
    return articles


def _record(feed: FeedConfig, config: Config, store: Store, state: FeedState, items: Sequence[Item],
            validators: Validators, started: datetime, articles: dict[str, str],
            flog: structlog.typing.FilteringBoundLogger) -> Plan[list[Delivery]]:
    """The poll's change of the store, decided at its turn (`bridge.verdict.decide` against
    the seen keys as they are then): its deliveries queued, then every item's keys marked seen
    and the poll state kept."""
    memory = memory_of(state, store)
    verdicts = decide(feed, items, config=config, memory=memory, now=started, articles=articles)
    held = state.last_held
    held_now = []
    for verdict in verdicts:
        if verdict.outcome == HELD:
            held = f"{verdict.item.title or verdict.item.link}: {verdict.reason}"
            held_now.append(HeldItem(id=delivery_id(verdict.channel, verdict.item), channel=verdict.channel,
                                     title=verdict.item.title, link=verdict.item.link, reason=verdict.reason,
                                     at=started))
            _log_held(flog, verdict)
    posts = sorted((v for v in verdicts if v.posts), key=lambda v: v.order)
    queued = yield from store.plan_add_deliveries(
        [_delivery(feed, verdict, started, approve=needs_approval(feed, config.channels.get(verdict.channel)))
         for verdict in posts])
    fixes = _corrections(feed, config, store, items, started, flog)
    if fixes:
        # The bridge's own action, in the audit trail before the outbox.
        yield from store.plan_act([_correction_entry(fix) for fix in fixes], fixes, [])
    gone = withdrawn_posts(store.recent_posts(feed.id, watched_since(started)), items, feed.channels,
                           lambda ident: _marked(store, ident))
    if gone:
        yield from store.plan_act([_withdrawn_entry(post, started) for post in gone], [], [])
        for post in gone:
            flog.warning("ritirato alla fonte: a posted item is no longer in its feed; nothing is deleted",
                         channel=post.channel, delivery=post.delivery_id, title=post.title, link=post.link,
                         hint=f"channel-bridge queue delete {post.delivery_id} --reason \"...\" deletes the post")
    first = tuple(channel for channel in feed.channels if memory.first_poll(channel))
    posted_first = sum(1 for delivery in queued if delivery.channel in first)
    recorded = {key for item in items for key in recorded_keys(item)}
    yield from store.plan_save_feed(
        polled_state(state, feed, items, validators, started, queued=bool(queued), held=held,
                     first=(len(items), posted_first) if first else None, held_items=held_now),
        {channel: recorded for channel in feed.channels},
        now=started, forget_before=started - max(SEEN_RETENTION, feed.max_age * 2),
    )
    if first:
        # Said once, at the poll that primes the feed: otherwise a first poll is silent.
        flog.info(f"first poll: {len(items)} items recorded, {posted_first} posted (backfill)",
                  channels=list(first), backfill=0 if state.rebuilt else feed.backfill)
    return queued


# What this process already told the log once: posts without a version, and changes that were
# only recorded (typo level, `corrections = "off"`, past MAX_CORRECTIONS). Bounded.
_TOLD: set[tuple[str, str]] = set()
_TOLD_KEPT = 10_000


def _tell_once(posted_id: str, digest: str) -> bool:
    """True the first time (in this process) for this post and item version."""
    if (posted_id, digest) in _TOLD:
        return False
    if len(_TOLD) >= _TOLD_KEPT:
        _TOLD.clear()
    _TOLD.add((posted_id, digest))
    return True


def _corrections(feed: FeedConfig, config: Config, store: Store, items: Sequence[Item], started: datetime,
                 flog: structlog.typing.FilteringBoundLogger) -> list[Delivery]:
    """The corrections of the items of `feed` already posted that changed at the source since
    (see `bridge.corrections`): an item is compared only when its fingerprint differs from the
    one its latest post recorded, and each change is followed once, by its channel's
    `corrections`: an edit of the post, a "Rettifica" post, one awaiting an editor ("ask"),
    or only a line in the log ("off", a typo-level change, past MAX_CORRECTIONS)."""
    fixes = []
    for item in items:
        digest: str | None = None
        for name in feed.channels:
            posted_id = delivery_id(name, item)
            latest = store.latest_post(posted_id)
            if latest is None:
                continue
            before = posted_version(latest)
            if before is None or latest.digest is None:
                if _tell_once(posted_id, ""):
                    flog.info("posted before versions were kept: its changes at the source are not followed",
                              channel=name, delivery=posted_id, title=latest.title)
                continue
            digest = digest or item_digest(item)
            fix_id = correction_id(posted_id, digest)
            if digest == latest.digest or (posted_id, digest) in _TOLD or store.has_delivery(fix_id) or (
                    store.last_action(fix_id) is not None):  # an editor dropped it: not again
                continue
            channel = config.channels.get(name)
            if channel is None:
                continue
            try:
                current = alert_for(item, feed, config.alerts, channel)
            except AddressOnlyTitleError:
                continue
            # A summary made from the article page cannot be made again here without fetching
            # it: only the title is compared then.
            now = Version(current.title, before.summary if wants_article(item, feed) else current.summary)
            correction = what_changed(before, now)
            if correction is None:
                _tell_once(posted_id, digest)  # typo level: not a correction, never compared again
                continue
            mode = correction_mode(feed, channel)
            count = store.corrections_of(posted_id)
            if mode == OFF or count >= MAX_CORRECTIONS:
                if _tell_once(posted_id, digest):
                    flog.warning("item changed at its source after it was posted; recorded only",
                                 why='corrections = "off"' if mode == OFF else f"{count} corrections already",
                                 channel=name, delivery=posted_id, title=latest.title, change=correction.english)
                continue
            edit_of = latest.remote_id if mode in (EDIT, ASK) else None
            fixes.append(Delivery(
                id=fix_id, channel=name, feed_id=feed.id,
                alert=current if edit_of is not None else rettifica(current, correction.italian),
                created=started, order=started.timestamp(), urgent=current.urgent,
                state=AWAITING if mode == ASK else "pending",
                corrects=posted_id, edit_of=edit_of, note=correction.italian, digest=digest,
                acted=CORRECTION, acted_by=BRIDGE, acted_at=started,
            ))
            flog.warning("item changed at its source after it was posted; correction queued",
                         how=("edit" if edit_of is not None else "Rettifica post") + (
                             ", awaiting an editor" if mode == ASK else ""),
                         channel=name, delivery=posted_id, correction=fix_id, change=correction.english)
    return fixes


def _correction_entry(fix: Delivery) -> AuditEntry:
    """The audit entry of a correction the bridge queued: by `channel-bridge`, from `daemon`,
    what changed as its reason."""
    assert fix.acted_at is not None
    return AuditEntry(at=fix.acted_at, who=BRIDGE, where="daemon", action=CORRECTION, alert_id=fix.id,
                      channel=fix.channel, feed_id=fix.feed_id, title=fix.alert.title, before={},
                      after=snapshot(fix), reason=fix.note or "")


def _marked(store: Store, ident: str) -> bool:
    """Whether the post `ident` is already marked withdrawn, or deleted (or being deleted)."""
    last = store.last_action(ident)
    return last is not None and last.action in (WITHDRAWN, DELETE, DELETED)


def _withdrawn_entry(post: Post, at: datetime) -> AuditEntry:
    shown = {"state": "posted", "title": post.title, "summary": "", "send_now": False}
    return AuditEntry(at=at, who=BRIDGE, where="daemon", action=WITHDRAWN, alert_id=post.delivery_id,
                      channel=post.channel, feed_id=post.feed_id, title=post.title, before=shown, after=None,
                      reason="ritirato alla fonte")


def _log_held(flog: structlog.typing.FilteringBoundLogger, verdict: Verdict) -> None:
    item = verdict.item
    if item.link is None:
        flog.warning(f"item held: {NO_LINK}", title=item.title, reason=verdict.reason, channel=verdict.channel)
    elif verdict.reason == NOTHING_TO_SAY:
        flog.warning(f"item held: {NOTHING_TO_SAY}", link=item.link, channel=verdict.channel)
    else:
        flog.warning("item held: it points outside the feed's domains", title=item.title, link=item.link,
                     reason=verdict.reason, channel=verdict.channel)


def polled_state(state: FeedState, feed: FeedConfig, items: Sequence[Item], validators: Validators,
                 started: datetime, *, queued: bool, held: str | None,
                 first: tuple[int, int] | None, held_items: Sequence[HeldItem] = ()) -> FeedState:
    """The feed's state after a poll at `started` that read `items`: healthy, primed on
    every channel of `feed`, its rhythm and validators kept; `first` (items recorded, posted)
    when it was the feed's first poll on some channel; `held_items`, those the poll held,
    before the ones held earlier (HELD_KEPT in all). Pure."""
    dates = [min(item.published, started) for item in items if item.published is not None]
    gap = rhythm(dates)
    return replace(
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
        held=(*held_items, *state.held)[:HELD_KEPT] if held_items else state.held,
        first_poll=started if first is not None else state.first_poll,
        first_poll_items=first[0] if first is not None else state.first_poll_items,
        first_poll_posted=first[1] if first is not None else state.first_poll_posted,
    )


def _delivery(feed: FeedConfig, verdict: Verdict, now: datetime, *, approve: bool = False) -> Delivery:
    """The delivery of a POST verdict; "awaiting" an editor's approval when `approve`."""
    assert verdict.alert is not None  # a POST verdict carries its alert
    return Delivery(
        id=delivery_id(verdict.channel, verdict.item),
        channel=verdict.channel,
        feed_id=feed.id,
        alert=verdict.alert,
        created=now,
        order=verdict.order,
        urgent=verdict.alert.urgent,
        state=AWAITING if approve else "pending",
        digest=item_digest(verdict.item),
    )


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

