"""What each console page shows, as plain data for its template. Pure over the config, the
daemon's in-memory `Store` and a moment; the handlers only render what these return.

*Stato* is `bridge.status.status_report`, the report `channel-bridge status --json` prints,
told in Italian; *In coda* is `bridge.waits.waiting`, what `channel-bridge queue` lists, with each alert as the
channel will send it (`bridge.channels.outgoing_for`, the function its `send` calls),
beside it the same alert on the feed's Telegram and Mastodon channels; *Pubblicati* searches the history
with `published.search`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from markupsafe import Markup

from bridge import render
from bridge.channels import outgoing_for
from bridge.config import ChannelConfig, Config
from bridge.console import chart, published
from bridge.console.editor import offered
from bridge.console.markup import plain_html, telegram_html, whatsapp_html
from bridge.engagement import ENGAGEMENT_READ, Engagement
from bridge.identity import canonical_link
from bridge.item import Alert
from bridge.models import Post
from bridge.status import HEALTH_ORDER, OPS_DAYS, feed_healths, status_report
from bridge.store import Delivery, Store
from bridge.waits import Waiting, waiting

HEALTH_IT = {
    "ok": "regolare",
    "error": "ultimo controllo fallito",
    "failing": "in errore",
    "stale": "fermo: niente di nuovo da tempo",
    "new": "non ancora controllato",
}


OPS_STATE_IT = {"posted": "pubblicato", "pending": "in coda", "failed": "non inviato"}


def when(text: str | datetime | None, tz: ZoneInfo) -> str:
    """A moment for people, in the bridge's time zone: "07/12/2026 10:32"; "—" for none."""
    if text is None:
        return "—"
    moment = datetime.fromisoformat(text) if isinstance(text, str) else text
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M")


FEEDS_PER_PAGE = 100


def stato(config: Config, store: Store, now: datetime, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The *Stato* page: the state directory, every channel, the ops alerts of the last
    OPS_DAYS days, and the feeds, those most in need of a person first (`HEALTH_ORDER`, then
    by name), FEEDS_PER_PAGE a page, all of them or those of one health (`salute`), from
    `status_report`. A comune with thousands of feeds gets a page a person can read, and the
    daemon's loop renders a page, not the list."""
    params = params or {}
    tz = config.bridge.timezone
    names = {feed.id: feed.name for feed in config.feeds}
    healths = feed_healths(config, store, now)
    counts = {health: 0 for health in HEALTH_IT}
    for health in healths.values():
        counts[health] = counts.get(health, 0) + 1
    wanted = params.get("salute", "")
    if wanted not in HEALTH_IT:
        wanted = ""
    rank = {health: place for place, health in enumerate(HEALTH_ORDER)}
    listed = sorted((fid for fid, health in healths.items() if not wanted or health == wanted),
                    key=lambda fid: (rank.get(healths[fid], len(rank)), names[fid].casefold(), fid))
    pages = max(1, -(-len(listed) // FEEDS_PER_PAGE))
    try:
        page = min(max(1, int(params.get("pagina", "1"))), pages)
    except ValueError:
        page = 1
    shown = listed[(page - 1) * FEEDS_PER_PAGE:page * FEEDS_PER_PAGE]
    report = status_report(config, store, now=now, feed_ids=shown)

    def page_url(number: int) -> str:
        return "/?" + urlencode({**({"salute": wanted} if wanted else {}), "pagina": number})

    feeds = [{
        "id": feed["id"],
        "name": names.get(feed["id"], feed["id"]),
        "health": feed["health"],
        "health_it": HEALTH_IT.get(feed["health"], feed["health"]),
        "problem": feed["health_detail"] or feed["last_error"] or (
            f"trattenuto: {feed['last_held']}" if feed["last_held"] else ""),
        "last_poll": when(feed["last_poll"], tz),
        "last_new_item": when(feed["last_new_item"], tz),
        "failing_since": when(feed["failing_since"], tz) if feed["failing_since"] else "",
        "failures": feed["consecutive_failures"],
    } for feed in report["feeds"]]
    channels = [{
        "name": channel["name"],
        "type": channel["type"] or "—",
        "queue": channel["queue"],
        "held": channel["held"],
        "awaiting": channel["awaiting"],
        "stopped": channel["stopped"],
        "failed": channel["failed"],
        "paused": channel["paused"],
        "what_to_do": ("correggere il canale o il gateway (token, sessione WhatsApp), poi chiedere al CED "
                       "di ricaricare il servizio: la coda riparte da sola") if channel["paused"] else "",
        "in_config": channel["in_config"],
        "problem": channel["last_error"] or (f"ultimo fallito: {channel['last_failure']}"
                                             if channel["last_failure"] else ""),
        "last_post": when(channel["last_post"], tz),
    } for channel in report["channels"]]
    ops = [{**alert, "at": when(alert["at"], tz), "state_it": OPS_STATE_IT.get(alert["state"], alert["state"])}
           for alert in report["ops"]]
    state = report["state"]
    return {
        "ops": ops,
        "ops_days": OPS_DAYS,
        "state_ok": state["problem"] is None,
        "state_problem": state["problem"],
        "state_hint": state["hint"],
        "state_warning": state["warning"],
        "feeds": feeds,
        "channels": channels,
        "counts": counts,
        "feeds_total": len(healths),
        "listed": len(listed),
        "health_filter": wanted,
        "health_filter_it": HEALTH_IT.get(wanted, ""),
        "first_number": (page - 1) * FEEDS_PER_PAGE + 1,
        "page_number": page,
        "pages": pages,
        "previous_url": page_url(page - 1) if page > 1 else None,
        "next_url": page_url(page + 1) if page < pages else None,
        "health_it": HEALTH_IT,
        "now": when(now, tz),
    }


@dataclass(frozen=True, slots=True)
class PhonePreview:
    """An alert as one channel will send it: the channel, its platform, its exact text
    (`bridge.channels.outgoing_for`) as HTML with the platform's markup rendered, its length
    as the platform counts it against the platform's limit, the image it goes with."""

    channel: str
    platform: str  # "whatsapp" | "telegram" | "mastodon" | "facebook" | "bluesky" | "plain"
    html: Markup
    length: int
    limit: int | None
    image_url: str | None

    @property
    def too_long(self) -> bool:
        return self.limit is not None and self.length > self.limit

    @property
    def platform_it(self) -> str:
        """The platform's name as the page says it."""
        return PLATFORM_IT[self.platform]


_MARKUP_HTML = {"whatsapp": whatsapp_html, "telegram-html": telegram_html, "plain": plain_html}


def phone_preview(channel: ChannelConfig, alert: Alert, *, plain: bool = False) -> PhonePreview:
    """The phone preview of `alert` on `channel` (`plain`: in its plainest form, as a channel
    that refused it once sends it): the channel's own message (`outgoing_for`), its markup
    rendered safely (`bridge.console.markup`), its length and limit as the channel counts
    them (the caption's when it goes as an image's caption). An image is shown only from an
    https address (the page loads it)."""
    message = outgoing_for(channel, alert, plain=plain)
    image = message.image_url if message.image_url and message.image_url.startswith("https://") else None
    shown = _MARKUP_HTML[message.markup](message.text)
    return PhonePreview(channel.name, render.platform_for(channel.type).name, shown, message.length, message.limit,
                        image)


# The renderings shown beside an alert's own, when the alert's feed also posts there.
BESIDE_TYPES = ("telegram", "mastodon")


SiblingKey = tuple[str, str, float, datetime, str | None]


def _item_of(channel: str, delivery: Delivery) -> SiblingKey:
    """What the deliveries of one item to several channels share, with `channel`: the feed, the
    place in the queues and the poll that queued them, the link without the channel's UTM
    parameters (`identity.canonical_link`)."""
    return channel, delivery.feed_id, delivery.order, delivery.created, canonical_link(delivery.alert.link)


def beside(config: Config, entry: Waiting, siblings: Mapping[SiblingKey, Delivery]) -> list[PhonePreview]:
    """The previews of `entry`'s alert on the other Telegram and Mastodon channels its feed
    posts to (all those configured when the feed is no longer in the config), in config
    order: each channel's own delivery of the same item when it waits too (`siblings`, by
    `_item_of`), else `entry`'s alert as that channel would send it."""
    delivery = entry.delivery
    if delivery is None:
        return []
    feed = next((f for f in config.feeds if f.id == delivery.feed_id), None)
    names = feed.channels if feed is not None else tuple(config.channels)
    previews = []
    for name in names:
        channel = config.channels.get(name)
        if channel is None or name == delivery.channel or channel.type not in BESIDE_TYPES:
            continue
        own = siblings.get(_item_of(name, delivery))
        alert = own.alert if own is not None else delivery.alert
        previews.append(phone_preview(channel, alert, plain=own.plain if own is not None else False))
    return previews


PLATFORM_IT = {"whatsapp": "WhatsApp", "telegram": "Telegram", "mastodon": "Mastodon", "facebook": "Facebook",
               "bluesky": "Bluesky", "plain": "testo semplice"}
STATE_IT = {"pending": "in attesa", "awaiting": "da approvare",
            "held": "trattenuto", "failed": "non inviato", "retrying": "in riprova",
            "paused": "canale in pausa"}


def coda(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """The *In coda* page: every pending, held and failed alert, per channel in sending order,
    and the items the link guard held, each with its state, why it waits (and, for a held
    item, what to do), when it will go (`waits.waiting`, which `queue` prints too), its phone
    preview and, beside it, its renderings on the feed's Telegram and Mastodon channels."""
    tz = config.bridge.timezone
    names = {feed.id: feed.name for feed in config.feeds}
    entries = waiting(config, store, now)
    siblings = {_item_of(e.delivery.channel, e.delivery): e.delivery for e in entries if e.delivery is not None}
    rows = [_row(config, entry, names, tz, siblings) for entry in entries]
    return {"rows": rows, "now": when(now, tz), "count": len(rows)}


def _row(config: Config, entry: Waiting, names: dict[str, str], tz: ZoneInfo,
         siblings: Mapping[SiblingKey, Delivery]) -> dict[str, Any]:
    channel, delivery = entry.channel, entry.delivery
    own = phone_preview(channel, delivery.alert, plain=delivery.plain) if channel and delivery else None
    return {
        "id": entry.id,
        "channel": entry.channel_name,
        "channel_type": channel.type if channel else "—",
        "feed": names.get(entry.feed_id, entry.feed_id),
        "title": entry.title,
        "state": entry.state,
        "state_it": STATE_IT[entry.state],
        "urgent": entry.urgent,
        "reason": entry.reason,
        "remedy": entry.remedy,
        "link": entry.link if entry.held is not None else None,
        "due": when(entry.due, tz) if entry.due else "—",
        "previews": [own, *beside(config, entry, siblings)] if own else [],
        "actions": offered(delivery),
        "summary": delivery.alert.summary if delivery is not None else "",
    }


def read_at(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    """When counts were read, for people: "14:05" today, "14:05 del 06/12/2026" before."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    return f"{local:%H:%M}" if local.date() == today else f"{local:%H:%M} del {local:%d/%m/%Y}"


def waha_channels(config: Config) -> list[str]:
    """The channels whose posts have views and reactions: those through WAHA."""
    return [name for name, channel in config.channels.items() if channel.type == "waha"]


def readings(config: Config, engagement: Engagement, now: datetime) -> list[dict[str, str | None]]:
    """For each WAHA channel, when its views and reactions were last read (None: not yet)."""
    tz = config.bridge.timezone
    found = []
    for name in waha_channels(config):
        reading = engagement.reading(name)
        found.append({"channel": name, "read_at": read_at(reading.read_at, now, tz) if reading else None})
    return found


def counts_cells(post: Post, waha: list[str], engagement: Engagement) -> dict[str, Any]:
    """A post's views and reactions as the page shows them: numbers when the last reading of
    its channel covered it; "—" for a WAHA post it did not; nothing at all for a post on
    another platform, which has no such counts (not 0)."""
    if post.channel not in waha:
        return {"views": "", "reactions": "", "reactions_title": ""}
    counts = engagement.counts_for(post)
    if counts is None:
        return {"views": "—", "reactions": "—", "reactions_title": ""}
    detail = " ".join(f"{emoji} {count}" for emoji, count in counts.reactions)
    return {"views": italian_number(counts.views), "reactions": italian_number(counts.reactions_total),
            "reactions_title": detail}


def italian_number(value: int) -> str:
    """A whole number as Italian writes it: 12.345."""
    return f"{value:,}".replace(",", ".")


def pubblicati(config: Config, store: Store, params: Mapping[str, str], engagement: Engagement,
               now: datetime, digests: published.MonthDigests | None = None) -> dict[str, Any]:
    """The *Pubblicati* page: the posts the query of `params` asks for, one page, newest
    first (`published.search`, which skips the months `digests` rule out), with the form's
    choices and the links to the pages beside,
    and for WAHA posts their views and reactions from `engagement` (`counts_cells`) with when
    each channel's were read. A query that cannot be read gives no posts and its `error`.
    Reads history files: call it off the event loop."""
    tz = config.bridge.timezone
    names = {feed.id: feed.name for feed in config.feeds}
    form = {key: params.get(key, "").strip() for key in ("q", "feed", "canale", "dal", "al")}
    waha = waha_channels(config)
    choices = {"feeds": sorted(names.items(), key=lambda item: item[1].casefold()),
               "channels": list(config.channels), "readings": readings(config, engagement, now),
               "engagement_read": ENGAGEMENT_READ, "with_counts": bool(waha)}
    try:
        query = published.parse_query(params)
    except published.QueryError as exc:
        return {"form": form, **choices, "error": str(exc), "rows": [], "page_number": 1, "first_number": 1,
                "previous_url": None, "next_url": None, "csv_url": None}
    found = published.search(query, store.history_months(), store.month_posts, tz, digests=digests)
    rows = [{
        "id": post.delivery_id,
        "posted_at": when(post.posted_at, tz),
        "channel": post.channel,
        "feed": names.get(post.feed_id, post.feed_id),
        "title": post.title,
        "link": post.link if post.link.startswith(("https://", "http://")) else None,
        "link_text": post.link,
        "remote_id": post.remote_id or "—",
        "verified": published.VERIFIED_IT.get(post.verified, ""),
        "withdrawn": when(gone, tz) if (gone := store.withdrawn(post.delivery_id)) is not None else None,
        **counts_cells(post, waha, engagement),
    } for post in found.posts]
    filters = {key: value for key, value in form.items() if value}

    def page_url(page: int) -> str:
        return "/pubblicati?" + urlencode({**filters, **({"pagina": str(page)} if page > 1 else {})})

    return {
        "form": form, **choices, "error": None, "rows": rows, "page_number": found.page,
        "first_number": found.first_number,
        "previous_url": page_url(found.page - 1) if found.page > 1 else None,
        "next_url": page_url(found.page + 1) if found.has_next else None,
        "csv_url": "/pubblicati.csv" + (f"?{urlencode(filters)}" if filters else ""),
    }


def riepilogo(config: Config, store: Store, params: Mapping[str, str], now: datetime,
              engagement: Engagement) -> dict[str, Any]:
    """The monthly summary: the posts of the month of `params` ("mese", this month by default)
    in all, per channel, per feed, and per week as an SVG bar chart (`chart.bar_chart`), beside
    it the views per week of the WAHA posts whose views are known (when the config has a WAHA
    channel), with the links to the months beside. Reads history files: call it off the event
    loop."""
    tz = config.bridge.timezone
    names = {feed.id: feed.name for feed in config.feeds}
    today = now.astimezone(tz).date()
    try:
        year, month = published.parse_month(params.get("mese", ""), today)
    except published.QueryError as exc:
        return {"error": str(exc), "summary": None, "chart": None, "views_chart": None, "readings": [],
                "feeds": [], "previous_url": None, "next_url": None,
                "month_value": params.get("mese", "").strip()[:20]}
    summary = published.month_summary(year, month, store.history_months(), store.month_posts, tz,
                                      engagement.counts_for)
    bars = [(f"{start.day}–{end.day}" if start != end else f"{start.day}", posts)
            for start, end, posts in summary.weeks]
    previous = (year - 1, 12) if month == 1 else (year, month - 1)
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return {
        "error": None, "summary": summary, "month_value": f"{year:04d}-{month:02d}",
        "chart": chart.bar_chart(bars, title=f"Pubblicazioni per settimana, {summary.name}", ident="posts"),
        "views_chart": chart.bar_chart(
            [(label, views) for (label, _), views in zip(bars, summary.week_views, strict=True)],
            title=f"Visualizzazioni per settimana, {summary.name}", ident="views", colour=chart.VIEWS_COLOUR,
        ) if waha_channels(config) else None,
        "readings": readings(config, engagement, now),
        "engagement_read": ENGAGEMENT_READ,
        "feeds": [(names.get(feed_id, feed_id), posts) for feed_id, posts in summary.by_feed],
        "previous_url": f"/pubblicati/riepilogo?mese={previous[0]:04d}-{previous[1]:02d}",
        "next_url": (f"/pubblicati/riepilogo?mese={following[0]:04d}-{following[1]:02d}"
                     if following <= (today.year, today.month) else None),
    }
