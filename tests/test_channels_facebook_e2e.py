"""End to end: the real `channel-bridge run --once` posting a feed's news to a fake Facebook
Page, with the image card drawn in the style of `[cards]`, crest included."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemons import bridge_environment, run_bridge
from PIL import Image
from servers.facebook import PAGE_ID, FakeFacebook
from servers.feeds import FeedServer, rss

TOKEN = "EAAG-page-token-0123456789abcdef"
NOW = datetime.now(UTC).replace(microsecond=0)
CREST = (255, 0, 255)  # a colour no card has of its own


def news(n: int, *, hours_ago: float) -> dict[str, Any]:
    return {
        "title": f"Avviso numero {n}: chiusura temporanea di via Roma",
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": f"Da lunedì via Roma resta chiusa per lavori, cantiere numero {n}.",
        "pubDate": NOW - timedelta(hours=hours_ago),
    }


def setup(tmp_path: Path, feed_server: FeedServer, facebook: FakeFacebook) -> Path:
    Image.new("RGB", (120, 120), CREST).save(tmp_path / "stemma.png")
    config = tmp_path / "config.toml"
    config.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
channels = ["facebook"]
link_domains = ["comune.esempio.it"]

[[feeds]]
id = "notizie"
name = "Notizie dal Comune"
url = "{feed_server.url('/feed.xml')}"

[channels.facebook]
type = "facebook"
page_id = "{PAGE_ID}"
token = "env:FACEBOOK_PAGE_TOKEN"
api_url = "{facebook.url}"

[cards]
crest = "stemma.png"
name = "Comune di Esempio"
""", encoding="utf-8")
    return config


def crest_pixels(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as card:
        colours = card.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(count for count, colour in colours if colour == CREST)


def run_twice(config: Path, feed_server: FeedServer) -> None:
    """A first run that takes note of the feed, a second that posts its new item."""
    env = bridge_environment({"FACEBOOK_PAGE_TOKEN": TOKEN})
    feed_server.set_feed("/feed.xml", rss([news(1, hours_ago=5)]))
    assert run_bridge(config, "run", "--once", env=env).returncode == 0
    feed_server.set_feed("/feed.xml", rss([news(2, hours_ago=1), news(1, hours_ago=5)]))
    done = run_bridge(config, "run", "--once", env=env)
    assert done.returncode == 0, done.stderr[-2000:]


def test_run_posts_the_new_item_with_its_card_and_the_comune_crest(
    tmp_path: Path, feed_server: FeedServer, facebook_server: FakeFacebook
) -> None:
    config = setup(tmp_path, feed_server, facebook_server)
    run_twice(config, feed_server)
    [post] = facebook_server.posts
    assert post.message.startswith("Avviso numero 2: chiusura temporanea di via Roma")
    assert post.photo is not None and crest_pixels(post.photo.data) > 1000
    assert post.alt_text is not None and post.alt_text.startswith("Avviso numero 2")
    check = run_bridge(config, "check", env=bridge_environment({"FACEBOOK_PAGE_TOKEN": TOKEN}))
    assert check.returncode == 0, check.stderr
    assert f"facebook  {facebook_server.url} page={PAGE_ID} token=env:FACEBOOK_PAGE_TOKEN" in check.stdout


def test_a_crest_that_cannot_be_read_leaves_the_card_without_it(
    tmp_path: Path, feed_server: FeedServer, facebook_server: FakeFacebook
) -> None:
    config = setup(tmp_path, feed_server, facebook_server)
    (tmp_path / "stemma.png").write_text("not an image")
    run_twice(config, feed_server)
    [post] = facebook_server.posts
    assert post.photo is not None and crest_pixels(post.photo.data) == 0
    check = run_bridge(config, "check", env=bridge_environment({"FACEBOOK_PAGE_TOKEN": TOKEN}))
    assert check.returncode != 0 and "cards.crest" in check.stdout + check.stderr
