"""`channel-bridge queue` lists what the console's *In coda* page shows, from the same
function: each waiting alert with its state, why it waits and when it may go; read-only, so
it is safe while the daemon runs."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

from console.harness import NOW, delivery, write_config
from test_cli_status import channel_bridge

from bridge.console import views
from bridge.store import Store
from bridge.waits import (
    WHY_BEHIND,
    WHY_FAILED,
    WHY_LINK_GUARD,
    WHY_MAX_PER_DAY,
    WHY_NOT_IN_CONFIG,
    WHY_PAUSED,
    WHY_RETRY,
)

LATER = datetime(2099, 1, 1, 9, 0, tzinfo=NOW.tzinfo)  # a retry no run of this test reaches


def queued(tmp_path: Path) -> Path:
    """A state whose every wait is decided without the clock: a retry far ahead with one alert
    behind it, a paused channel, a held and a failed alert, one for a removed channel."""
    config = write_config(tmp_path)
    store = Store.open(config.bridge.state_dir)
    try:
        store.add_deliveries([
            delivery("w1", "whatsapp", "Lavori in via Roma", order=1.0, attempts=2, next_attempt=LATER,
                     last_error="HTTP 502"),
            delivery("w2", "whatsapp", "Mercato di Natale", order=2.0),
            delivery("w3", "whatsapp", "Riepilogo", order=3.0, held=True),
            delivery("w4", "whatsapp", "Bando rifiutato", order=4.0, state="failed", last_error="expired"),
            delivery("t1", "telegram", "Lavori in via Roma", order=1.0),
            delivery("o1", "vecchio", "Avviso per un canale rimosso", order=1.0),
        ])
        store.set_channel_pause("telegram", "token rejected (HTTP 401)")
    finally:
        store.close()
    assert config.path is not None
    return config.path


def listing(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_queue_json_lists_each_waiting_alert_with_its_reason(tmp_path: Path) -> None:
    rows = listing(channel_bridge(queued(tmp_path), "queue", "--json"))
    assert [(r["id"], r["channel"], r["state"], r["why"]) for r in rows] == [
        ("w1", "whatsapp", "retrying", WHY_RETRY),
        ("w2", "whatsapp", "pending", WHY_BEHIND),
        ("w3", "whatsapp", "held", WHY_MAX_PER_DAY),
        ("w4", "whatsapp", "failed", WHY_FAILED),
        ("t1", "telegram", "paused", WHY_PAUSED),
        ("o1", "vecchio", "pending", WHY_NOT_IN_CONFIG),
    ]
    first = rows[0]
    assert first["feed"] == "notizie" and first["feed_name"] == "Notizie dal Comune"
    assert first["title"] == "Lavori in via Roma"
    assert first["reason"] == "nuovo tentativo dopo un errore: HTTP 502"
    assert first["due"] == LATER.isoformat()
    assert rows[1]["due"] is None
    assert rows[4]["reason"] == "canale in pausa: token rejected (HTTP 401)"


def test_queue_lists_what_the_console_page_shows(tmp_path: Path) -> None:
    path = queued(tmp_path)
    rows = listing(channel_bridge(path, "queue", "--json"))
    config = write_config(tmp_path)
    store = Store.open(config.bridge.state_dir, read_only=True)
    try:
        page = views.coda(config, store, NOW)["rows"]
    finally:
        store.close()
    assert [(r["id"], r["state"], r["reason"]) for r in rows] == [(r["id"], r["state"], r["reason"]) for r in page]


def test_queue_of_one_channel(tmp_path: Path) -> None:
    path = queued(tmp_path)
    rows = listing(channel_bridge(path, "queue", "--channel", "telegram", "--json"))
    assert [r["id"] for r in rows] == ["t1"]
    orphan = listing(channel_bridge(path, "queue", "--channel", "vecchio", "--json"))
    assert [r["id"] for r in orphan] == ["o1"]


def test_queue_of_an_unknown_channel_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = channel_bridge(queued(tmp_path), "queue", "--channel", "whatsap")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        'channel-bridge: no channel "whatsap" in the config or in the queue; channels: whatsapp, telegram, vecchio']


def test_queue_table_for_people(tmp_path: Path) -> None:
    result = channel_bridge(queued(tmp_path), "queue")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "from the state on disk: the daemon is not running"
    assert lines[1].split() == ["channel", "state", "due", "feed", "title", "reason"]
    assert len(lines) == 8
    assert "2099-01-01 10:00" in lines[2] and "nuovo tentativo dopo un errore: HTTP 502" in lines[2]
    assert "in coda dietro 1 avviso" in lines[3]


def test_queue_of_an_empty_state(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert config.path is not None
    result = channel_bridge(config.path, "queue")
    assert (result.returncode, result.stdout) == (
        0, "from the state on disk: the daemon is not running\nnothing waits: every queue is empty\n"), result.stderr
    assert listing(channel_bridge(config.path, "queue", "--json")) == []


def test_queue_reads_while_the_daemon_holds_the_state(tmp_path: Path) -> None:
    path = queued(tmp_path)
    config = write_config(tmp_path)
    writer = Store.open(config.bridge.state_dir)  # holds the writer's lock, as the daemon does
    try:
        rows = listing(channel_bridge(path, "queue", "--json"))
    finally:
        writer.close()
    assert len(rows) == 6


def with_held(tmp_path: Path) -> Path:
    """`queued`, and an item the link guard held an hour ago (real time: `queue` asks the
    clock) on WhatsApp and Telegram."""
    import dataclasses
    from datetime import UTC, timedelta

    from bridge.models import FeedState, HeldItem

    path = queued(tmp_path)
    at = datetime.now(UTC) - timedelta(hours=1)
    reason = "the link points to www.altro.example, outside the feed's domains (example.it)"
    held = tuple(HeldItem(f"h-{channel}", channel, "Bando per le famiglie", "https://www.altro.example/bando",
                          reason, at) for channel in ("whatsapp", "telegram"))
    store = Store.open(tmp_path / "state")
    try:
        store.save_feed(dataclasses.replace(FeedState("notizie"), held=held))
    finally:
        store.close()
    return path


def test_queue_lists_the_items_the_link_guard_held(tmp_path: Path) -> None:
    path = with_held(tmp_path)
    rows = listing(channel_bridge(path, "queue", "--json"))
    held = [r for r in rows if r["why"] == WHY_LINK_GUARD]
    assert [(r["id"], r["channel"], r["state"]) for r in held] == [("h-whatsapp", "whatsapp", "held"),
                                                                   ("h-telegram", "telegram", "held")]
    first = held[0]
    assert {"id", "channel", "feed", "title", "state", "reason", "due"} <= set(first)
    assert first["feed"] == "notizie" and first["title"] == "Bando per le famiglie" and first["due"] is None
    assert first["reason"].startswith("il link porta a www.altro.example")  # the page's sentence
    assert first["reason_en"].startswith("the link points to www.altro.example")  # the guard's own
    assert "link_domains" in str(first["remedy"]) and first["link"] == "https://www.altro.example/bando"
    # Each channel's held items after its queue and its failed alerts.
    assert [r["id"] for r in rows] == ["w1", "w2", "w3", "w4", "h-whatsapp", "t1", "h-telegram", "o1"]
    telegram = listing(channel_bridge(path, "queue", "--channel", "telegram", "--json"))
    assert [r["id"] for r in telegram] == ["t1", "h-telegram"]


def test_queue_table_says_a_held_item_in_english_with_what_to_do(tmp_path: Path) -> None:
    result = channel_bridge(with_held(tmp_path), "queue")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("whatsapp") and " held " in line
              and "Bando per le famiglie" in line]
    assert "held by the link guard: the link points to www.altro.example" in line
    assert 'add it to link_domains of feed "notizie"' in line
