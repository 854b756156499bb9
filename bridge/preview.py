"""`channel-bridge preview`: what the newest items of each feed would become, and what `run`
would do with each; it changes nothing and sends nothing.

The decision is the daemon's own (`bridge.verdict.decide`, against the state as it is on disk,
read without a lock), and so is the alert: the same fetcher, parser and article reader (with
its link guard and public-address check), the page of a thin item fetched as the daemon would.
Only the printing is here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from bridge.article import ArticleReader
from bridge.channels import outgoing_for
from bridge.config import ChannelConfig, Config, FeedConfig
from bridge.daemon import make_fetcher, utcnow
from bridge.fetch import Fetcher, FetchError
from bridge.item import Alert, Item
from bridge.outbox import pacing_for, quiet_until
from bridge.parse import ParseError, parse_feed
from bridge.poll import article_leads, memory_of
from bridge.store import StateError, Store
from bridge.verdict import FILTERED, HELD, POST, RECORD, SAME_NEWS, SEEN, TOO_OLD, FeedMemory, Verdict, decide

EXIT_OK = 0
EXIT_INVALID = 2


def render_for(channel: ChannelConfig, alert: Alert) -> str:
    """The exact text `channel` sends for `alert`: the channel's own (`outgoing_for`)."""
    return outgoing_for(channel, alert).text


def quiet_hours_end(verdict: Verdict, config: Config, moment: datetime) -> datetime | None:
    """For a post, when the quiet hours would hold it until, asked at `moment` of the
    delivery worker's own rule (`bridge.outbox.quiet_until`); None when it would go at once,
    or when the verdict is not a post."""
    if verdict.outcome != POST:
        return None
    pacing = pacing_for(config.channels[verdict.channel], config.alerts)
    urgent = verdict.alert.urgent if verdict.alert is not None else False
    return quiet_until(pacing, config.alerts, config.bridge.timezone, moment, urgent=urgent)


def verdict_line(verdict: Verdict, config: Config, moment: datetime) -> str:
    """What `run` would do with the item at `moment`, as `preview` says it: for a post, also
    when the quiet hours would hold it (`quiet_hours_end`)."""
    if verdict.outcome == POST:
        until = quiet_hours_end(verdict, config, moment)
        if until is not None:
            local = until.astimezone(config.bridge.timezone)
            return f"would be posted when the quiet hours end ({local:%Y-%m-%d %H:%M %Z})"
        return "would be posted"
    if verdict.outcome == RECORD:
        return f"would be recorded, not posted: {verdict.reason}"
    if verdict.outcome == SEEN:
        return "already seen"
    if verdict.outcome == HELD:
        return f"held: {verdict.reason}"
    if verdict.outcome in (FILTERED, TOO_OLD, SAME_NEWS):
        return f"not posted: {verdict.reason}"
    return verdict.reason


@dataclass(frozen=True, slots=True)
class ItemPreview:
    """One of the newest items of a feed and its verdict on each channel, in the feed's order
    of channels; a verdict's `alert` is what the channel would be given (None: held)."""

    item: Item
    verdicts: tuple[Verdict, ...]


async def newest_previews(config: Config, feed: FeedConfig, items: Sequence[Item], *, memory: FeedMemory,
                          now: datetime, reader: ArticleReader | None, limit: int,
                          channels: Sequence[str] | None = None) -> list[ItemPreview]:
    """What the newest `limit` of `items` (the parsed feed, in its order) would become on
    each of `channels` (default: the feed's), newest first, and what `run` would do with
    each at `now`: `bridge.verdict.decide` over every item, as a poll decides (the backfill
    counts across the feed), with the article pages of the shown items read through
    `reader` as a poll reads them (None reads none). Changes nothing: nothing is recorded
    or queued."""
    wanted = list(feed.channels if channels is None else channels)
    looking = decide(feed, items, config=config, memory=memory, now=now, alerts="none", channels=wanted)
    newest = sorted({id(v.item): v for v in looking}.values(), key=lambda v: v.order, reverse=True)[:max(limit, 0)]
    shown = {id(v.item) for v in newest}
    articles = await article_leads(feed, (v for v in looking if id(v.item) in shown), reader) \
        if reader is not None else {}
    verdicts = decide(feed, items, config=config, memory=memory, now=now, articles=articles, alerts="all",
                      channels=wanted)
    return [ItemPreview(first.item, tuple(v for v in verdicts if v.item is first.item)) for first in newest]


async def cmd_preview(config: Config, out: TextIO, feed_id: str | None, limit: int, channel: str | None) -> int:
    """Print what the newest `limit` items of each feed (or of `feed_id`) would become on each
    of its channels (or on `channel`), and what `run` would do with each now. Exit 0; 2 for a
    feed or channel that is not in the config."""
    feeds = [f for f in config.feeds if feed_id is None or f.id == feed_id]
    if feed_id is not None and not feeds:
        print(f"channel-bridge: no feed with id \"{feed_id}\" in {config.path}", file=sys.stderr)
        return EXIT_INVALID
    if channel is not None and channel not in config.channels:
        print(f"channel-bridge: no channel \"{channel}\" in {config.path}", file=sys.stderr)
        return EXIT_INVALID
    try:
        store: Store | None = Store.open(config.bridge.state_dir, read_only=True)
    except StateError:
        store = None  # no state yet (or unreadable): every feed is at its first poll
    fetcher = make_fetcher(config)
    reader = ArticleReader(fetcher)
    try:
        for feed in feeds:
            channels = [name for name in feed.channels if channel is None or name == channel]
            memory = memory_of(store.feed_state(feed.id), store) if store is not None else FeedMemory()
            await _preview_feed(out, config, feed, channels, max(limit, 0), memory, fetcher, reader)
    finally:
        await fetcher.aclose()
        if store is not None:
            store.close()
    return EXIT_OK


async def _preview_feed(out: TextIO, config: Config, feed: FeedConfig, channels: Sequence[str], limit: int,
                        memory: FeedMemory, fetcher: Fetcher, reader: ArticleReader) -> None:
    try:
        fetched = await fetcher.fetch(feed.url)
        parsed = parse_feed(feed.id, fetched.body, url=fetched.final_url, headers=fetched.headers)
    except (FetchError, ParseError) as exc:
        print(f"══ {feed.id}: cannot read the feed: {exc}", file=out)
        return
    items = parsed.items
    now = utcnow()
    previews = await newest_previews(config, feed, items, memory=memory, now=now, reader=reader, limit=limit,
                                     channels=channels)
    print(f"══ {feed.id} · {feed.name} · {len(items)} items, newest {len(previews)} shown", file=out)
    for preview in previews:
        for verdict in preview.verdicts:
            channel_config = config.channels[verdict.channel]
            print(f"── {verdict.channel} ({channel_config.type}) · {verdict_line(verdict, config, now)}", file=out)
            if verdict.alert is None:
                print(f"   {verdict.item.title or verdict.item.link or '(no title)'}\n", file=out)
                continue
            print(render_for(channel_config, verdict.alert), file=out)
            print(file=out)
