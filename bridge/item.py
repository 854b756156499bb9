"""The two values that flow through the pipeline: a feed `Item` and the `Alert` made from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a feed, normalised.

    `title`, `text` and `content` are plain text (entities decoded, NFKC, whitespace
    collapsed); `html` is the richest body exactly as the feed gave it. `link` is the
    canonical absolute URL (None when the entry has no usable link; `no_link_reason` then says
    why, for the log and `status`: an item without a link is held, never given one made up).
    `published` is aware and in UTC, or None for an undated entry. `keys` are the identity
    keys assigned by `bridge.identity.assign_keys`; empty until then.
    """

    feed_id: str
    title: str
    link: str | None
    guid: str | None
    text: str
    content: str = ""
    html: str = ""
    published: datetime | None = None
    categories: tuple[str, ...] = ()
    image_url: str | None = None
    keys: tuple[str, ...] = field(default=())
    no_link_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """What citizens read: a title, one or two lead sentences, a link to the official page.

    `summary` is empty when the alert falls back to title + link. Channels render it with
    `bridge.render`; the outbox stores it with `to_dict` so a queued alert survives restarts.
    """

    feed_id: str
    feed_name: str
    title: str
    summary: str
    link: str
    published: datetime | None = None
    urgent: bool = False
    image_url: str | None = None
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; `from_dict` reverses it exactly."""
        return {
            "feed_id": self.feed_id,
            "feed_name": self.feed_name,
            "title": self.title,
            "summary": self.summary,
            "link": self.link,
            "published": self.published.isoformat() if self.published else None,
            "urgent": self.urgent,
            "image_url": self.image_url,
            "categories": list(self.categories),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Rebuild an alert stored with `to_dict`."""
        published = data.get("published")
        return cls(
            feed_id=data["feed_id"],
            feed_name=data["feed_name"],
            title=data["title"],
            summary=data["summary"],
            link=data["link"],
            published=datetime.fromisoformat(published) if published else None,
            urgent=bool(data.get("urgent", False)),
            image_url=data.get("image_url"),
            categories=tuple(data.get("categories", ())),
        )
