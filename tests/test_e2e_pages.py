"""End to end: what a feed points to never brings an internal page to the channel.

The real `channel-bridge run --once` against a feed server and a fake WAHA on loopback. The
feeds are on loopback (the operator's choice, allowed); their items link to internal pages:
on another port of the feed's own address, on the feed's own server, on a name that
resolves to loopback, behind a redirect to 127.0.0.1 or [::1]. The internal page says
"SEGRETO INTERNO" and must never be posted. With the test-only switch
CHANNEL_BRIDGE_ALLOW_PRIVATE_ADDRESSES=1 the daemon warns and reads loopback pages: the
same run then shows that the refusals without it were the address guard's. Images named by
a feed are held to the same rule.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servers.feeds import FeedServer, rss
from servers.images import PNG
from servers.loopback import TLS_DIR
from servers.pages import SECRET, SECRET_PAGE, PageServer
from servers.waha import FakeWaha

if TYPE_CHECKING:
    from servers.images import FakeImageHost

CHAT = "120363000000000001@newsletter"
SWITCH = "CHANNEL_BRIDGE_ALLOW_PRIVATE_ADDRESSES"
NOW = datetime.now(UTC).replace(microsecond=0)


def thin(title: str, link: str, hours_ago: float) -> dict[str, Any]:
    """An item with a title only: its alert text would come from the article page."""
    return {"title": title, "link": link, "guid": link, "pubDate": NOW - timedelta(hours=hours_ago)}


def run_bridge(tmp: Path, feeds: FeedServer, waha: FakeWaha, *, switch: bool) -> subprocess.CompletedProcess[str]:
    config = tmp / "config.toml"
    config.write_text(
        f"""
[bridge]
state_dir = "state"

[defaults]
channels = ["whatsapp"]
backfill = 10
fetch_article = "always"

[[feeds]]
id = "notizie"
name = "Notizie"
url = "{feeds.url('/notizie.xml')}"

[[feeds]]
id = "avvisi"
name = "Avvisi"
url = "{feeds.url('/avvisi.xml').replace('127.0.0.1', 'localhost')}"
link_domains = ["localhost"]

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", SWITCH)}
    if switch:
        env[SWITCH] = "1"
    command = [sys.executable, "-m", "bridge", "--config", str(config), "run", "--once"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def publish(feeds: FeedServer, internal: PageServer, internal_v6: PageServer) -> None:
    feeds.set_feed("/interno", SECRET_PAGE, content_type="text/html; charset=utf-8")
    feeds.set_feed("/segreto", SECRET_PAGE, content_type="text/html; charset=utf-8")
    feeds.set_fault("/vecchia-4", "redirect", location=internal.page("/internal"), code=302)
    feeds.set_fault("/vecchia-6", "redirect", location=internal_v6.page("/internal"), code=302)
    feeds.set_feed("/notizie.xml", rss([
        # Same address as the feed, another port: another service on the comune's "domain".
        thin("Avviso uno: chiusura di via Roma", internal.url("/internal"), 5),
        # The feed's own server: the link may be posted, the page is not read.
        thin("Avviso due: chiusura di via Verdi", feeds.url("/interno"), 4),
        # An allowed page that redirects to an internal service.
        thin("Avviso quattro: chiusura di via Dante", feeds.url("/vecchia-4"), 2),
        thin("Avviso cinque: chiusura di via Manzoni", feeds.url("/vecchia-6"), 1),
    ]))
    # A name on the feed's own (link_domains) domain that resolves to loopback.
    feeds.set_feed("/avvisi.xml", rss([
        thin("Avviso tre: chiusura di via Mazzini", feeds.url("/segreto").replace("127.0.0.1", "localhost"), 3),
    ]))


def test_internal_pages_are_never_posted(
    tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, page_server: PageServer,
    page_server_v6: PageServer,
) -> None:
    publish(feed_server, page_server, page_server_v6)

    done = run_bridge(tmp_path, feed_server, waha_server, switch=False)

    assert done.returncode == 0, done.stderr
    posted = [post.text for post in waha_server.posts]
    assert not any("SEGRETO" in text for text in posted)
    assert sorted(text.splitlines()[0] for text in posted) == [
        "*Avviso cinque: chiusura di via Manzoni*",
        "*Avviso due: chiusura di via Verdi*",
        "*Avviso quattro: chiusura di via Dante*",
        "*Avviso tre: chiusura di via Mazzini*",
    ]  # "Avviso uno" is held: its link is another port, another service
    assert page_server.paths == [] and page_server_v6.paths == []
    # Not even the feed's own server was asked for a page: only the feeds were fetched.
    assert sorted({request.path for request in feed_server.requests()}) == ["/avvisi.xml", "/notizie.xml"]
    assert "not a public address" in done.stderr
    assert "test-only switch" not in done.stderr


def test_the_test_switch_reads_loopback_pages_and_says_so(
    tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, page_server: PageServer,
    page_server_v6: PageServer,
) -> None:
    publish(feed_server, page_server, page_server_v6)

    done = run_bridge(tmp_path, feed_server, waha_server, switch=True)

    assert done.returncode == 0, done.stderr
    assert "test-only switch set" in done.stderr and SWITCH in done.stderr
    posted = {post.text.splitlines()[0]: post.text for post in waha_server.posts}
    # The loopback pages are read now: the refusals above were the address guard's...
    assert SECRET in posted["*Avviso due: chiusura di via Verdi*"]
    assert SECRET in posted["*Avviso tre: chiusura di via Mazzini*"]
    # ...while the link guard still holds: another port, another host, switch or not.
    assert "*Avviso uno: chiusura di via Roma*" not in posted
    assert SECRET not in posted["*Avviso quattro: chiusura di via Dante*"]
    assert SECRET not in posted["*Avviso cinque: chiusura di via Manzoni*"]
    assert page_server.paths == [] and page_server_v6.paths == []
    assert len(feed_server.requests("/vecchia-4")) == 1 and len(feed_server.requests("/vecchia-6")) == 1


def test_images_from_loopback_need_the_test_switch(tmp_path: Path, waha_server: FakeWaha, feed_server: FeedServer,
                                                   image_host: FakeImageHost) -> None:
    image = image_host.serve("/foto.png")
    feed_server.set_feed("/feed.xml", rss([{
        "title": "Chiusura di via Roma per lavori alla rete idrica",
        "link": "https://www.comune.esempio.it/novita/via-roma/",
        "description": "Da lunedì via Roma resta chiusa per lavori alla rete idrica. Le deviazioni sono indicate.",
        "enclosure": {"url": image, "type": "image/png", "length": len(PNG)},
        "pubDate": NOW - timedelta(hours=1),
    }]))
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[bridge]
state_dir = "state"
user_agent = "ComuneDiEsempio-Avvisi/1.0 (+mailto:ced@comune.esempio.it)"

[defaults]
channels = ["whatsapp"]
backfill = 1
link_domains = ["comune.esempio.it"]
fetch_article = "never"

[[feeds]]
id = "notizie"
name = "Notizie"
url = "{feed_server.url('/feed.xml')}"

[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "{CHAT}"
images = true
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", SWITCH)}
    env["SSL_CERT_FILE"] = str(TLS_DIR / "localhost.pem")  # the daemon trusts the test image host
    command = [sys.executable, "-m", "bridge", "--config", str(config), "run", "--once"]

    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 0, refused.stderr
    assert [post.kind for post in waha_server.posts] == ["text"]
    assert image_host.hits("/foto.png") == 0
    assert "not a public address" in refused.stderr

    (tmp_path / "state").rename(tmp_path / "state-before")  # the same item again, from scratch
    allowed = subprocess.run(command, env={**env, SWITCH: "1"}, capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr
    assert [post.kind for post in waha_server.posts] == ["text", "image"]
    assert image_host.hits("/foto.png") == 1
    # The comune's server sees the configured name for its images as for its feed.
    [download] = [request for request in image_host.requests if request.path == "/foto.png"]
    assert download.header("user-agent") == "ComuneDiEsempio-Avvisi/1.0 (+mailto:ced@comune.esempio.it)"


def preview_blocks(stdout: str) -> dict[str, tuple[str, str]]:
    """`preview`'s output: first line of each message -> (what run would do, the message)."""
    blocks: dict[str, tuple[str, str]] = {}
    verdict, lines = "", []
    for line in [*stdout.splitlines(), "══ end"]:
        if line.startswith(("── ", "══ ")):
            text = "\n".join(lines).strip("\n")
            if verdict and text:
                blocks[text.splitlines()[0].strip()] = (verdict, text)
            verdict, lines = (line.split(" · ", 1)[1] if line.startswith("── ") else ""), []
        else:
            lines.append(line)
    return blocks


def test_preview_reads_the_article_pages_run_reads_through_the_same_guards(
    tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, page_server: PageServer,
    page_server_v6: PageServer,
) -> None:
    publish(feed_server, page_server, page_server_v6)
    run_bridge(tmp_path, feed_server, waha_server, switch=False)  # writes the config
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", SWITCH)}
    preview = [sys.executable, "-m", "bridge", "--config", str(tmp_path / "config.toml"), "preview", "--limit", "9"]
    (tmp_path / "state").rename(tmp_path / "state-before")  # a fresh state: a first poll, backfill 10
    feed_server.clear_requests()

    guarded = subprocess.run(preview, env=env, capture_output=True, text=True, timeout=60)
    assert guarded.returncode == 0, guarded.stderr
    assert SECRET not in guarded.stdout
    assert page_server.paths == [] and page_server_v6.paths == []
    assert sorted({request.path for request in feed_server.requests()}) == ["/avvisi.xml", "/notizie.xml"]
    blocks = preview_blocks(guarded.stdout)
    assert blocks["*Avviso due: chiusura di via Verdi*"][0] == "would be posted"

    # With loopback pages allowed, preview shows each lead the daemon then posts, word for word.
    read = subprocess.run(preview, env={**env, SWITCH: "1"}, capture_output=True, text=True, timeout=60)
    assert read.returncode == 0, read.stderr
    shown = {title: text for title, (verdict, text) in preview_blocks(read.stdout).items()
             if verdict == "would be posted"}
    assert SECRET in shown["*Avviso due: chiusura di via Verdi*"]
    before = len(waha_server.posts)
    done = run_bridge(tmp_path, feed_server, waha_server, switch=True)
    assert done.returncode == 0, done.stderr
    posted = {post.text.splitlines()[0]: post.text for post in waha_server.posts[before:]}
    assert posted == shown
