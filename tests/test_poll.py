"""The seen-policy (pure) and one poll against a real loopback feed server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servers.feeds import FeedServer, rss

from bridge.config import AlertSettings, Config, parse_config
from bridge.fetch import Fetcher, Validators
from bridge.identity import assign_keys
from bridge.item import Item
from bridge.poll import feed_backoff, poll_feed
from bridge.store import FeedState, Store
from bridge.verdict import (
    FILTERED,
    HELD,
    NO_LINK,
    NOTHING_TO_SAY,
    POST,
    RECORD,
    SEEN,
    TOO_OLD,
    FeedMemory,
    SeenBy,
    Verdict,
    alert_for,
    decide,
    is_urgent,
    matches_filters,
)

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


def nothing_seen(channel: str, key: str) -> dict[str, int]:
    return {}


def titles(verdicts: list[Verdict]) -> list[str]:
    return [v.item.title.split()[2] for v in sorted(verdicts, key=lambda v: v.order)]


def posted(verdicts: list[Verdict]) -> list[str]:
    """The numbers of the items posted, oldest first (the outbox's order)."""
    return titles([v for v in verdicts if v.posts])


def choose(
    items: list[Item], *, primed: bool, backfill: int = 0, seen_by: SeenBy = nothing_seen, **feed: object
) -> list[Verdict]:
    """`decide` for one console channel "c" of a feed "f" on the comune's site."""
    config = parse_config(
        {
            "feeds": [{"id": "f", "url": "https://www.comune.esempio.it/feed", "channels": ["c"],
                       "link_domains": ["comune.esempio.it"], "backfill": backfill, "max_age": "7d", **feed}],
            "channels": {"c": {"type": "console"}},
        },
        path=Path("config.toml"), env={},
    )
    memory = FeedMemory(primed=frozenset({"c"} if primed else ()), seen_by=seen_by)
    return decide(config.feeds[0], items, config=config, memory=memory, now=NOW)


def test_first_poll_posts_only_backfill_newest_in_oldest_first_order() -> None:
    items = assign_keys([item(3, hours_ago=1), item(2, hours_ago=2), item(1, hours_ago=3)])
    chosen = choose(items, primed=False, backfill=2)
    assert posted(chosen) == ["2", "3"]
    assert [v.outcome for v in chosen] == [POST, POST, RECORD]
    none = choose(items, primed=False, backfill=0)
    assert posted(none) == [] and {v.outcome for v in none} == {RECORD}


@pytest.mark.parametrize(("new", "backfill", "expected"), [
    (3, 5, ["1", "2", "3"]),  # more backfill than new items: every one, never a slice from the end
    (6, 10, ["1", "2", "3", "4", "5", "6"]),
    (9, 10, [str(n) for n in range(1, 10)]),
    (3, 3, ["1", "2", "3"]),
    (3, 1, ["3"]),
])
def test_backfill_beyond_the_new_items_posts_them_all(new: int, backfill: int, expected: list[str]) -> None:
    items = assign_keys([item(n, hours_ago=new - n) for n in range(new, 0, -1)])  # newest first
    assert posted(choose(items, primed=False, backfill=backfill)) == expected


def test_items_of_one_date_are_newest_at_the_top_of_the_feed() -> None:
    # Scraped feeds stamp every item with the time of the scrape: the feed's order is the only
    # date left, and its top is its newest.
    items = assign_keys([item(n, hours_ago=5) for n in (4, 3, 2, 1)])
    assert posted(choose(items, primed=False, backfill=2)) == ["3", "4"]
    assert posted(choose(items, primed=True)) == ["1", "2", "3", "4"]


def test_primed_feed_posts_every_new_item_oldest_first() -> None:
    items = assign_keys([item(3, hours_ago=1), item(2, hours_ago=5), item(1, hours_ago=3)])
    assert posted(choose(items, primed=True)) == ["2", "1", "3"]


def test_seen_too_old_filtered_and_linkless_items_are_not_posted() -> None:
    items = assign_keys([
        item(1, hours_ago=1),
        item(2, hours_ago=24 * 8),
        item(3, hours_ago=2, link=False),
        item(4, hours_ago=3),
        item(5, hours_ago=None),
    ])
    seen_key = items[3].keys[0]
    chosen = choose(items, primed=True, seen_by=lambda channel, key: {"f": 1} if key == seen_key else {},
                    exclude=["numero 5"])
    assert [(v.outcome, v.reason) for v in chosen] == [
        (POST, "new"),
        (TOO_OLD, "older than max_age (7d)"),
        (HELD, NO_LINK),
        (SEEN, "already seen"),
        (FILTERED, "filtered out by include/exclude"),
    ]


def test_undated_items_are_kept_in_feed_order_oldest_first() -> None:
    items = assign_keys([item(3, hours_ago=None), item(2, hours_ago=None), item(1, hours_ago=None)])
    assert posted(choose(items, primed=True)) == ["1", "2", "3"]


def test_future_dated_items_count_as_now() -> None:
    items = assign_keys([item(2, hours_ago=-48), item(1, hours_ago=1)])
    assert posted(choose(items, primed=True)) == ["1", "2"]


def test_an_item_with_no_title_and_no_text_is_held_never_a_bare_link() -> None:
    bare = Item(feed_id="f", title="", link="https://www.comune.esempio.it/n/9", guid="id-9", text="",
                published=NOW - timedelta(hours=1))
    items = assign_keys([bare, item(1, hours_ago=2)])
    chosen = choose(items, primed=False, backfill=2)
    assert [(v.outcome, v.reason) for v in chosen] == [(HELD, NOTHING_TO_SAY), (POST, "new")]
    assert chosen[0].alert is None
    # A title that cleaning empties says nothing either.
    markup = assign_keys([Item(**{**_fields(bare), "title": "<b> </b>&nbsp;"})])
    assert [v.outcome for v in choose(markup, primed=True)] == [HELD]


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
    # Every held item is kept, per channel, with the guard's reason, for In coda and `queue`:
    # it never enters the outbox, and the next poll sees it as seen (held once).
    kept = store.feed_state("notizie").held
    assert [(h.channel, h.title, h.link, h.at) for h in kept] == [
        (channel, "Bando per contributi alle famiglie", "https://www.comune.esempio.it.evil.example/bando", NOW)
        for channel in ("wa", "tg")]
    assert all(h.reason.startswith("the link points to www.comune.esempio.it.evil.example") for h in kept)
    assert len({h.id for h in kept}) == 2 and not any(d.id in {h.id for h in kept} for d in store.deliveries(None))
    assert asyncio.run(poll()) == []
    assert store.feed_state("notizie").held == kept
    store.close()
    reopened = Store.open(config.bridge.state_dir, read_only=True)
    try:
        assert reopened.feed_state("notizie").held == kept
    finally:
        reopened.close()


def test_a_feed_state_keeps_its_latest_held_items_only() -> None:
    from bridge.models import HELD_KEPT, HeldItem
    from bridge.poll import polled_state

    state = FeedState("notizie")
    feed = _config(Path("/nonexistent"), "https://www.comune.esempio.it/feed").feeds[0]
    for poll_number in range(HELD_KEPT + 5):
        held = [HeldItem(f"{poll_number}-{n}", "wa", f"Titolo {poll_number}", None, "the item has no link", NOW)
                for n in range(2)]
        state = polled_state(state, feed, [], Validators(None, None), NOW, queued=False, held=None, first=None,
                             held_items=held)
    assert len(state.held) == HELD_KEPT
    assert state.held[0].id == f"{HELD_KEPT + 4}-0"  # newest first
    assert FeedState.from_dict(state.to_dict()) == state


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
