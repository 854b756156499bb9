"""What a poll posts, for feeds whose text is hostile: a real feed on a loopback server, polled by
`poll_feed` with the daemon's parser pool, and the alerts as they are queued in the outbox."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
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


OUTSIDE = ("evil", "bit.ly", "tcvi")  # every outside address below has one of these


def test_a_poll_posts_no_address_outside_the_feeds_domains(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", rss([]))
    config = _config(tmp_path, feed_server.url("/feed.xml"))
    store = Store.open(config.bridge.state_dir)
    try:
        assert _poll(config, store).ok
        feed_server.set_feed("/feed.xml", rss([
            _story(1, "Contributi alle famiglie: domande su bit.ly/contributi-2026",
                   "Le domande si presentano entro il 30 giugno 2026 allo sportello."),
            _story(2, "www.evil.example.com/premio", "Hai vinto un premio, ritiralo sul sito."),
            _story(3, "Eventi estivi in biblioteca",
                   "Prenotazioni sul sito tcvi.it entro venerdì.\nGli eventi sono gratuiti per tutti."),
            _story(4, "Tari 2026: istruzioni su www.comune.esempio.it/tari",
                   "Il pagamento della prima rata scade il 16 luglio 2026."),
            _story(5, "Orari estivi della biblioteca, dettagli su https://evil.example/orari",
                   "Tutte le informazioni sono su https://evil.example/orari per tutti i cittadini."),
        ]))
        result = _poll(config, store)
        assert result.ok, result.error
        posted = {d.alert.link.rsplit("/", 1)[-1]: render.whatsapp(d.alert) for d in result.queued}
        assert sorted(posted) == ["1", "3", "4", "5"]  # the address-only title is held
        for text in posted.values():
            assert not any(word in text for word in OUTSIDE), text
        assert posted["1"].startswith("*Contributi alle famiglie: domande*\n\nLe domande si presentano entro")
        assert "*Tari 2026: istruzioni su www.comune.esempio.it/tari*" in posted["4"]  # the feed's own domain
        assert posted["5"] == f"*Orari estivi della biblioteca, dettagli*\n\n{SITE}/notizie/5"
        held = store.feed_state("notizie").last_held
        assert held is not None and "www.evil.example.com/premio" in held and "outside the feed's domains" in held
    finally:
        store.close()


@pytest.mark.e2e
def test_preview_shows_the_same_text_and_holds_the_same_items(tmp_path: Path, feed_server: FeedServer) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)  # preview runs on the real clock
    feed_server.set_feed("/feed.xml", rss([
        {**_story(1, "Contributi alle famiglie: domande su bit.ly/contributi-2026",
                  "Le domande si presentano entro il 30 giugno 2026 allo sportello."), "pubDate": recent},
        {**_story(2, "www.evil.example.com/premio", "Hai vinto un premio, ritiralo sul sito."), "pubDate": recent},
    ]))
    config = tmp_path / "config.toml"
    config.write_text(f"""
[bridge]
state_dir = "state"

[[feeds]]
id = "notizie"
url = "{feed_server.url('/feed.xml')}"
channels = ["wa"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"
backfill = 5  # a first poll that posts: what `run` would hold, preview shows held

[channels.wa]
type = "waha"
url = "http://127.0.0.1:9"
chat_id = "1@newsletter"
api_key = "env:WAHA_API_KEY"
""", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), "preview"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("── wa (waha)")[1:]
    assert "would be posted" in first and "*Contributi alle famiglie: domande*" in first
    assert "held: the title is little more than an address outside the feed's domains" in second
    assert "bit.ly" not in first and "Hai vinto" not in second
