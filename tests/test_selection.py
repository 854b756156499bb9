"""Which items a poll posts: the first poll's backfill, ties on one date, the same news under
two links of one feed. Real corpus feeds (../shared, never copied here) served on loopback,
polled by the real poll into a real state directory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servers.feeds import FeedServer, rss

from bridge.config import Config, parse_config
from bridge.fetch import Fetcher
from bridge.parse import parse_feed
from bridge.poll import poll_feed
from bridge.store import FeedState, Store
from bridge.verdict import hold_reason

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "feeds"
NOW = datetime(2026, 8, 23, 9, 0, tzinfo=UTC)  # the day after the scraped feeds were taken
SITE = "https://comune.altavillavicentina.vi.it"


def _corpus(name: str) -> bytes:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"the corpus is not beside the repository ({path})")
    return path.read_bytes()


def _config(tmp_path: Path, url: str, domain: str, **feed: Any) -> Config:
    return parse_config(
        {
            "bridge": {"state_dir": "state"},
            "feeds": [{"id": "notizie", "url": url, "channels": ["wa"], "link_domains": [domain],
                       "fetch_article": "never", **feed}],
            "channels": {"wa": {"type": "console"}},
        },
        path=tmp_path / "config.toml", env={},
    )


def _poll(config: Config, store: Store, moment: datetime = NOW) -> list[str]:
    """One poll of the config's feed: the links it queued, in the outbox's order."""

    async def run() -> list[str]:
        async with Fetcher(user_agent="test") as fetcher:
            result = await poll_feed(config.feeds[0], config=config, fetcher=fetcher, store=store,
                                     now=lambda: moment)
            assert result.ok, result.error
            return [d.alert.link for d in sorted(result.queued, key=lambda d: d.order)]

    return asyncio.run(run())


SCRAPED = [
    ("08_REAL_scraped_villaverla_opencity.xml", "comune.villaverla.vi.it"),
    ("10_REAL_scraped_bressanvido.xml", "comune.bressanvido.vi.it"),
    ("11_REAL_scraped_arcugnano_lorem_ipsum.xml", "comune.arcugnano.vi.it"),
]


@pytest.mark.parametrize("backfill", [2, 5, 10, 50])
@pytest.mark.parametrize(("name", "domain"), SCRAPED, ids=[name.split("_")[3] for name, _ in SCRAPED])
def test_a_first_poll_posts_the_newest_backfill_items_from_the_top_of_the_feed(
    tmp_path: Path, feed_server: FeedServer, name: str, domain: str, backfill: int
) -> None:
    body = _corpus(name)
    feed_server.set_feed("/feed.xml", body)
    config = _config(tmp_path, feed_server.url("/feed.xml"), domain, backfill=backfill)
    feed = config.feeds[0]
    parsed = parse_feed(feed.id, body, url=feed.url)
    assert len({item.published for item in parsed.items}) == 1  # one date for every item: the scrape's
    postable = [item.link for item in parsed.items if hold_reason(item, feed) is None]
    assert len(postable) >= 5
    store = Store.open(config.bridge.state_dir)
    try:
        # The top of the feed is its newest: the first `backfill` of them, sent oldest first.
        assert _poll(config, store) == list(reversed(postable[:backfill]))
    finally:
        store.close()


def _notice(n: int, title: str, text: str, link: str | None = None) -> dict[str, Any]:
    return {"title": title, "link": link or f"{SITE}/novita/notizia-{n}/", "description": text,
            "pubDate": NOW - timedelta(hours=n)}


ALLOGGI = "Bando di concorso per l'assegnazione di alloggi di edilizia residenziale pubblica anno 2025"
ALLOGGI_TEXT = ("Dal 17 novembre 2025 al 19 dicembre 2025 è possibile presentare domanda per l'assegnazione "
                "di alloggi di edilizia residenziale pubblica.")
BY_ID = f"{SITE}/?post_type=notizia&p=96839"
PERMALINK = f"{SITE}/novita/bando-di-concorso-per-lassegnazione-di-alloggi-di-edilizia-residenziale-pubblica-anno-2025/"


def test_the_same_news_twice_in_one_feed_under_two_links_is_posted_once(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    body = _corpus("13_SYNTHETIC_quirks_observed_in_real_data.xml")
    feed_server.set_feed("/feed.xml", body)
    config = _config(tmp_path, feed_server.url("/feed.xml"), "comune.altavillavicentina.vi.it", backfill=20,
                     max_age="3650d")
    store = Store.open(config.bridge.state_dir)
    try:
        posted = _poll(config, store)
        # Quirk Q3: the post's id link and its permalink, one title, one text.
        assert [link for link in posted if "alloggi" in link or "96839" in link] == [BY_ID]
        assert _poll(config, store) == []
    finally:
        store.close()


def test_a_twin_that_comes_later_even_after_a_restart_is_not_posted(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server.url("/feed.xml"), "comune.altavillavicentina.vi.it")
    store = Store.open(config.bridge.state_dir)
    try:
        assert _poll(config, store) == []  # the first poll
        feed_server.set_feed("/feed.xml", rss([_notice(2, ALLOGGI, ALLOGGI_TEXT, BY_ID)]))
        assert _poll(config, store) == [BY_ID]
    finally:
        store.close()
    # The site now lists the permalink in place of the id link: the content key, on disk, says
    # it is the same news.
    store = Store.open(config.bridge.state_dir)
    try:
        feed_server.set_feed("/feed.xml", rss([_notice(1, ALLOGGI, ALLOGGI_TEXT, PERMALINK)]))
        assert _poll(config, store, NOW + timedelta(hours=1)) == []
    finally:
        store.close()


def test_a_twin_of_an_item_recorded_by_an_older_state_is_not_posted(tmp_path: Path, feed_server: FeedServer) -> None:
    # A state written before content keys existed: the feed's file holds the identity keys only.
    feed_server.set_feed("/feed.xml", rss([_notice(2, ALLOGGI, ALLOGGI_TEXT, BY_ID)]))
    config = _config(tmp_path, feed_server.url("/feed.xml"), "comune.altavillavicentina.vi.it")
    parsed = parse_feed("notizie", rss([_notice(2, ALLOGGI, ALLOGGI_TEXT, BY_ID)]).encode(), url=config.feeds[0].url)
    store = Store.open(config.bridge.state_dir)
    try:
        store.save_feed(FeedState("notizie", primed=("wa",)),
                        {"wa": {key for item in parsed.items for key in item.keys}}, now=NOW)
    finally:
        store.close()
    store = Store.open(config.bridge.state_dir)
    try:
        feed_server.set_feed("/feed.xml", rss([_notice(1, ALLOGGI, ALLOGGI_TEXT, PERMALINK),
                                               _notice(2, ALLOGGI, ALLOGGI_TEXT, BY_ID)]))
        assert _poll(config, store) == []
    finally:
        store.close()


def test_a_reused_title_with_new_text_is_new_and_the_same_text_comes_back_after_a_while(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    title = "Allerta meteo gialla per temporali"
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server.url("/feed.xml"), "comune.altavillavicentina.vi.it")
    store = Store.open(config.bridge.state_dir)
    try:
        assert _poll(config, store) == []
        monday = _notice(3, title, "Allerta gialla dalle 14 di lunedì 3 agosto fino alla mezzanotte.")
        feed_server.set_feed("/feed.xml", rss([monday]))
        assert _poll(config, store) == [monday["link"]]
        thursday = _notice(2, title, "Allerta gialla dalle 8 di giovedì 6 agosto per tutta la giornata.")
        feed_server.set_feed("/feed.xml", rss([thursday, monday]))
        assert _poll(config, store) == [thursday["link"]]
        # The same words weeks after the feed last listed them: a notice that recurs, not a twin.
        later = NOW + timedelta(days=30)
        again = {**_notice(1, title, monday["description"]), "pubDate": later - timedelta(hours=1)}
        feed_server.set_feed("/feed.xml", rss([again]))
        assert _poll(config, store, later) == [again["link"]]
    finally:
        store.close()


def test_an_item_with_no_title_and_no_text_is_held_with_its_reason(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server.url("/feed.xml"), "comune.altavillavicentina.vi.it")
    store = Store.open(config.bridge.state_dir)
    try:
        assert _poll(config, store) == []
        bare = {"title": "", "link": f"{SITE}/novita/senza-titolo/", "guid": "p=1", "pubDate": NOW - timedelta(hours=2)}
        told = _notice(1, "Chiusura del municipio per la festa patronale", "Il municipio resta chiuso lunedì.")
        feed_server.set_feed("/feed.xml", rss([told, bare]))
        assert _poll(config, store) == [told["link"]]  # never an alert that is only a link
        assert store.feed_state("notizie").last_held == (
            f"{SITE}/novita/senza-titolo/: it has no title and no text: the alert would be only its link")
    finally:
        store.close()
