"""End to end: the real `channel-bridge` command, a real feed server and a fake WAHA, on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemons import Daemon, bridge_environment, run_bridge
from servers.feeds import FeedServer, rss
from servers.telegram import FakeTelegram
from servers.waha import FakeWaha
from waiting import wait_for

API_KEY = "test-key-e2e-1234"
CHAT = "120363000000000001@newsletter"
NOW = datetime.now(UTC).replace(microsecond=0)


def news(n: int, *, hours_ago: float) -> dict[str, Any]:
    return {
        "title": f"Avviso numero {n}: chiusura temporanea di via Roma",
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": f"Da lunedì via Roma resta chiusa per lavori alla rete idrica, cantiere numero {n}. "
        "Le deviazioni sono indicate sul posto.",
        "pubDate": NOW - timedelta(hours=hours_ago),
    }


@pytest.fixture
def setup(tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha) -> Iterator[Bridge]:
    waha_server.api_key = API_KEY
    yield Bridge(tmp_path, feed_server, waha_server)


class Bridge:
    """Runs the real command against the fixtures' servers."""

    def __init__(self, tmp: Path, feeds: FeedServer, waha: FakeWaha) -> None:
        self.tmp = tmp
        self.feeds = feeds
        self.waha = waha
        self.items: list[dict[str, Any]] = []
        self.config = tmp / "config.toml"
        self.config.write_text(
            f"""
[bridge]
state_dir = "state"

[defaults]
interval = "1s"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]  # the feed is served from loopback, its items live there

[[feeds]]
id = "notizie"
name = "Notizie dal Comune"
url = "{feeds.url('/feed.xml')}"

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""",
            encoding="utf-8",
        )
        self.env = bridge_environment({"WAHA_API_KEY": API_KEY})
        self.daemons = 0

    def publish(self, *items: dict[str, Any]) -> None:
        self.items = [*items, *self.items]  # newest first, as feeds list them
        self.feeds.set_feed("/feed.xml", rss(self.items))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_bridge(self.config, *args, env=self.env)

    def start(self) -> Daemon:
        self.daemons += 1
        return Daemon(self.config, self.tmp / f"daemon-{self.daemons}.log", env=self.env)


def first_lines(waha: FakeWaha) -> list[str]:
    return [post.text.splitlines()[0] for post in waha.posts]


def test_first_poll_posts_nothing_then_new_items_once_oldest_first(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=30), news(2, hours_ago=20), news(3, hours_ago=10))
    first = setup.run("run", "--once")
    assert first.returncode == 0, first.stderr
    assert setup.waha.posts == []

    setup.publish(news(4, hours_ago=2), news(5, hours_ago=1))
    second = setup.run("run", "--once")
    assert second.returncode == 0, second.stderr
    posted = [p.text for p in setup.waha.posts]
    assert len(posted) == 2
    assert posted[0].startswith("*Avviso numero 4: chiusura temporanea di via Roma*")
    assert "https://www.comune.esempio.it/novita/avviso-4/" in posted[0]
    assert posted[1].startswith("*Avviso numero 5")
    assert all(p.chat_id == CHAT and p.api_key == API_KEY for p in setup.waha.posts)

    third = setup.run("run", "--once")
    assert third.returncode == 0, third.stderr
    assert len(setup.waha.posts) == 2

    history = setup.run("history", "--format", "json")
    assert history.returncode == 0, history.stderr
    records = json.loads(history.stdout)
    assert [r["title"] for r in records] == [
        "Avviso numero 4: chiusura temporanea di via Roma",
        "Avviso numero 5: chiusura temporanea di via Roma",
    ]
    assert [r["remote_id"] for r in records] == [p.id for p in setup.waha.posts]
    assert API_KEY not in first.stderr + second.stderr + third.stderr + history.stdout


def test_conditional_get_on_second_poll(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=3))
    assert setup.run("run", "--once").returncode == 0
    assert setup.run("run", "--once").returncode == 0
    second = setup.feeds.requests("/feed.xml")[-1]
    assert second.headers.get("if-none-match")
    assert second.headers.get("user-agent", "").startswith("channel-bridge")


def test_failed_send_stays_queued_and_is_posted_once_later(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=5))
    assert setup.run("run", "--once").returncode == 0
    setup.publish(news(2, hours_ago=1))
    setup.waha.fail_next(1, 500)
    failed = setup.run("run", "--once")
    assert failed.returncode == 1
    assert setup.waha.posts == []
    status = json.loads(setup.run("status", "--json").stdout)
    assert status["channels"][0]["queue"] == 1

    retried = setup.run("run", "--once")
    assert retried.returncode == 0, retried.stderr
    assert first_lines(setup.waha) == ["*Avviso numero 2: chiusura temporanea di via Roma*"]
    assert json.loads(setup.run("status", "--json").stdout)["channels"][0]["queue"] == 0


def test_failing_feed_exits_1_and_shows_in_status(setup: Bridge) -> None:
    setup.feeds.set_fault("/feed.xml", "500")
    result = setup.run("run", "--once")
    assert result.returncode == 1
    feed = json.loads(setup.run("status", "--json").stdout)["feeds"][0]
    assert feed["consecutive_failures"] == 1
    assert "500" in feed["last_error"]


def test_daemon_posts_new_item_within_interval_once_and_stops_on_sigterm(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=5), news(2, hours_ago=4))
    daemon = setup.start()
    try:
        assert wait_for(lambda: len(setup.feeds.requests("/feed.xml")) >= 2), "daemon never polled twice"
        assert setup.waha.posts == []
        setup.publish(news(3, hours_ago=0))
        assert wait_for(lambda: len(setup.waha.posts) >= 1), "new item never posted"
        polls = len(setup.feeds.requests("/feed.xml"))
        assert wait_for(lambda: len(setup.feeds.requests("/feed.xml")) >= polls + 2)
        assert first_lines(setup.waha) == ["*Avviso numero 3: chiusura temporanea di via Roma*"]

        second = setup.run("run", "--once")
        assert second.returncode == 1
        assert "already using" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        code = daemon.stop(timeout=10)
    stderr = daemon.log()
    assert code == 0, stderr
    assert '"stopped"' in stderr

    # A restart posts nothing again.
    restart = setup.run("run", "--once")
    assert restart.returncode == 0, restart.stderr
    assert len(setup.waha.posts) == 1


def test_kill_9_then_restart_posts_nothing_twice(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=5))
    daemon = setup.start()
    try:
        assert wait_for(lambda: len(setup.feeds.requests("/feed.xml")) >= 1)
        setup.publish(news(2, hours_ago=0))
        assert wait_for(lambda: len(setup.waha.posts) >= 1)
    finally:
        daemon.kill()
    restart = setup.run("run", "--once")
    assert restart.returncode == 0, restart.stderr
    assert len(setup.waha.posts) == 1


def test_preview_changes_nothing_and_sends_nothing(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=2), news(2, hours_ago=1))
    result = setup.run("preview", "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert "*Avviso numero 2: chiusura temporanea di via Roma*" in result.stdout
    assert "would be recorded, not posted: first poll (backfill 0)" in result.stdout
    assert setup.waha.posts == []
    assert not (setup.tmp / "state" / "feeds").exists()


def test_preview_says_what_run_then_does(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=3), news(2, hours_ago=2))

    def verdicts() -> list[str]:
        result = setup.run("preview")
        assert result.returncode == 0, result.stderr
        return [line.split(" · ", 1)[1] for line in result.stdout.splitlines() if line.startswith("── ")]

    # A fresh state, backfill 0: `run` records the feed and posts nothing, and preview says so.
    assert verdicts() == ["would be recorded, not posted: first poll (backfill 0)"] * 2
    assert setup.run("run", "--once").returncode == 0
    assert setup.waha.posts == []
    setup.publish(news(3, hours_ago=1))
    assert verdicts() == ["would be posted", "already seen", "already seen"]
    assert setup.run("run", "--once").returncode == 0
    assert first_lines(setup.waha) == ["*Avviso numero 3: chiusura temporanea di via Roma*"]
    assert verdicts() == ["already seen"] * 3


def test_kill_9_while_a_waha_send_is_in_flight_posts_exactly_once(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=5))
    assert setup.run("run", "--once").returncode == 0
    setup.publish(news(2, hours_ago=0))
    setup.waha.send_delay = 30.0  # WAHA records the post, then takes its time to answer
    daemon = setup.start()
    try:
        assert wait_for(lambda: len(setup.waha.posts) == 1), "the send never reached WAHA"
    finally:
        daemon.kill()  # the daemon dies with the send in flight: it never learnt the outcome
    setup.waha.send_delay = 0.0
    restart = setup.run("run", "--once")
    assert restart.returncode == 0, restart.stderr
    assert "already posted before the restart" in restart.stderr
    assert first_lines(setup.waha) == ["*Avviso numero 2: chiusura temporanea di via Roma*"]
    assert len(json.loads(setup.run("history", "--format", "json").stdout)) == 1


def daemon_with(setup: Bridge, channels_toml: str, channels: str) -> None:
    """Rewrite the config with other channels (the same feed and state)."""
    text = setup.config.read_text(encoding="utf-8")
    head = text.split("[channels.whatsapp]")[0].replace('channels = ["whatsapp"]', f"channels = {channels}")
    setup.config.write_text(head + channels_toml, encoding="utf-8")


def test_a_bad_key_pauses_whatsapp_and_a_reload_with_the_right_key_posts_everything(
    setup: Bridge, waha_server: FakeWaha
) -> None:
    key_file = setup.tmp / "waha.key"
    key_file.write_text("the-wrong-key\n", encoding="utf-8")
    daemon_with(setup, f"""
[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "{CHAT}"
api_key = "file:waha.key"
""", '["whatsapp"]')
    setup.publish(news(1, hours_ago=5))
    daemon = setup.start()
    try:
        assert wait_for(lambda: len(setup.feeds.requests("/feed.xml")) >= 1)
        setup.publish(news(3, hours_ago=1), news(2, hours_ago=2))
        assert wait_for(lambda: json.loads(setup.run("status", "--json").stdout)["channels"][0]["paused"] is not None)
        status = json.loads(setup.run("status", "--json").stdout)["channels"][0]
        assert status["queue"] == 2 and "401" in status["paused"]
        assert waha_server.posts == []
        key_file.write_text(API_KEY + "\n", encoding="utf-8")
        daemon.send(signal.SIGHUP)
        assert wait_for(lambda: len(waha_server.posts) == 2), "reload did not resume the channel"
        assert first_lines(waha_server) == ["*Avviso numero 2: chiusura temporanea di via Roma*",
                                            "*Avviso numero 3: chiusura temporanea di via Roma*"]
    finally:
        code = daemon.stop()
    stderr = daemon.log()
    assert code == 0, stderr
    assert "the-wrong-key" not in stderr and API_KEY not in stderr


def test_whatsapp_down_does_not_delay_telegram(setup: Bridge, waha_server: FakeWaha,
                                                telegram_server: FakeTelegram) -> None:
    daemon_with(setup, f"""
[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"

[channels.telegram]
type = "telegram"
api_url = "{telegram_server.url}"
chat_id = "{telegram_server.chat_id}"
token = "env:TELEGRAM_TOKEN"
""", '["whatsapp", "telegram"]')
    setup.env["TELEGRAM_TOKEN"] = telegram_server.token
    setup.publish(news(1, hours_ago=5))
    assert setup.run("run", "--once").returncode == 0
    waha_server.fail_next(1000, 500)  # WhatsApp's gateway is down for the whole test
    daemon = setup.start()
    try:
        setup.publish(news(2, hours_ago=0))
        # A bounded wait well short of WhatsApp's first retry (30 s), not a wall-clock assertion:
        # the item-to-post bound itself is measured by bench/scale.py.
        assert wait_for(lambda: len(telegram_server.messages) == 1, 10), "Telegram waited for WhatsApp"
        assert telegram_server.messages[0].text.startswith("<b>Avviso numero 2")
        assert waha_server.posts == []
    finally:
        daemon.stop()
    queue = {c["name"]: c["queue"] for c in json.loads(setup.run("status", "--json").stdout)["channels"]}
    assert queue == {"whatsapp": 1, "telegram": 0}  # kept for when WhatsApp is back


def _logged(stderr: str, prefix: str) -> list[dict[str, Any]]:
    records = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and str(record.get("event", "")).startswith(prefix):
            records.append(record)
    return records


def test_a_first_poll_says_what_it_did_in_the_log_and_in_status(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=3), news(2, hours_ago=2))
    first = setup.run("run", "--once")
    assert first.returncode == 0, first.stderr
    (record,) = _logged(first.stderr, "first poll")
    assert record["event"] == "first poll: 2 items recorded, 0 posted (backfill)"
    assert record["level"] == "info" and record["feed"] == "notizie" and record["backfill"] == 0
    status = setup.run("status")
    assert status.returncode == 0, status.stderr
    assert "first poll: 2 items recorded, 0 posted (backfill)" in status.stdout
    report = json.loads(setup.run("status", "--json").stdout)
    assert report["feeds"][0]["first_poll"]["items"] == 2
    assert report["feeds"][0]["first_poll"]["posted"] == 0
    # The next polls are not first polls: nothing more is said.
    setup.publish(news(3, hours_ago=1))
    second = setup.run("run", "--once")
    assert second.returncode == 0, second.stderr
    assert _logged(second.stderr, "first poll") == []
    assert len(setup.waha.posts) == 1
    assert "first poll:" not in setup.run("status").stdout  # something was posted since


def test_forget_re_primes_one_feed_and_never_reposts(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=3), news(2, hours_ago=2))
    assert setup.run("run", "--once").returncode == 0
    setup.publish(news(3, hours_ago=1))
    assert setup.run("run", "--once").returncode == 0
    assert first_lines(setup.waha) == ["*Avviso numero 3: chiusura temporanea di via Roma*"]

    forget = setup.run("forget", "notizie")
    assert forget.returncode == 0, forget.stderr
    assert "notizie: forgot" in forget.stdout and "seen keys" in forget.stdout
    assert not (setup.tmp / "state" / "feeds" / "notizie.json").exists()
    assert json.loads(setup.run("status", "--json").stdout)["feeds"][0]["seen_keys"] == 0

    # Re-primed: the next poll is a first poll again, and records without posting (backfill 0).
    setup.publish(news(4, hours_ago=0.5))
    again = setup.run("run", "--once")
    assert again.returncode == 0, again.stderr
    assert [r["event"] for r in _logged(again.stderr, "first poll")] == [
        "first poll: 4 items recorded, 0 posted (backfill)"]
    assert len(setup.waha.posts) == 1
    assert json.loads(setup.run("status", "--json").stdout)["feeds"][0]["seen_keys"] > 0


def test_forget_refuses_while_the_daemon_runs_and_names_what_it_does_not_know(setup: Bridge) -> None:
    setup.publish(news(1, hours_ago=3))
    unknown = setup.run("forget", "eventi")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        f'channel-bridge: no feed "eventi" in {setup.config} nor in the state {setup.tmp / "state"}']
    daemon = setup.start()
    try:
        assert wait_for(lambda: (setup.tmp / "state" / "feeds" / "notizie.json").exists())
        refused = setup.run("forget", "notizie")
        assert refused.returncode == 1
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith('channel-bridge: cannot forget "notizie" while the daemon runs: ')
        assert "systemctl stop channel-bridge" in line
        assert (setup.tmp / "state" / "feeds" / "notizie.json").exists()
    finally:
        daemon.stop(timeout=30)
