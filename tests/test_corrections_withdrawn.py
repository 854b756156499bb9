""""Ritirato alla fonte" through the real Bridge (`run_once`) and the loopback feed server: a
posted item that leaves its feed within a day while an older item is still listed is marked
once (audit trail, log) and shown on *Pubblicati*; an item pushed out of the feed by newer
ones is not; nothing is deleted on the channel."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha

from bridge.config import load_config
from bridge.console import views
from bridge.daemon import Bridge
from bridge.engagement import Engagement
from bridge.store import Store

CHAT = "120363000000000093@newsletter"
NOW = datetime.now(UTC)


def news(n: int, hours_ago: float) -> dict[str, Any]:
    return {"title": f"Avviso numero {n}: lavori in via Roma", "link": f"https://www.comune.esempio.it/novita/{n}/",
            "guid": f"https://www.comune.esempio.it/?p={n}", "pubDate": NOW - timedelta(hours=hours_ago),
            "description": f"Da lunedì via Roma resta chiusa per lavori, cantiere numero {n}."}


def setup(tmp: Path, feeds: FeedServer, waha: FakeWaha) -> tuple[Any, Store]:
    path = tmp / "config.toml"
    path.write_text(f"""
[bridge]
state_dir = "state"

[[feeds]]
id = "notizie"
url = "{feeds.url('/feed.xml')}"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"
backfill = 3

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
""", encoding="utf-8")
    config = load_config(path, dict(os.environ))
    return config, Store.open(config.bridge.state_dir)


def cycle(config: Any, store: Store) -> None:
    asyncio.run(Bridge(config, store).run_once())


def test_an_item_gone_while_older_ones_stay_is_marked_once_and_shown(tmp_path: Path, feed_server: FeedServer,
                                                                     waha_server: FakeWaha) -> None:
    config, store = setup(tmp_path, feed_server, waha_server)
    try:
        feed_server.set_feed("/feed.xml", rss([news(2, 2), news(1, 3)]))
        cycle(config, store)
        assert len(waha_server.posts) == 2
        posts = {p.title: p for p in store.posts()}
        gone = posts["Avviso numero 2: lavori in via Roma"]
        feed_server.set_feed("/feed.xml", rss([news(1, 3)]))  # number 2 withdrawn, number 1 older, still there
        cycle(config, store)
        cycle(config, store)
        assert store.withdrawn(gone.delivery_id) is not None
        assert store.withdrawn(posts["Avviso numero 1: lavori in via Roma"].delivery_id) is None
        assert [(e.who, e.where, e.action, e.alert_id) for e in store.audit_entries()] == [
            ("channel-bridge", "daemon", "withdrawn", gone.delivery_id)]  # once
        assert len(waha_server.visible_posts) == 2 and waha_server.deletions == []  # nothing deleted
        page = views.pubblicati(config, store, {}, Engagement(lambda: 0.0), datetime.now(UTC))
        marked = {row["title"]: row["withdrawn"] for row in page["rows"]}
        assert marked["Avviso numero 2: lavori in via Roma"] and not marked["Avviso numero 1: lavori in via Roma"]
    finally:
        store.close()


def test_an_item_pushed_out_by_newer_ones_is_not_withdrawn(tmp_path: Path, feed_server: FeedServer,
                                                           waha_server: FakeWaha) -> None:
    config, store = setup(tmp_path, feed_server, waha_server)
    try:
        feed_server.set_feed("/feed.xml", rss([news(2, 2), news(1, 3)]))
        cycle(config, store)
        feed_server.set_feed("/feed.xml", rss([news(4, 0.5), news(3, 1)]))  # a short window moved on
        cycle(config, store)
        assert [e.action for e in store.audit_entries()] == []
        assert all(store.withdrawn(p.delivery_id) is None for p in store.posts())
    finally:
        store.close()
