"""State written by hand or by another version, through the real command: each odd thing gets a
clear message and a defined outcome, none a traceback, none a silent loss or a stale post."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from servers.feeds import FeedServer, rss
from servers.webhook import FakeWebhook

from bridge.item import Alert
from bridge.store import SCHEMA_VERSION, Delivery, Store, history_path

NOW = datetime.now(UTC).replace(microsecond=0)
SITE = "https://www.comune.esempio.it"


def delivery(n: int, *, channel: str = "hook", published: datetime | None = None) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=f"Avviso {n}: lavori in via Roma",
                  summary="La strada resta chiusa.", link=f"{SITE}/n/{n}/", published=published or NOW)
    return Delivery(id=f"d{n}", channel=channel, feed_id="notizie", alert=alert, created=NOW - timedelta(hours=1),
                    order=float(n))


def write_config(tmp: Path, feeds: FeedServer, webhook: FakeWebhook, *, extra: str = "",
                 max_per_day: int | None = None) -> Path:
    feeds.set_feed("/feed.xml", rss([{"title": "Una notizia già vista", "link": f"{SITE}/vecchia/",
                                      "guid": f"{SITE}/?p=1", "description": "Testo.",
                                      "pubDate": NOW - timedelta(days=1)}]))
    cap = f"max_per_day = {max_per_day}\n" if max_per_day else ""
    config = tmp / "config.toml"
    config.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
channels = ["hook"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"

[[feeds]]
id = "notizie"
name = "Notizie"
url = "{feeds.url('/feed.xml')}"

[channels.hook]
type = "webhook"
url = "{webhook.url}/hook"
{cap}{extra}""", encoding="utf-8")
    return config


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")}
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def posted_links(webhook: FakeWebhook) -> list[str]:
    return [str(json.loads(request.body)["link"]) for request in webhook.deliveries]


def make_naive(history: Path) -> None:
    """A hand edit (or another program) that wrote times without their zone."""
    lines = []
    for line in history.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["posted_at"] = datetime.fromisoformat(record["posted_at"]).replace(tzinfo=None).isoformat()
        lines.append(json.dumps(record))
    history.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_history_with_times_without_a_zone_reads_them_as_utc_and_says_so(
        tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook) -> None:
    config = write_config(tmp_path, feed_server, webhook_server)
    store = Store.open(tmp_path / "state")
    store.add_deliveries([delivery(1)])
    store.record_post(store.deliveries()[0], "remote-1", NOW - timedelta(hours=2))
    store.close()
    make_naive(history_path(tmp_path / "state", NOW - timedelta(hours=2)))

    done = cli(config, "history", "--since", (NOW - timedelta(days=1)).date().isoformat())
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Avviso 1: lavori in via Roma" in done.stdout
    assert "has no time zone: read as UTC" in done.stderr
    as_json = json.loads(cli(config, "history", "--format", "json").stdout)
    assert as_json[0]["posted_at"] == (NOW - timedelta(hours=2)).isoformat()


def test_max_per_day_with_times_without_a_zone_in_the_history_still_posts(
        tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook) -> None:
    config = write_config(tmp_path, feed_server, webhook_server, max_per_day=5)
    store = Store.open(tmp_path / "state")
    store.add_deliveries([delivery(1), delivery(2)])
    store.record_post(store.deliveries()[0], "remote-1", NOW - timedelta(minutes=30))
    store.close()
    make_naive(history_path(tmp_path / "state", NOW - timedelta(minutes=30)))

    done = cli(config, "run", "--once")
    assert "delivery crashed" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert posted_links(webhook_server) == [f"{SITE}/n/2/"]


def test_an_outbox_entry_with_an_unknown_state_is_kept_as_failed_and_shown(
        tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook) -> None:
    config = write_config(tmp_path, feed_server, webhook_server)
    store = Store.open(tmp_path / "state")
    store.add_deliveries([replace(delivery(1), state="sospeso")])  # written as a hand edit would
    store.close()

    report = cli(config, "status", "--json")
    assert report.returncode == 0, report.stderr
    (hook,) = json.loads(report.stdout)["channels"]
    assert (hook["queue"], hook["failed"]) == (0, 1)
    assert 'unknown state "sospeso"' in hook["last_failure"]
    assert 'unknown state \\"sospeso\\": kept as failed' in report.stderr  # the warning, in the log
    text = cli(config, "status").stdout
    assert 'last failed: unknown state "sospeso"' in text

    done = cli(config, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert posted_links(webhook_server) == []  # never sent, and still there
    (hook,) = json.loads(cli(config, "status", "--json").stdout)["channels"]
    assert hook["failed"] == 1


def test_a_schema_version_written_as_a_string_is_one_line_with_a_hint(
        tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook) -> None:
    config = write_config(tmp_path, feed_server, webhook_server)
    Store.open(tmp_path / "state").close()
    edited = 0
    for path in (tmp_path / "state").rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        written = f'"schema":{SCHEMA_VERSION}'
        if written in text.replace(" ", ""):
            path.write_text(text.replace(" ", "").replace(written, f'"schema":"{SCHEMA_VERSION}"'), encoding="utf-8")
            edited += 1
    assert edited == 1, "where is the schema version?"

    for command in (["status"], ["history"], ["run", "--once"]):
        done = cli(config, *command)
        assert done.returncode == 1, (command, done.stderr)
        assert "Traceback" not in done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert f'the schema version is "{SCHEMA_VERSION}", not a whole number' in lines[0]
        assert f'"schema": {SCHEMA_VERSION}' in lines[0]  # the hint: how it should be written


def test_alerts_for_a_channel_no_longer_in_the_config_are_shown_and_expire_if_it_returns_late(
        tmp_path: Path, feed_server: FeedServer, webhook_server: FakeWebhook) -> None:
    config = write_config(tmp_path, feed_server, webhook_server)
    store = Store.open(tmp_path / "state")
    store.add_deliveries([
        delivery(1, channel="altro", published=NOW - timedelta(days=10)),  # older than max_age (7d)
        delivery(2, channel="altro", published=NOW - timedelta(hours=3)),
    ])
    store.close()

    report = json.loads(cli(config, "status", "--json").stdout)
    orphan = next(c for c in report["channels"] if c["name"] == "altro")
    assert (orphan["in_config"], orphan["type"], orphan["queue"]) == (False, None, 2)
    assert next(c for c in report["channels"] if c["name"] == "hook")["in_config"] is True
    row = next(line for line in cli(config, "status").stdout.splitlines() if line.startswith("altro"))
    assert "NOT IN CONFIG" in row and " 2 " in row

    # The channel comes back: the fresh alert goes, the stale one does not, and says why.
    config = write_config(tmp_path, feed_server, webhook_server,
                          extra=f'\n[channels.altro]\ntype = "webhook"\nurl = "{webhook_server.url}/altro"\n')
    done = cli(config, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert posted_links(webhook_server) == [f"{SITE}/n/2/"]
    assert "alert not posted: older than max_age when it could be sent" in done.stderr
    (altro,) = [c for c in json.loads(cli(config, "status", "--json").stdout)["channels"] if c["name"] == "altro"]
    assert (altro["in_config"], altro["queue"], altro["failed"]) == (True, 0, 1)
    assert altro["last_failure"].startswith("expired: older than its feed's max_age (7d)")
