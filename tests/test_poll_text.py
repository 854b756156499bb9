"""What a poll posts, for feeds whose text is hostile: a real feed on a loopback server, polled by
`poll_feed` with the daemon's parser pool, and the alerts as they are queued in the outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from servers.feeds import FeedServer, rss

from bridge import render
from bridge.config import Config, parse_config
from bridge.fetch import Fetcher
from bridge.parser_pool import ParserPool
from bridge.poll import PollResult, poll_feed
from bridge.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SITE = "https://www.comune.esempio.it"


def _config(tmp_path: Path, url: str, **feed: Any) -> Config:
    return parse_config(
        {
            "bridge": {"state_dir": "state"},
            "feeds": [{"id": "notizie", "url": url, "channels": ["wa"], "link_domains": ["comune.esempio.it"],
                       "fetch_article": "never", **feed}],
            "channels": {"wa": {"type": "waha", "url": "http://127.0.0.1:9", "chat_id": "1@newsletter",
                                "api_key": "env:KEY"}},
        },
        path=tmp_path / "config.toml", env={"KEY": "test-key-not-secret"},
    )


def _poll(config: Config, store: Store) -> PollResult:
    async def poll() -> PollResult:
        pool = ParserPool()
        try:
            async with Fetcher(user_agent="test") as fetcher:
                return await poll_feed(config.feeds[0], config=config, fetcher=fetcher, store=store,
                                       now=lambda: NOW, parser=pool)
        finally:
            await pool.aclose()

    return asyncio.run(poll())


def _story(n: int, title: str, description: str = "") -> dict[str, Any]:
    return {"title": title, "link": f"{SITE}/notizie/{n}", "guid": f"g{n}",
            "description": description or f"Il testo della notizia numero {n} del Comune.",
            "pubDate": NOW - timedelta(hours=n)}


def test_one_item_with_surrogate_references_does_not_block_its_feed(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server.url("/feed.xml"))
    store = Store.open(config.bridge.state_dir)
    try:
        assert _poll(config, store).ok  # primed: from now on every new item is posted
        body = rss([
            _story(1, "Sagra d'autunno PAIR in piazza", "Tutti in piazza PAIR sabato sera, LONE ingresso libero."),
            _story(2, "Chiusura di via Roma per lavori"),
            _story(3, "Nuovi orari della biblioteca"),
        ])
        # As some CMS escapers write an emoji: its two UTF-16 halves, each as a reference.
        feed_server.set_feed("/feed.xml", body.replace("PAIR", "&#55357;&#56832;").replace("LONE", "&#xD800;"))
        result = _poll(config, store)
        assert result.ok, result.error
        alerts = {d.alert.link: d.alert for d in result.queued}
        assert sorted(alerts) == [f"{SITE}/notizie/{n}" for n in (1, 2, 3)]
        festa = alerts[f"{SITE}/notizie/1"]
        assert festa.title == "Sagra d'autunno \U0001f600 in piazza"
        assert festa.summary == "Tutti in piazza \U0001f600 sabato sera, \ufffd ingresso libero."
        render.whatsapp(festa).encode("utf-8")  # what goes on the wire
        stored = {d.alert.title for d in store.deliveries("wa")}
        assert "Sagra d'autunno \U0001f600 in piazza" in stored and len(stored) == 3
    finally:
        store.close()
