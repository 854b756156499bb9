"""Dates people read are told in the bridge's `timezone`: the console's header, `{date}`."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge import render
from bridge.channels.console import ConsoleChannel
from bridge.config import Config, parse_config
from bridge.item import Alert
from bridge.template import channel_template

# 02:30 UTC on 7 August: still 6 August in New York, 04:30 of the 7th in Rome.
PUBLISHED = datetime(2026, 8, 7, 2, 30, tzinfo=UTC)


def _config(tmp_path: Path, timezone: str | None) -> Config:
    bridge = {"state_dir": "state"} | ({"timezone": timezone} if timezone else {})
    return parse_config(
        {
            "bridge": bridge,
            "feeds": [{"id": "notizie", "url": "https://www.comune.esempio.it/feed/", "channels": ["console", "hook"]}],
            "channels": {
                "console": {"type": "console", "template": "{date}: {title}\n\n{link}"},
                "hook": {"type": "webhook", "url": "https://hooks.esempio.it/x", "template": "{title} ({date})"},
            },
        },
        path=tmp_path / "config.toml", env={},
    )


def _alert() -> Alert:
    return Alert(feed_id="notizie", feed_name="Notizie", title="Chiusura di via Roma", summary="",
                 link="https://www.comune.esempio.it/via-roma", published=PUBLISHED)


def _console(config: Config) -> str:
    out = io.StringIO()
    asyncio.run(ConsoleChannel(config.channels["console"], out=out).send(_alert(), delivery_id="d1"))
    return out.getvalue()


@pytest.mark.parametrize(
    ("timezone", "header", "date"),
    [
        ("America/New_York", "── Notizie · 2026-08-06 22:30 EDT", "6 agosto 2026"),
        (None, "── Notizie · 2026-08-07 04:30 CEST", "7 agosto 2026"),  # the default: Europe/Rome
        ("UTC", "── Notizie · 2026-08-07 02:30 UTC", "7 agosto 2026"),
    ],
)
def test_the_console_tells_the_time_and_date_in_the_bridges_timezone(
    tmp_path: Path, timezone: str | None, header: str, date: str
) -> None:
    printed = _console(_config(tmp_path, timezone))
    assert printed.splitlines()[:2] == [header, f"{date}: Chiusura di via Roma"]


def test_date_in_a_channel_template_follows_the_bridges_timezone(tmp_path: Path) -> None:
    config = _config(tmp_path, "America/New_York")
    hook = config.channels["hook"]
    template = channel_template(hook.template, hook.timezone)
    assert render.plain(_alert(), template) == "Chiusura di via Roma (6 agosto 2026)"
    assert render.whatsapp(_alert(), template).endswith("(6 agosto 2026)")
    assert render.telegram(_alert(), template).endswith("(6 agosto 2026)")
