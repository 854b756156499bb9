"""`channel-bridge send` end to end: the real daemon, a real feed server and a fake WAHA on
loopback, the real command over the control socket. A composed alert is queued (the ids
printed) and posts once, without approval although its feed needs it; an off-domain link and
an unknown channel are refused in one line, exit 1, nothing queued; `send --test` posts the
marked test message; the audit trail names the Unix user and "cli". With no daemon nothing is
queued and the command says so."""

from __future__ import annotations

import getpass
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.feeds import FeedServer
from servers.waha import FakeWaha
from test_approval_daemon import Setup
from waiting import wait_for

from bridge.compose import TEST_TEXT


@pytest.fixture
def setup(tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha) -> Iterator[Setup]:
    from test_approval_daemon import API_KEY

    waha_server.api_key = API_KEY
    feed_server.set_feed("/feed.xml", "<rss version='2.0'><channel><title>x</title></channel></rss>")
    with tempfile.TemporaryDirectory(prefix="cb-", dir="/tmp") as name:
        yield Setup(tmp_path, Path(name), feed_server, waha_server)


SEND = ("send", "--title", "Neve: scuole chiuse", "--text", "Domani le scuole restano chiuse per neve.",
        "--link", "https://www.comune.esempio.it/novita/neve/")


def test_send_queues_an_alert_that_posts_once_and_refusals_change_nothing(setup: Setup) -> None:
    user = getpass.getuser()
    with setup.start() as daemon:
        offsite = setup.command("send", *SEND[1:5], "--link", "https://www.comune-esempio.example/neve")
        assert offsite.returncode == 1 and offsite.stdout == ""
        assert offsite.stderr.startswith("channel-bridge: the link may not be posted: ") and \
            len(offsite.stderr.strip().splitlines()) == 1, offsite.stderr
        unknown = setup.command(*SEND, "--channel", "facebook")
        assert unknown.returncode == 1 and 'no channel "facebook"' in unknown.stderr
        assert setup.queue() == []
        sent = setup.command(*SEND, "--urgent")
        assert sent.returncode == 0, sent.stderr
        message, row = sent.stdout.splitlines()
        assert message == "urgent alert queued for whatsapp"
        channel, ident = row.split()
        assert channel == "whatsapp" and len(ident) == 32
        assert wait_for(lambda: len(setup.waha.posts) == 1, 30), daemon.log()
        test = setup.command("send", "--test", "--channel", "whatsapp")
        assert test.returncode == 0, test.stderr
        assert wait_for(lambda: len(setup.waha.posts) == 2, 30), daemon.log()
        bad_test = setup.command("send", "--test")
        assert bad_test.returncode == 2 and "--channel" in bad_test.stderr
        assert daemon.stop() == 0
    assert setup.waha.posts[0].text.splitlines()[0] == "*Neve: scuole chiuse*"
    assert TEST_TEXT in setup.waha.posts[1].text.replace("\n", " ")
    audit = json.loads(setup.command("audit", "--format", "json").stdout)
    assert [(e["action"], e["alert_id"], e["who"], e["where"], e["feed_id"]) for e in audit] == [
        ("compose", ident, user, "cli", "manuale"), ("test", audit[1]["alert_id"], user, "cli", "manuale")]
    assert audit[0]["after"]["summary"] == "Domani le scuole restano chiuse per neve."


def test_with_no_daemon_send_queues_nothing_and_says_so(setup: Setup) -> None:
    result = setup.command(*SEND)
    assert result.returncode == 1 and result.stdout == ""
    assert "the daemon is not running, so nothing was queued" in result.stderr
    assert not (setup.tmp / "state" / "audit.jsonl").exists()
