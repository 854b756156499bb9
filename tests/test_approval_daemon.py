"""Approval mode end to end: the real daemon, a real feed server and a fake WAHA on loopback,
the real `channel-bridge queue ...` and `audit` commands over the control socket.

A feed in approval mode queues its new alerts as "da approvare" and nothing posts; an editor
approves one, approves one with an edited text, drops one; the two approved post once each,
in order; the audit trail holds the three actions with their author (the Unix user running the
command). Two editors at once on one alert: one wins, the other is told. With no daemon, an
action does nothing and says so."""

from __future__ import annotations

import getpass
import json
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemons import Daemon, bridge_command, bridge_environment
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from waiting import wait_for

API_KEY = "test-key-approve-1234"
CHAT = "120363000000000002@newsletter"
NOW = datetime.now(UTC).replace(microsecond=0)


def news(n: int, *, hours_ago: float) -> dict[str, Any]:
    return {
        "title": f"Avviso numero {n}: lavori in via Roma",
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": f"Da lunedì via Roma resta chiusa per lavori, cantiere numero {n}.",
        "pubDate": NOW - timedelta(hours=hours_ago),
    }


class Setup:
    def __init__(self, tmp: Path, socket_dir: Path, feeds: FeedServer, waha: FakeWaha) -> None:
        self.tmp, self.feeds, self.waha = tmp, feeds, waha
        self.items: list[dict[str, Any]] = []
        self.config = tmp / "config.toml"
        self.config.write_text(f"""
[bridge]
state_dir = "state"
control_socket = "{socket_dir / 'control.sock'}"

[[feeds]]
id = "notizie"
name = "Notizie dal Comune"
url = "{feeds.url('/feed.xml')}"
interval = "1s"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
approve = true

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""", encoding="utf-8")
        self.env = bridge_environment({"WAHA_API_KEY": API_KEY}, without=("RUNTIME_DIRECTORY",))

    def publish(self, *items: dict[str, Any]) -> None:
        self.items = [*items, *self.items]
        self.feeds.set_feed("/feed.xml", rss(self.items))

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(bridge_command(self.config, *args), env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(bridge_command(self.config, *args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def queue(self) -> list[dict[str, Any]]:
        result = self.command("queue", "--json")
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows

    def start(self) -> Daemon:
        daemon = Daemon(self.config, self.tmp / "daemon.log", env=self.env)
        assert daemon.wait_started(), daemon.log()
        return daemon


@pytest.fixture
def setup(tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha) -> Iterator[Setup]:
    waha_server.api_key = API_KEY
    with tempfile.TemporaryDirectory(prefix="cb-", dir="/tmp") as name:
        yield Setup(tmp_path, Path(name), feed_server, waha_server)


def awaiting(setup: Setup, count: int) -> list[dict[str, Any]]:
    assert wait_for(lambda: len([r for r in setup.queue() if r["state"] == "awaiting"]) >= count, 30), setup.queue()
    return [r for r in setup.queue() if r["state"] == "awaiting"]


def first_lines(waha: FakeWaha) -> list[str]:
    return [post.text.splitlines()[0] for post in waha.posts]


def test_approve_edit_and_drop_through_the_running_daemon(setup: Setup) -> None:
    setup.publish(news(1, hours_ago=30))
    with setup.start() as daemon:
        assert daemon.wait_for_log("first poll"), daemon.log()
        setup.publish(news(2, hours_ago=3), news(3, hours_ago=2), news(4, hours_ago=1))
        rows = awaiting(setup, 3)
        assert [(r["why"], r["reason"]) for r in rows] == [("approval", "da approvare")] * 3
        assert [r["title"] for r in rows] == [f"Avviso numero {n}: lavori in via Roma" for n in (2, 3, 4)]
        assert setup.waha.posts == [], "nothing posts before an editor approves"
        two, three, four = (r["id"] for r in rows)

        dropped = setup.command("queue", "drop", four, "--reason", "notizia doppia")
        assert dropped.returncode == 0 and dropped.stdout.strip() == f"alert {four} dropped: it will not be sent"
        approved = setup.command("queue", "approve", two)
        assert approved.returncode == 0, approved.stderr
        edited = setup.command("queue", "approve", three, "--text", "Via Roma chiusa da lunedì, cantiere numero 3.")
        assert edited.returncode == 0, edited.stderr
        assert wait_for(lambda: len(setup.waha.posts) >= 2, 30), daemon.log()
        assert wait_for(lambda: setup.queue() == [], 30), setup.queue()

        again = setup.command("queue", "approve", four)
        user = getpass.getuser()
        assert again.returncode == 1 and again.stdout == ""
        assert again.stderr.strip() == f"channel-bridge: alert {four} was already dropped by {user} at " \
            f"{_hhmm(setup, four)} (notizia doppia)"
        assert daemon.stop() == 0
    assert first_lines(setup.waha) == ["*Avviso numero 2: lavori in via Roma*", "*Avviso numero 3: lavori in via Roma*"]
    assert "Via Roma chiusa da lunedì, cantiere numero 3." in setup.waha.posts[1].text
    audit = json.loads(setup.command("audit", "--format", "json").stdout)
    assert [(e["action"], e["alert_id"], e["who"], e["where"]) for e in audit] == [
        ("drop", four, user, "cli"), ("approve", two, user, "cli"), ("approve", three, user, "cli")]
    assert audit[0]["after"] is None and audit[0]["reason"] == "notizia doppia"
    assert audit[2]["before"]["summary"] != audit[2]["after"]["summary"]
    assert audit[2]["after"]["summary"] == "Via Roma chiusa da lunedì, cantiere numero 3."
    table = setup.command("audit").stdout.splitlines()
    assert len(table) == 4 and "awaiting -> dropped" in table[1] and "(notizia doppia)" in table[1]


def _hhmm(setup: Setup, alert_id: str) -> str:
    entries = json.loads(setup.command("audit", "--format", "json").stdout)
    at = datetime.fromisoformat(next(e["at"] for e in entries if e["alert_id"] == alert_id))
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo("Europe/Rome")).strftime("%H:%M")


def test_two_editors_at_once_one_wins_the_other_is_told(setup: Setup) -> None:
    setup.publish(news(1, hours_ago=30))
    with setup.start() as daemon:
        assert daemon.wait_for_log("first poll"), daemon.log()
        setup.publish(news(2, hours_ago=1))
        (row,) = awaiting(setup, 1)
        editors = [setup.spawn("queue", "hold", row["id"]) for _ in range(2)]
        results = [(editor.wait(timeout=60), *editor.communicate(timeout=60)) for editor in editors]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], results
        loser = next(err for code, _, err in results if code == 1)
        assert f"alert {row['id']} was already held by {getpass.getuser()} at " in loser, loser
        (held,) = setup.queue()
        assert (held["state"], held["why"]) == ("held", "editor")
        # Held by an editor: never sent, until someone approves it.
        assert setup.command("queue", "approve", row["id"]).returncode == 0
        assert wait_for(lambda: len(setup.waha.posts) == 1, 30), daemon.log()
        daemon.stop()
    audit = json.loads(setup.command("audit", "--format", "json").stdout)
    assert [e["action"] for e in audit] == ["hold", "approve"], "a refused action is not in the audit trail"


def test_refusals_are_one_line_and_change_nothing(setup: Setup) -> None:
    setup.publish(news(1, hours_ago=30))
    with setup.start() as daemon:
        assert daemon.wait_for_log("first poll"), daemon.log()
        setup.publish(news(2, hours_ago=1))
        (row,) = awaiting(setup, 1)
        unknown = setup.command("queue", "approve", "nessuno")
        assert unknown.returncode == 1
        assert unknown.stderr.strip().splitlines() == [
            "channel-bridge: no alert nessuno in the queue; the ids are those channel-bridge queue shows"]
        facts = setup.command("queue", "approve", row["id"], "--text", "Via Roma chiusa da lunedì, cantiere 7.")
        assert facts.returncode == 1 and "7, which the source does not say" in facts.stderr, facts.stderr
        assert "--confirm" in facts.stderr
        offsite = setup.command("queue", "approve", row["id"], "--text", "Leggi su https://www.altro.it/x")
        assert offsite.returncode == 1 and "off the comune's site" in offsite.stderr
        retry = setup.command("queue", "retry", row["id"])
        assert retry.returncode == 1 and "has not failed (it is awaiting)" in retry.stderr
        assert [r["state"] for r in setup.queue()] == ["awaiting"] and setup.waha.posts == []
        confirmed = setup.command("queue", "approve", row["id"], "--text", "Via Roma chiusa da lunedì, cantiere 7.",
                                  "--confirm")
        assert confirmed.returncode == 0, confirmed.stderr
        assert wait_for(lambda: len(setup.waha.posts) == 1, 30), daemon.log()
        assert "cantiere 7." in setup.waha.posts[0].text
        daemon.stop()
    assert [e["action"] for e in json.loads(setup.command("audit", "--format", "json").stdout)] == ["approve"]
    stopped = setup.command("queue", "hold", row["id"])
    assert stopped.returncode == 1 and stopped.stderr.startswith("channel-bridge: the daemon is not running, so "
                                                                 f"nothing was done (hold {row['id']})")
