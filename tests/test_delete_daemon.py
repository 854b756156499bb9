"""`channel-bridge queue delete ID` end to end: the real daemon, a real feed server and a fake
WAHA on loopback, the real command over the control socket. The post goes from the channel
(WAHA's DELETE of that message), the audit trail holds who asked, from where and why, before
and after the platform's answer; a second deletion is refused naming the first; an unknown id,
a missing reason and a platform failure are refused and change nothing on the channel."""

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

API_KEY = "test-key-delete-5678"
CHAT = "120363000000000005@newsletter"
NOW = datetime.now(UTC).replace(microsecond=0)


class Setup:
    def __init__(self, tmp: Path, socket_dir: Path, feeds: FeedServer, waha: FakeWaha) -> None:
        self.tmp, self.feeds, self.waha = tmp, feeds, waha
        self.config = tmp / "config.toml"
        self.config.write_text(f"""
[bridge]
state_dir = "state"
control_socket = "{socket_dir / 'control.sock'}"

[[feeds]]
id = "notizie"
url = "{feeds.url('/feed.xml')}"
interval = "1s"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"
backfill = 1

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""", encoding="utf-8")
        self.env = bridge_environment({"WAHA_API_KEY": API_KEY}, without=("RUNTIME_DIRECTORY",))
        feeds.set_feed("/feed.xml", rss([{
            "title": "Avviso: lavori in via Roma", "link": "https://www.comune.esempio.it/novita/avviso-1/",
            "guid": "https://www.comune.esempio.it/?p=1", "pubDate": NOW - timedelta(hours=1),
            "description": "Da lunedì via Roma resta chiusa per lavori."}]))

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(bridge_command(self.config, *args), env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)

    def history(self) -> list[dict[str, Any]]:
        result = self.command("history", "--format", "json")
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows

    def audit(self) -> list[dict[str, Any]]:
        result = self.command("audit", "--format", "json")
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows


@pytest.fixture
def setup(tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha) -> Iterator[Setup]:
    waha_server.api_key = API_KEY
    with tempfile.TemporaryDirectory(prefix="cb-", dir="/tmp") as name:
        yield Setup(tmp_path, Path(name), feed_server, waha_server)


def test_queue_delete_removes_the_post_once_and_audits_it(setup: Setup) -> None:
    with Daemon(setup.config, setup.tmp / "daemon.log", env=setup.env) as daemon:
        assert daemon.wait_started(), daemon.log()
        assert wait_for(lambda: len(setup.waha.posts) == 1 and setup.history(), 30), daemon.log()
        [post] = setup.history()
        ident = post["delivery_id"]

        missing = setup.command("queue", "delete", ident)
        assert missing.returncode != 0 and "--reason" in missing.stderr

        unknown = setup.command("queue", "delete", "nessuno", "--reason", "prova")
        assert unknown.returncode == 1 and "no post nessuno in the history" in unknown.stderr

        setup.waha.fail_deletes(1, 500)
        failed = setup.command("queue", "delete", ident, "--reason", "notizia sbagliata")
        assert failed.returncode == 1 and "not deleted" in failed.stderr
        assert [p.id for p in setup.waha.visible_posts] == [setup.waha.posts[0].id]

        done = setup.command("queue", "delete", ident, "--reason", "notizia sbagliata")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"post {ident} deleted on whatsapp"
        [request] = [r for r in setup.waha.requests if r.method == "DELETE" and r.status == 200]
        assert request.path == f"/api/default/chats/{CHAT}/messages/true_{CHAT}_{setup.waha.posts[0].id}"
        assert setup.waha.visible_posts == []

        again = setup.command("queue", "delete", ident, "--reason", "ancora")
        assert again.returncode == 1
        assert f"post {ident} was already deleted by {getpass.getuser()} at" in again.stderr
        assert "(notizia sbagliata)" in again.stderr
        assert daemon.stop() == 0

    trail = [(e["who"], e["where"], e["action"], e["reason"]) for e in setup.audit()]
    user = getpass.getuser()
    assert trail == [
        (user, "cli", "delete", "notizia sbagliata"),
        ("channel-bridge", "daemon", "not-applied", trail[1][3]),
        (user, "cli", "delete", "notizia sbagliata"),
        (user, "cli", "deleted", "notizia sbagliata"),
    ]
    assert "500" in trail[1][3]


def test_without_a_daemon_nothing_is_deleted(setup: Setup) -> None:
    result = setup.command("queue", "delete", "abc", "--reason", "prova")
    assert result.returncode == 1 and "the daemon is not running, so nothing was done" in result.stderr
