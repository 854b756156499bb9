"""The state store: crash-safe files, one writer, schema version, the outbox/history move."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.item import Alert
from bridge.store import SCHEMA_VERSION, Delivery, FeedState, StateError, StateLockedError, Store

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def delivery(n: int, *, channel: str = "whatsapp", order: float = 0.0, urgent: bool = False) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=f"Titolo {n}", summary="Testo.",
                  link=f"https://www.comune.esempio.it/n/{n}")
    return Delivery(id=f"d{n}", channel=channel, feed_id="notizie", alert=alert, created=NOW,
                    order=order or float(n), urgent=urgent)


def test_files_are_private_and_state_round_trips(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state")
    store.save_feed(FeedState("notizie", etag='"abc"', primed=("whatsapp",)), {"whatsapp": {"l:1", "g:2"}}, now=NOW)
    store.add_deliveries([delivery(1)])
    store.close()
    for path in (tmp_path / "state").rglob("*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700

    again = Store.open(tmp_path / "state")
    assert again.feed_state("notizie").etag == '"abc"'
    assert again.feed_state("notizie").primed == ("whatsapp",)
    assert dict(again.seen_by("whatsapp", "l:1")) == {"notizie": int(NOW.timestamp())}
    assert again.seen_by("telegram", "l:1") == {}
    assert [d.id for d in again.deliveries("whatsapp")] == ["d1"]
    again.close()


def test_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    first = Store.open(tmp_path)
    with pytest.raises(StateLockedError, match=rf"another channel-bridge \(pid {os.getpid()}\) is already using"):
        Store.open(tmp_path)
    reader = Store.open(tmp_path, read_only=True)  # status works while the daemon runs
    reader.close()
    first.close()
    Store.open(tmp_path).close()  # released on close


def test_reader_on_missing_state_creates_nothing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "nothing", read_only=True)
    assert store.deliveries() == [] and list(store.posts()) == []
    store.close()
    assert not (tmp_path / "nothing").exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    data = json.loads((tmp_path / "outbox.json").read_text())
    assert data["meta"]["1"] == {"schema": SCHEMA_VERSION}
    data["meta"]["1"] = {"schema": SCHEMA_VERSION + 1}
    (tmp_path / "outbox.json").write_text(json.dumps(data))
    with pytest.raises(StateError, match="written by a newer channel-bridge"):
        Store.open(tmp_path)


def test_garbage_state_files_are_moved_aside_and_feeds_rebuilt_without_posting(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.save_feed(FeedState("notizie", primed=("wa",)), {"wa": {"l:1"}}, now=NOW)
    store.close()
    (tmp_path / "outbox.json").write_text('{"meta": {"1": {"schema": 1}}} trailing garbage')
    (tmp_path / "feeds" / "notizie.json").write_bytes(b'{"feed": {"1": {"feed_id": "noti')
    reopened = Store.open(tmp_path)
    assert reopened.deliveries() == []
    state = reopened.feed_state("notizie")
    assert state.rebuilt and state.primed == ()
    reopened.close()
    assert len(list(tmp_path.glob("outbox.json.corrupt-*"))) == 1
    assert len(list((tmp_path / "feeds").glob("notizie.json.corrupt-*"))) == 1
    with pytest.raises(StateError, match="is unreadable"):  # a reader reports, never moves
        (tmp_path / "outbox.json").write_text("garbage")
        Store.open(tmp_path, read_only=True)


def test_deliveries_urgent_first_then_oldest_first(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1, order=300), delivery(2, order=100), delivery(3, order=200, urgent=True)])
    assert [d.id for d in store.deliveries("whatsapp")] == ["d3", "d2", "d1"]
    assert store.add_deliveries([delivery(1, order=300)]) == []  # already queued: never twice
    store.close()


def test_posted_delivery_moves_to_history_and_is_never_queued_again(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    store.record_post(store.deliveries()[0], "wamid-1", NOW)
    assert store.deliveries() == []
    assert store.add_deliveries([delivery(1)]) == []
    assert store.last_post("whatsapp") == NOW
    store.close()
    reopened = Store.open(tmp_path)
    assert [(p.delivery_id, p.remote_id) for p in reopened.posts()] == [("d1", "wamid-1")]
    assert list(reopened.posts(since=NOW + timedelta(seconds=1))) == []
    reopened.close()


def test_crash_between_history_and_outbox_is_mended_at_open(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    outbox_before = (tmp_path / "outbox.json").read_bytes()
    store.record_post(store.deliveries()[0], "wamid-1", NOW)
    store.close()
    # As if killed after the history write and before the outbox write.
    (tmp_path / "outbox.json").write_bytes(outbox_before)
    reopened = Store.open(tmp_path)
    assert [d.id for d in reopened.deliveries()] == ["d2"]
    reopened.close()


def test_seen_keys_are_forgotten_by_age_only(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.save_feed(FeedState("f"), {"c": {"k-old"}}, now=NOW - timedelta(days=200))
    store.save_feed(FeedState("f"), {"c": {f"k{i}" for i in range(500)}}, now=NOW,
                    forget_before=NOW - timedelta(days=180))
    assert store.seen_by("c", "k-old") == {}
    assert store.seen_count("f") == 500
    store.close()


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from bridge.store import FeedState, Store

    store = Store.open(Path(sys.argv[1]))
    now = datetime.now(UTC)
    round = 0
    while True:
        round += 1
        # Every committed shard holds a multiple of 1000 keys: a torn write would show.
        keys = {f"l:{round}-{i}" for i in range(1000)}
        store.save_feed(FeedState("notizie", etag=str(round)), {"whatsapp": keys}, now=now)
        store.flush()
        print(round, flush=True)
    """
)


def test_kill_9_during_writes_leaves_readable_state_and_no_lock(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for _ in range(8):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(state)], env=env, stdout=subprocess.PIPE)
        assert writer.stdout is not None
        writer.stdout.readline()  # at least one commit done
        time.sleep(rng.uniform(0.0, 0.25))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        store = Store.open(state)  # no stale lock, nothing unreadable
        etag = store.feed_state("notizie").etag
        assert etag is not None and etag.isdigit()
        assert store.seen_count("notizie") % 1000 == 0 and store.seen_count("notizie") > 0
        store.close()


def test_a_history_line_torn_by_a_crash_is_skipped_and_cut_before_the_next_post(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    store.record_post(store.deliveries()[0], "wamid-1", NOW)
    store.close()
    with open(tmp_path / "history.jsonl", "ab") as log:
        log.write(b'{"delivery_id": "d2", "chan')  # killed mid-append
    reopened = Store.open(tmp_path)
    assert [p.delivery_id for p in reopened.posts()] == ["d1"]
    assert [d.id for d in reopened.deliveries()] == ["d2"]  # still queued: reconciled before any resend
    reopened.record_post(reopened.deliveries()[0], "wamid-2", NOW)
    reopened.close()
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["delivery_id"] for line in lines] == ["d1", "d2"]


def test_a_304_writes_nothing_until_flush_and_close_writes_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.save_feed(FeedState("notizie", etag='"v1"'), {"wa": {"l:1"}}, now=NOW)
    seen_file = tmp_path / "feeds" / "notizie.json"
    written = seen_file.stat().st_ino  # every write is a new file renamed over the old
    store.save_feed(FeedState("notizie", etag='"v1"', last_poll=NOW), {"wa": {"l:1"}}, now=NOW + timedelta(hours=1))
    assert seen_file.stat().st_ino == written  # nothing new, refreshed less than a day ago
    assert not (tmp_path / "polls.json").exists()
    store.save_feed(FeedState("notizie", etag='"v2"'), {"wa": {"l:1"}}, now=NOW + timedelta(days=2))
    assert seen_file.stat().st_ino != written  # a day on: the key's time is refreshed
    store.close()
    reopened = Store.open(tmp_path, read_only=True)
    assert reopened.feed_state("notizie").etag == '"v2"'
    assert dict(reopened.seen_by("wa", "l:1")) == {"notizie": int((NOW + timedelta(days=2)).timestamp())}
    reopened.close()


def test_without_its_feed_file_a_feed_is_new_again_whatever_polls_json_says(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.save_feed(FeedState("notizie", primed=("wa",)), {"wa": {"l:1"}}, now=NOW)
    store.close()
    (tmp_path / "feeds" / "notizie.json").unlink()  # as the guide's "old backup" recipe does
    reopened = Store.open(tmp_path)
    assert reopened.feed_state("notizie").primed == ()  # so its next poll records, posts nothing
    reopened.close()


def test_a_feed_file_spoiled_while_running_is_rewritten_with_the_feeds_current_keys(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    shown = {"wa": {"l:1", "l:2"}}
    store.save_feed(FeedState("notizie", primed=("wa",)), shown, now=NOW)
    seen_file = tmp_path / "feeds" / "notizie.json"
    seen_file.write_bytes(b"{ not json")  # a disk error, an editor: not something we wrote
    # The next poll shows a new item: the file must be rewritten whole, and the index holds
    # digests only, so the keys the feed still lists are taken from this poll.
    store.save_feed(FeedState("notizie", primed=("wa",)), {"wa": {"l:1", "l:2", "l:3"}}, now=NOW + timedelta(hours=1))
    store.close()
    assert len(list((tmp_path / "feeds").glob("notizie.json.corrupt-*"))) == 1
    reopened = Store.open(tmp_path, read_only=True)
    assert reopened.feed_state("notizie").primed == ("wa",)
    assert {key for key in ("l:1", "l:2", "l:3") if reopened.seen_by("wa", key)} == {"l:1", "l:2", "l:3"}
    assert reopened.seen_by("wa", "l:1") == {"notizie": int(NOW.timestamp())}  # its time is kept
    reopened.close()


def test_a_feed_file_removed_while_running_is_rewritten_too(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.save_feed(FeedState("notizie", primed=("wa",)), {"wa": {"l:1"}}, now=NOW)
    (tmp_path / "feeds" / "notizie.json").unlink()
    store.save_feed(FeedState("notizie", primed=("wa",)), {"wa": {"l:1", "l:2"}}, now=NOW)
    store.close()
    reopened = Store.open(tmp_path, read_only=True)
    assert reopened.seen_count("notizie") == 2
    reopened.close()


def test_keys_are_read_back_from_the_feed_file_when_it_is_rewritten(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.save_feed(FeedState("a", primed=("wa",)), {"wa": {"l:1"}, "tg": {"l:1"}}, now=NOW)
    store.save_feed(FeedState("b", primed=("wa",)), {"wa": {"l:1"}}, now=NOW)
    store.save_feed(FeedState("a", primed=("wa",)), {"wa": {"l:2"}}, now=NOW + timedelta(hours=1))
    store.close()
    rows = json.loads((tmp_path / "feeds" / "a.json").read_text())["seen"].values()
    assert sorted((r["c"], r["k"]) for r in rows) == [("tg", "l:1"), ("wa", "l:1"), ("wa", "l:2")]
    reopened = Store.open(tmp_path, read_only=True)
    assert reopened.seen_by("wa", "l:1") == {"a": int(NOW.timestamp()), "b": int(NOW.timestamp())}
    reopened.close()
