"""The seen-policy (pure) and one poll against a real loopback feed server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from servers.feeds import FeedServer, rss

from bridge.config import AlertSettings, Config, parse_config
from bridge.fetch import Fetcher
from bridge.identity import assign_keys
from bridge.item import Item
from bridge.poll import alert_for, feed_backoff, is_urgent, matches_filters, poll_feed, select_items
from bridge.store import FeedState, Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def item(n: int, *, hours_ago: float | None, link: bool = True, feed: str = "f") -> Item:
    return Item(
        feed_id=feed,
        title=f"Notizia numero {n} dal Comune",
        link=f"https://www.comune.esempio.it/n/{n}" if link else None,
        guid=f"id-{n}",
        text=f"Testo della notizia {n}.",
        published=NOW - timedelta(hours=hours_ago) if hours_ago is not None else None,
    )


def nothing_seen(key: str) -> dict[str, int]:
    return {}


def titles(items: tuple[Item, ...]) -> list[str]:
    return [i.title.split()[2] for i in items]


def test_first_poll_posts_only_backfill_newest_in_oldest_first_order() -> None:
    items = assign_keys([item(3, hours_ago=1), item(2, hours_ago=2), item(1, hours_ago=3)])
    chosen = select_items(items, primed=False, backfill=2, max_age=timedelta(days=7), seen_by=nothing_seen, now=NOW)
    assert titles(chosen.post) == ["2", "3"]
    assert len(chosen.seen) == 3
    none = select_items(items, primed=False, backfill=0, max_age=timedelta(days=7), seen_by=nothing_seen, now=NOW)
    assert none.post == () and len(none.seen) == 3


def test_primed_feed_posts_every_new_item_oldest_first() -> None:
    items = assign_keys([item(3, hours_ago=1), item(2, hours_ago=5), item(1, hours_ago=3)])
    chosen = select_items(items, primed=True, backfill=0, max_age=timedelta(days=7), seen_by=nothing_seen, now=NOW)
    assert titles(chosen.post) == ["2", "1", "3"]


def test_seen_too_old_filtered_and_linkless_items_are_not_posted() -> None:
    items = assign_keys([
        item(1, hours_ago=1),
        item(2, hours_ago=24 * 8),
        item(3, hours_ago=2, link=False),
        item(4, hours_ago=3),
        item(5, hours_ago=None),
    ])
    seen_key = items[3].keys[0]
    chosen = select_items(
        items, primed=True, backfill=0, max_age=timedelta(days=7),
        seen_by=lambda key: {"f": 1} if key == seen_key else {}, now=NOW,
        wanted=lambda i: "5" not in i.title,
    )
    assert titles(chosen.post) == ["1"]
    assert chosen.too_old == 1
    assert titles(chosen.no_link) == ["3"]
    assert len(chosen.seen) == 5  # everything is recorded, posted or not


def test_undated_items_are_kept_in_feed_order_oldest_first() -> None:
    items = assign_keys([item(3, hours_ago=None), item(2, hours_ago=None), item(1, hours_ago=None)])
    chosen = select_items(items, primed=True, backfill=0, max_age=timedelta(days=7), seen_by=nothing_seen, now=NOW)
    assert titles(chosen.post) == ["1", "2", "3"]


def test_future_dated_items_count_as_now() -> None:
    items = assign_keys([item(2, hours_ago=-48), item(1, hours_ago=1)])
    chosen = select_items(items, primed=True, backfill=0, max_age=timedelta(days=7), seen_by=nothing_seen, now=NOW)
    assert titles(chosen.post) == ["1", "2"]


def test_filters_and_urgency(tmp_path: Path) -> None:
    config = parse_config(
        {
            "feeds": [{"id": "f", "url": "https://www.comune.esempio.it/feed", "channels": ["c"],
                       "include": ["scuol"], "exclude": ["concorso"]}],
            "channels": {"c": {"type": "console"}},
        },
        path=tmp_path / "config.toml", env={},
    )
    feed = config.feeds[0]
    base = item(1, hours_ago=1)
    assert not matches_filters(base, feed)
    assert matches_filters(Item(**{**_fields(base), "title": "Chiusura scuole"}), feed)
    assert not matches_filters(Item(**{**_fields(base), "title": "Scuole: concorso"}), feed)
    alerts = AlertSettings(urgent_keywords=("allerta",))
    assert is_urgent(Item(**{**_fields(base), "title": "ALLERTA meteo"}), feed, alerts)
    assert not is_urgent(base, feed, alerts)


def _fields(value: Item) -> dict[str, object]:
    return {name: getattr(value, name) for name in value.__slots__}


def test_feed_backoff_doubles_caps_and_honours_retry_after() -> None:
    interval = timedelta(minutes=5)
    assert [feed_backoff(n, interval, None) for n in (1, 2, 3)] == [
        timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20)]
    assert feed_backoff(10, interval, None) == timedelta(hours=1)
    assert feed_backoff(1, interval, 1800) == timedelta(minutes=30)
    assert feed_backoff(1, interval, 10**9) == timedelta(hours=6)


def _config(tmp_path: Path, url: str, **feed: object) -> Config:
    return parse_config(
        {
            "bridge": {"state_dir": "state"},
            "feeds": [{"id": "notizie", "url": url, "channels": ["wa", "tg"], "link_domains": ["comune.esempio.it"],
                       **feed}],
            "channels": {"wa": {"type": "console"}, "tg": {"type": "console"}},
        },
        path=tmp_path / "config.toml", env={},
    )


def test_poll_queues_per_channel_and_dedupes_across_feeds(tmp_path: Path, feed_server: FeedServer) -> None:
    story = {"title": "Chiusura di via Roma per lavori", "link": "https://www.comune.esempio.it/n/1",
             "description": "Da lunedì via Roma è chiusa.", "pubDate": NOW - timedelta(hours=1)}
    feed_server.set_feed("/a.xml", rss([]))
    feed_server.set_feed("/b.xml", rss([]))
    config = parse_config(
        {
            "bridge": {"state_dir": "state"},
            "defaults": {"link_domains": ["comune.esempio.it"]},
            "feeds": [{"id": "a", "url": feed_server.url("/a.xml"), "channels": ["wa"]},
                      {"id": "b", "url": feed_server.url("/b.xml"), "channels": ["wa", "tg"]}],
            "channels": {"wa": {"type": "console"}, "tg": {"type": "console"}},
        },
        path=tmp_path / "config.toml", env={},
    )
    store = Store.open(config.bridge.state_dir)

    async def cycle() -> list[tuple[str, str]]:
        async with Fetcher(user_agent="test") as fetcher:
            queued = []
            for feed in config.feeds:
                result = await poll_feed(feed, config=config, fetcher=fetcher, store=store, now=lambda: NOW)
                assert result.ok, result.error
                queued += [(d.feed_id, d.channel) for d in result.queued]
            return queued

    assert asyncio.run(cycle()) == []  # first polls: recorded, nothing posted
    feed_server.set_feed("/a.xml", rss([story]))
    feed_server.set_feed("/b.xml", rss([{**story, "link": story["link"] + "?utm_source=fb#top"}]))
    # The same page in two feeds goes once to "wa"; "tg" only follows feed b.
    assert asyncio.run(cycle()) == [("a", "wa"), ("b", "tg")]
    assert asyncio.run(cycle()) == []
    store.close()


def test_poll_failure_is_recorded_and_backs_off(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_fault("/feed.xml", "html")
    config = _config(tmp_path, feed_server.url("/feed.xml"))
    store = Store.open(config.bridge.state_dir)

    async def poll(moment: datetime) -> bool:
        async with Fetcher(user_agent="test") as fetcher:
            result = await poll_feed(config.feeds[0], config=config, fetcher=fetcher, store=store, now=lambda: moment)
            return result.skipped

    assert not asyncio.run(poll(NOW))
    state = store.feed_state("notizie")
    assert state.failures == 1 and state.last_error is not None
    assert "looks like a web page" in state.last_error
    assert state.retry_at == NOW + timedelta(minutes=5)
    assert asyncio.run(poll(NOW + timedelta(minutes=1)))  # resting: skipped
    requests = len(feed_server.requests("/feed.xml"))
    assert requests == 1
    store.close()


def test_an_over_long_link_is_posted_with_the_title_never_dropped(tmp_path: Path) -> None:
    config = _config(tmp_path, "https://www.comune.esempio.it/feed")
    long_link = "https://www.comune.esempio.it/portale/" + "a" * 450
    alert = alert_for(Item(**{**_fields(item(1, hours_ago=1)), "link": long_link}), config.feeds[0], config.alerts,
                      config.channels["wa"])
    assert alert.link == long_link
    assert alert.title.startswith("Notizia numero 1")


def test_a_rebuilt_feed_records_its_items_and_posts_none_even_with_backfill(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.set_feed("/feed.xml", rss([
        {"title": f"Notizia numero {n} dal Comune", "link": f"https://www.comune.esempio.it/n/{n}",
         "pubDate": NOW - timedelta(hours=n)} for n in range(1, 4)
    ]))
    config = _config(tmp_path, feed_server.url("/feed.xml"), backfill=2)
    store = Store.open(config.bridge.state_dir)
    store.save_feed(FeedState("notizie", rebuilt=True))

    async def poll() -> int:
        async with Fetcher(user_agent="test") as fetcher:
            result = await poll_feed(config.feeds[0], config=config, fetcher=fetcher, store=store, now=lambda: NOW)
            return len(result.queued)

    assert asyncio.run(poll()) == 0
    assert not store.feed_state("notizie").rebuilt
    store.close()


def test_an_item_linking_off_the_feeds_domains_is_held_and_reported(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server.url("/feed.xml"))
    store = Store.open(config.bridge.state_dir)

    async def poll() -> list[str]:
        async with Fetcher(user_agent="test") as fetcher:
            result = await poll_feed(config.feeds[0], config=config, fetcher=fetcher, store=store, now=lambda: NOW)
            return [d.alert.link for d in result.queued if d.channel == "wa"]

    assert asyncio.run(poll()) == []
    feed_server.set_feed("/feed.xml", rss([
        {"title": "Bando per contributi alle famiglie", "link": "https://www.comune.esempio.it.evil.example/bando",
         "pubDate": NOW - timedelta(hours=2)},
        {"title": "Chiusura di via Roma per lavori", "link": "https://www.comune.esempio.it/via-roma",
         "pubDate": NOW - timedelta(hours=1)},
    ]))
    assert asyncio.run(poll()) == ["https://www.comune.esempio.it/via-roma"]
    held = store.feed_state("notizie").last_held
    assert held is not None and "comune.esempio.it.evil.example" in held
    store.close()


def test_items_without_a_usable_link_are_held_with_their_reason(tmp_path: Path, feed_server: FeedServer) -> None:
    # The feed's own host and port are on the link guard's list: a link made from a guid
    # ("12345" -> http://127.0.0.1:PORT/12345) would pass it, and be posted.
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server.url("/feed.xml"))
    store = Store.open(config.bridge.state_dir)

    async def poll() -> list[str]:
        async with Fetcher(user_agent="test") as fetcher:
            result = await poll_feed(config.feeds[0], config=config, fetcher=fetcher, store=store, now=lambda: NOW)
            return [d.alert.link for d in result.queued if d.channel == "wa"]

    assert asyncio.run(poll()) == []
    date = "Fri, 20 Nov 2026 10:00:00 GMT"
    feed_server.set_feed("/feed.xml", (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Comune</title>"
        f"<link>https://www.comune.esempio.it/</link>"
        f"<item><title>Avviso senza collegamento</title><guid>12345</guid><pubDate>{date}</pubDate></item>"
        "<item><title>Avviso con due indirizzi</title>"
        "<link>https://www.comune.esempio.it/a\u00a0https://evil.example/x</link>"
        f"<pubDate>{date}</pubDate></item>"
        "<item><title>Chiusura di via Roma per lavori</title><link>https://www.comune.esempio.it/via-roma</link>"
        f"<pubDate>{date}</pubDate></item>"
        "</channel></rss>"))
    assert asyncio.run(poll()) == ["https://www.comune.esempio.it/via-roma"]
    held = store.feed_state("notizie").last_held
    assert held is not None and held.startswith("Avviso") and ("12345" in held or "U+00A0" in held)
    store.close()
