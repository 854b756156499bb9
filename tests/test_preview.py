"""What `preview` says `run` would do, for what the delivery worker decides at send time: the
quiet hours, asked of the same function (`bridge.outbox.quiet_until`) at a moment the test
gives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.config import Config, load_config
from bridge.item import Alert, Item
from bridge.preview import verdict_line
from bridge.verdict import POST, SEEN, Verdict

CONFIG = """
[bridge]
state_dir = "state"
timezone = "Europe/Rome"

[alerts]
quiet_hours = "22:00-07:00"

[[feeds]]
id = "notizie"
url = "https://www.comune.esempio.it/feed/"
channels = ["ufficio", "schermo"]

[channels.ufficio]
type = "webhook"
url = "https://hook.comune.esempio.it/avvisi"

[channels.schermo]
type = "console"
"""

NIGHT = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 00:30 in Rome: inside the quiet hours
DAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path, {})


def verdict(channel: str, *, urgent: bool = False, outcome: str = POST) -> Verdict:
    item = Item(feed_id="notizie", guid="n1", title="Chiusura di via Roma", text="",
                link="https://www.comune.esempio.it/n/1")
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=item.title, summary="", link=item.link,
                  urgent=urgent)
    return Verdict(item=item, channel=channel, outcome=outcome, reason="", order=0.0, alert=alert)


def test_a_routine_post_at_night_waits_for_the_end_of_the_quiet_hours(config: Config) -> None:
    assert verdict_line(verdict("ufficio"), config, NIGHT) == \
        "would be posted when the quiet hours end (2026-12-02 07:00 CET)"
    assert verdict_line(verdict("ufficio"), config, DAY) == "would be posted"


def test_urgent_alerts_and_the_console_are_not_held_by_the_quiet_hours(config: Config) -> None:
    assert verdict_line(verdict("ufficio", urgent=True), config, NIGHT) == "would be posted"
    assert verdict_line(verdict("schermo"), config, NIGHT) == "would be posted"


def test_what_is_not_posted_says_so_whatever_the_hour(config: Config) -> None:
    assert verdict_line(verdict("ufficio", outcome=SEEN), config, NIGHT) == "already seen"
