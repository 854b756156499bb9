"""What happens to each item of a feed on each of its channels, and why: one pure decision.

`decide` is the whole policy between a parsed feed and the outbox: the seen-policy (the keys
seen for the channel, see `bridge.identity`, and the same news listed twice by the feed under
two links), the feed's `include`/`exclude` and `max_age`, the link guard (`bridge.links`, and
the addresses in the title, see `bridge.summary`), items with nothing to say, the first poll's
`backfill`, urgency and the alert text. The daemon's poll (`bridge.poll`) queues the verdicts
that post and logs the held ones; `preview` (`bridge.preview`) prints them; any other front end
asks the same function, so no two of them can disagree about an item.

Pure: the feed's config, its items, what the state knows of the feed (`FeedMemory`) and the
time in; verdicts out. Nothing here reads the state, the network or the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Literal

import structlog

from bridge import render, summary
from bridge.config import AlertSettings, ChannelConfig, Config, FeedConfig, format_duration
from bridge.identity import content_key, is_seen
from bridge.item import Alert, Item
from bridge.links import item_link_problem, with_utm
from bridge.template import channel_template
from bridge.text import clean_title

log = structlog.get_logger("bridge.verdict")

# The outcomes of a verdict. Only POST queues an alert; every item's keys are recorded anyway.
POST = "post"
RECORD = "record"  # a first poll: recorded as seen, beyond `backfill`
SEEN = "seen"
SAME_NEWS = "same news"  # another item of the feed (seen, or posted now) tells the same news
FILTERED = "filtered"
TOO_OLD = "too old"
HELD = "held"  # it must not be posted as it is: no link, a link off the site, nothing to say

NO_LINK = "it has no http(s) link to the comune's site"
NOTHING_TO_SAY = "it has no title and no text: the alert would be only its link"
STATE_LOST = "first poll after a lost state (posts nothing)"
# Seconds between two items of one date, in feed order: far below the feeds' one-second
# resolution, far above a float's at today's epoch (2.4e-7 s).
_TIE_STEP = 1e-5

SeenBy = Callable[[str, str], Mapping[str, int]]
"""(channel, key) -> {feed id: last seen, epoch seconds} (see `Store.seen_by`)."""


def never_seen(channel: str, key: str) -> Mapping[str, int]:
    """The lookup of a state that knows nothing (a fresh state directory)."""
    return {}


@dataclass(frozen=True, slots=True)
class FeedMemory:
    """What the state knows of one feed, as far as `decide` needs it.

    `primed`: the channels for which the feed's first poll is recorded; `rebuilt`: its state was
    lost, so its next poll records what it lists and posts nothing, whatever `backfill`;
    `seen_by`: the seen keys of every feed.
    """

    primed: frozenset[str] = frozenset()
    rebuilt: bool = False
    seen_by: SeenBy = never_seen

    def first_poll(self, channel: str) -> bool:
        """True when the feed's next poll is its first for `channel`."""
        return self.rebuilt or channel not in self.primed


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens to one item of a feed on one channel.

    `outcome` is one of POST, RECORD, SEEN, SAME_NEWS, FILTERED, TOO_OLD, HELD; `reason` says
    why in one line for people (the log, `preview`, `status`). `alert` is the alert to queue
    for POST; asked with `alerts="all"`, also what any other item would have become (None when
    it cannot become one: a held item). `order` sorts the feed's items oldest first
    (`order_key`); it is the delivery's place in its channel's queue.
    """

    item: Item
    channel: str
    outcome: str
    reason: str
    order: float
    alert: Alert | None = None

    @property
    def posts(self) -> bool:
        """True when the item is queued for the channel."""
        return self.outcome == POST


def order_key(item: Item, index: int, now: datetime) -> float:
    """Sort key, oldest first, of the item at `index` of its feed: its publication time (never
    in the future), else now; ties broken by the feed's order, whose top is its newest."""
    moment = min(item.published, now) if item.published is not None else now
    # Not a tuple: the key is stored with each delivery and sorts its channel's queue.
    return moment.timestamp() - index * (_TIE_STEP if item.published is not None else 0.001)


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


def hold_reason(item: Item, feed: FeedConfig) -> str | None:
    """Why `item` must be held whatever its channel, or None: no http(s) link, nothing to say
    (no title, text or content), its link or its title's addresses off the feed's domains."""
    if item.link is None:
        return item.no_link_reason or NO_LINK
    if not clean_title(item.title) and not item.text.strip() and not item.content.strip():
        return NOTHING_TO_SAY
    problem = item_link_problem(item, feed_url=feed.url, link_domains=feed.link_domains)
    if problem is None:
        problem = summary.address_problem(item, feed_url=feed.url, link_domains=feed.link_domains)
    return problem


def wants_article(item: Item, feed: FeedConfig) -> bool:
    """True when the alert of `item` would use the lead of its article page (the feed's
    `fetch_article`: "always", or "auto" for a thin item) and the page may be fetched."""
    wanted = feed.fetch_article == "always" or (feed.fetch_article == "auto" and summary.is_thin(item))
    return wanted and hold_reason(item, feed) is None


def alert_for(
    item: Item, feed: FeedConfig, alerts: AlertSettings, channel: ChannelConfig, *, article: str = ""
) -> Alert:
    """The alert for `item` of `feed` on `channel`: the channel's UTM parameters on the link,
    its template, its length limit (else `alerts.max_length`) and its platform's own
    (`render.platform_for`), `article` as the lead of a thin item (see `bridge.article`), no
    address off the feed's domains in its text (see `bridge.summary`; an item that
    `summary.address_problem` holds raises `summary.AddressOnlyTitleError`).

    A link longer than the limit is never cut and the item is never dropped for it: the alert
    becomes a shortened title + the link (`summary.build_alert`), and a warning says so.
    """
    urgent = is_urgent(item, feed, alerts)
    linked = replace(item, link=with_utm(item.link, channel.utm)) if item.link else item
    template = channel_template(channel.template, channel.timezone)
    limit = channel.max_length or alerts.max_length
    platform = render.platform_for(channel.type, channel.max_length)
    alert = summary.build_alert(linked, feed_name=feed.name, max_length=limit, urgent=urgent, article=article,
                                template=template, feed_url=feed.url, link_domains=feed.link_domains,
                                platform=platform)
    if summary.excess(alert, max_length=limit, template=template, platform=platform) > 0:
        log.warning("link longer than max_length; posting title and link only", feed=feed.id,
                    title=item.title, link_length=len(linked.link or ""), max_length=limit)
    return alert


def _alert(item: Item, *, feed: FeedConfig, alerts: AlertSettings, channel: ChannelConfig,
           leads: Mapping[str, str]) -> Alert:
    return alert_for(item, feed, alerts, channel, article=leads.get(item.link or "", ""))


def decide(
    feed: FeedConfig,
    items: Sequence[Item],
    *,
    config: Config,
    memory: FeedMemory,
    now: datetime,
    articles: Mapping[str, str] | None = None,
    alerts: Literal["post", "all", "none"] = "post",
    channels: Iterable[str] | None = None,
) -> list[Verdict]:
    """The verdict on every one of `items` (a feed's, in its order, with their keys) for each
    of `channels` (default: the feed's), channel by channel, each in the feed's order.

    Per channel, in this order: an item whose keys were seen is SEEN; one filtered out by
    `include`/`exclude` is FILTERED; one older than `max_age` is TOO_OLD (undated items are
    kept); one that tells the same news as an item of this feed that is seen, or posted by
    this poll (same title and text under another link, `identity.content_key`), is SAME_NEWS.
    The rest is taken newest first (`order_key`). On the feed's first poll for the channel
    (`memory.first_poll`), once `backfill` items are posted (none after a `rebuilt` state)
    the others are RECORD. An item that must not be posted as it is (`hold_reason`, or an
    alert with neither title nor summary) is HELD, and takes no place of the backfill. The
    others are POST. With `alerts="none"` the alerts are not made, so an item whose alert
    would be empty is not held yet.

    `articles` maps links to the leads of their article pages (see `wants_article`).
    `alerts`: build the alert of the POST verdicts ("post"), of every verdict that can have
    one ("all", for `preview`), or of none ("none": which items post, quickly, to know which
    pages to fetch).
    """
    leads = articles or {}
    orders = [order_key(item, index, now) for index, item in enumerate(items)]
    newest_first = sorted(range(len(items)), key=lambda index: orders[index], reverse=True)
    verdicts: list[Verdict] = []
    for channel in feed.channels if channels is None else channels:
        outcomes: dict[int, tuple[str, str]] = {}
        told: dict[str, Item] = {}  # content key -> the item of this poll that tells that news
        seen_by = partial(memory.seen_by, channel)
        made_alerts: dict[int, Alert] = {}
        make = partial(_alert, feed=feed, alerts=config.alerts, channel=config.channels[channel], leads=leads)
        for index in newest_first:
            if is_seen(items[index], seen_by, now):
                outcomes[index] = (SEEN, "already seen")
                if (key := content_key(items[index])) is not None:
                    told.setdefault(key, items[index])
        room = None if not memory.first_poll(channel) else (0 if memory.rebuilt else feed.backfill)
        for index in newest_first:
            if index in outcomes:
                continue
            item = items[index]
            key = content_key(item)
            if not matches_filters(item, feed):
                outcomes[index] = (FILTERED, "filtered out by include/exclude")
            elif item.published is not None and item.published < now - feed.max_age:
                outcomes[index] = (TOO_OLD, f"older than max_age ({format_duration(feed.max_age)})")
            elif key is not None and (twin := told.get(key)) is not None:
                outcomes[index] = (SAME_NEWS, f'the same news as "{twin.title}" ({twin.link or "no link"})')
            elif room == 0:
                outcomes[index] = (RECORD, STATE_LOST if memory.rebuilt
                                   else f"first poll (backfill {feed.backfill})")
            elif (problem := hold_reason(item, feed)) is not None:
                outcomes[index] = (HELD, problem)
            elif alerts != "none" and _says_nothing(made := make(item)):
                outcomes[index] = (HELD, NOTHING_TO_SAY)
            else:
                outcomes[index] = (POST, "new")
                if alerts != "none":
                    made_alerts[index] = made
                if room is not None:
                    room -= 1
                if key is not None:
                    told[key] = item
        for index, item in enumerate(items):
            outcome, reason = outcomes[index]
            alert = made_alerts.get(index)
            if alerts == "all" and alert is None and outcome != HELD and hold_reason(item, feed) is None:
                alert = make(item)
            verdicts.append(Verdict(item=item, channel=channel, outcome=outcome, reason=reason,
                                    order=orders[index], alert=alert))
    return verdicts


def _says_nothing(alert: Alert) -> bool:
    """An alert that would be only its link (a title that cleaning empties, no summary)."""
    return not alert.title.strip() and not alert.summary.strip()
