"""What each console page shows, as plain data for its template. Pure over the config, the
daemon's in-memory `Store` and a moment; the handlers only render what these return.

*Stato* is `bridge.status.status_report`, the report `channel-bridge status --json` prints,
told in Italian; *In coda* is `bridge.waits.waiting`, what `channel-bridge queue` lists, with each alert as the
channel's renderer will send it (`preview.render_for`); *Pubblicati* searches the history
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
from bridge.config import ChannelConfig, Config
from bridge.console import chart, published
from bridge.console.markup import plain_html, telegram_html, whatsapp_html
from bridge.preview import render_for
from bridge.status import OPS_DAYS, status_report
from bridge.store import Delivery, Store
from bridge.template import channel_template
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


def stato(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """The *Stato* page: the state directory, every channel, every feed and the ops alerts of
    the last OPS_DAYS days, from `status_report`."""
    tz = config.bridge.timezone
    report = status_report(config, store, now=now)
    names = {feed.id: feed.name for feed in config.feeds}
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
        "counts": {health: sum(1 for f in feeds if f["health"] == health) for health in HEALTH_IT},
        "now": when(now, tz),
    }


@dataclass(frozen=True, slots=True)
class PhonePreview:
    """An alert as the channel will send it: its text as HTML, its length against the limit."""

    platform: str  # "whatsapp" | "telegram" | "mastodon" | "plain"
    html: Markup
    length: int
    limit: int | None
    image_url: str | None

    @property
    def too_long(self) -> bool:
        return self.limit is not None and self.length > self.limit


def phone_preview(channel: ChannelConfig, delivery: Delivery) -> PhonePreview:
    """The phone preview of `delivery` on `channel`: the channel's own text (`render_for`),
    its markup rendered, its length as the platform counts it against the platform's limit
    (the caption's when the alert goes as an image's caption)."""
    alert = delivery.alert
    text = render.plain(alert, channel_template(channel.template, channel.timezone)) if delivery.plain \
        else render_for(channel, alert)
    platform = render.platform_for(channel.type, channel.max_length)
    template = channel_template(channel.template, channel.timezone)
    image = alert.image_url if channel.images and alert.image_url and alert.image_url.startswith("https://") \
        else None
    limit = platform.caption_limit if image and platform.caption_limit else platform.text_limit
    shown = {"whatsapp": whatsapp_html, "telegram": telegram_html}.get(platform.name, plain_html)(text)
    return PhonePreview(platform.name, shown, platform.measure(alert, template),
                        None if platform.name == "plain" else limit, image)


STATE_IT = {"pending": "in attesa", "held": "trattenuto", "failed": "non inviato", "retrying": "in riprova",
            "paused": "canale in pausa"}


def coda(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """The *In coda* page: every pending, held and failed alert, per channel in sending order,
    each with its state, why it waits, when it will go (`waits.waiting`, which `queue`
    prints too), and its phone preview."""
    tz = config.bridge.timezone
    names = {feed.id: feed.name for feed in config.feeds}
    rows = [_row(entry, names, tz) for entry in waiting(config, store, now)]
    return {"rows": rows, "now": when(now, tz), "count": len(rows)}


def _row(entry: Waiting, names: dict[str, str], tz: ZoneInfo) -> dict[str, Any]:
    delivery, channel = entry.delivery, entry.channel
    return {
        "id": delivery.id,
        "channel": delivery.channel,
        "channel_type": channel.type if channel else "—",
        "feed": names.get(delivery.feed_id, delivery.feed_id),
        "title": delivery.alert.title,
        "state": entry.state,
        "state_it": STATE_IT[entry.state],
        "urgent": delivery.urgent,
        "reason": entry.reason,
        "due": when(entry.due, tz) if entry.due else "—",
        "preview": phone_preview(channel, delivery) if channel else None,
    }


def pubblicati(config: Config, store: Store, params: Mapping[str, str],
               digests: published.MonthDigests | None = None) -> dict[str, Any]:
    """The *Pubblicati* page: the posts the query of `params` asks for, one page, newest
    first (`published.search`, which skips the months `digests` rule out), with the form's
    choices and the links to the pages beside.
    A query that cannot be read gives no posts and its `error`. Reads history files: call it
    off the event loop."""
    tz = config.bridge.timezone
    names = {feed.id: feed.name for feed in config.feeds}
    form = {key: params.get(key, "").strip() for key in ("q", "feed", "canale", "dal", "al")}
    choices = {"feeds": sorted(names.items(), key=lambda item: item[1].casefold()),
               "channels": list(config.channels)}
    try:
        query = published.parse_query(params)
    except published.QueryError as exc:
        return {"form": form, **choices, "error": str(exc), "rows": [], "page_number": 1, "first_number": 1,
                "previous_url": None, "next_url": None, "csv_url": None}
    found = published.search(query, store.history_months(), store.month_posts, tz, digests=digests)
    rows = [{
        "posted_at": when(post.posted_at, tz),
        "channel": post.channel,
        "feed": names.get(post.feed_id, post.feed_id),
        "title": post.title,
        "link": post.link if post.link.startswith(("https://", "http://")) else None,
        "link_text": post.link,
        "remote_id": post.remote_id or "—",
        "verified": published.VERIFIED_IT.get(post.verified, ""),
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


def riepilogo(config: Config, store: Store, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """The monthly summary: the posts of the month of `params` ("mese", this month by default)
    in all, per channel, per feed, and per week as an SVG bar chart (`chart.bar_chart`), with
    the links to the months beside. Reads history files: call it off the event loop."""
    tz = config.bridge.timezone
    names = {feed.id: feed.name for feed in config.feeds}
    today = now.astimezone(tz).date()
    try:
        year, month = published.parse_month(params.get("mese", ""), today)
    except published.QueryError as exc:
        return {"error": str(exc), "summary": None, "chart": None, "feeds": [], "previous_url": None,
                "next_url": None, "month_value": params.get("mese", "").strip()[:20]}
    summary = published.month_summary(year, month, store.history_months(), store.month_posts, tz)
    bars = [(f"{start.day}–{end.day}" if start != end else f"{start.day}", posts)
            for start, end, posts in summary.weeks]
    previous = (year - 1, 12) if month == 1 else (year, month - 1)
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return {
        "error": None, "summary": summary, "month_value": f"{year:04d}-{month:02d}",
        "chart": chart.bar_chart(bars, title=f"Pubblicazioni per settimana, {summary.name}"),
        "feeds": [(names.get(feed_id, feed_id), posts) for feed_id, posts in summary.by_feed],
        "previous_url": f"/pubblicati/riepilogo?mese={previous[0]:04d}-{previous[1]:02d}",
        "next_url": (f"/pubblicati/riepilogo?mese={following[0]:04d}-{following[1]:02d}"
                     if following <= (today.year, today.month) else None),
    }
