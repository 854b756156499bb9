"""The state store: crash-safe files, one writer, schema version, the outbox/history move."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tinydb import TinyDB

import bridge.journal
import bridge.store
from bridge.item import Alert
from bridge.store import SCHEMA_VERSION, Delivery, FeedState, StateError, StateLockedError, Store, history_path

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
    assert data["meta"]["1"]["schema"] == SCHEMA_VERSION
    data["meta"]["1"]["schema"] = SCHEMA_VERSION + 1
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


def outbox_files(state_dir: Path) -> dict[str, bytes]:
    """The outbox's files (snapshot and journals) as they are now."""
    return {path.name: path.read_bytes() for path in state_dir.glob("outbox*") if ".corrupt-" not in path.name}


def restore_outbox(state_dir: Path, files: dict[str, bytes]) -> None:
    for path in state_dir.glob("outbox*"):
        if path.name not in files and ".corrupt-" not in path.name:
            path.unlink()
    for name, data in files.items():
        (state_dir / name).write_bytes(data)


def test_crash_between_history_and_outbox_is_mended_at_open(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    outbox_before = outbox_files(tmp_path)
    store.record_post(store.deliveries()[0], "wamid-1", NOW)
    store.close()
    # As if killed after the history write and before the outbox write.
    restore_outbox(tmp_path, outbox_before)
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
    with open(history_path(tmp_path, NOW), "ab") as log:
        log.write(b'{"delivery_id": "d2", "chan')  # killed mid-append
    reopened = Store.open(tmp_path)
    assert [p.delivery_id for p in reopened.posts()] == ["d1"]
    assert [d.id for d in reopened.deliveries()] == ["d2"]  # still queued: reconciled before any resend
    reopened.record_post(reopened.deliveries()[0], "wamid-2", NOW)
    reopened.close()
    lines = history_path(tmp_path, NOW).read_text().splitlines()
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


# -- the outbox's layout: a TinyDB snapshot and a journal -----------------------------------

SCHEMA_1 = {
    "meta": {"1": {"schema": 1}},
    "deliveries": {"1": delivery(1).to_dict(), "2": {**delivery(2).to_dict(), "attempts": 3, "in_flight": True}},
    "channels": {"1": {"channel": "whatsapp", "last_post": NOW.isoformat(), "paused": None},
                 "2": {"channel": "telegram", "last_post": None, "paused": "bot is not an admin"}},
}


def test_a_schema_1_outbox_is_read_and_rewritten_as_a_snapshot_any_tinydb_reads(tmp_path: Path) -> None:
    (tmp_path / "outbox.json").write_text(json.dumps(SCHEMA_1))  # as the versions before the journal wrote it
    reader = Store.open(tmp_path, read_only=True)
    assert [d.id for d in reader.deliveries()] == ["d1", "d2"]
    reader.close()
    store = Store.open(tmp_path)
    assert [(d.id, d.attempts, d.in_flight) for d in store.deliveries()] == [("d1", 0, False), ("d2", 3, True)]
    assert store.last_post("whatsapp") == NOW
    assert store.channel_pause("telegram") == "bot is not an admin"
    store.add_deliveries([delivery(3)])
    store.close()
    plain = TinyDB(str(tmp_path / "outbox.json"))  # TinyDB's own JSONStorage
    assert plain.table("meta").get(doc_id=1)["schema"] == SCHEMA_VERSION == 2  # type: ignore[index]
    assert sorted(doc["id"] for doc in plain.table("deliveries").all()) == ["d1", "d2", "d3"]
    assert {doc["channel"]: doc["paused"] for doc in plain.table("channels").all()} == {
        "telegram": "bot is not an admin", "whatsapp": None}
    plain.close()
    assert sorted(p.name for p in tmp_path.glob("outbox*")) == ["outbox.json"]  # folded in at close


def test_a_change_appends_one_line_and_never_rewrites_the_queue(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(n) for n in range(1, 3001)])
    store.close()
    store = Store.open(tmp_path)
    snapshot = (tmp_path / "outbox.json").stat()
    assert snapshot.st_size > 1_000_000
    journal = [p for p in tmp_path.glob("outbox.*.journal")]
    sizes = []
    for change in (lambda: store.add_deliveries([delivery(5000)]),
                   lambda: store.update_delivery(replace(store.deliveries()[0], in_flight=True, token="t")),
                   lambda: store.record_post(store.deliveries()[0], "wamid-1", NOW),
                   lambda: store.set_channel_pause("whatsapp", "session not WORKING")):
        change()
        (journal,) = list(tmp_path.glob("outbox.*.journal"))
        sizes.append(journal.stat().st_size)
    after = (tmp_path / "outbox.json").stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (snapshot.st_ino, snapshot.st_mtime_ns, snapshot.st_size)
    steps = [b - a for a, b in zip([0, *sizes], sizes, strict=False)]
    assert all(0 < step < 1500 for step in steps), steps  # one delivery's worth at most, not 3,000
    store.close()
    assert journal not in list(tmp_path.glob("outbox.*.journal"))


def test_the_journal_is_read_after_a_kill_and_its_torn_last_line_ignored(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    store.update_delivery(replace(delivery(2), attempts=1, in_flight=True, token="wamid-x"))
    files = outbox_files(tmp_path)  # what a kill -9 leaves: snapshot and journal, not folded
    store.close()
    restore_outbox(tmp_path, files)
    (journal,) = list(tmp_path.glob("outbox.*.journal"))
    with journal.open("ab") as file:
        file.write(b'{"deliveries":{"d3":{"id":"d3","chan')
    reopened = Store.open(tmp_path)
    assert [(d.id, d.in_flight, d.token) for d in reopened.deliveries()] == [
        ("d1", False, None), ("d2", True, "wamid-x")]
    reopened.close()


def test_an_unreadable_snapshot_is_moved_aside_and_the_journal_still_read(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    files = outbox_files(tmp_path)
    store.close()
    restore_outbox(tmp_path, files)
    (tmp_path / "outbox.json").write_bytes(b'{"meta": {"1": {"schema": 2, "jour')
    with pytest.raises(StateError, match=r"outbox\.json is unreadable"):
        Store.open(tmp_path, read_only=True)
    store = Store.open(tmp_path)
    assert [d.id for d in store.deliveries()] == ["d1"]  # the journal's changes are kept
    store.close()
    assert len(list(tmp_path.glob("outbox.json.corrupt-*"))) == 1


def test_a_damaged_journal_is_moved_aside(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    store.close()
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(2)])
    store.add_deliveries([delivery(3)])
    files = outbox_files(tmp_path)
    store.close()
    restore_outbox(tmp_path, files)
    (journal,) = list(tmp_path.glob("outbox.*.journal"))
    journal.write_bytes(b"\x00" * 20 + b"\n" + journal.read_bytes())
    store = Store.open(tmp_path)
    assert [d.id for d in store.deliveries()] == ["d1"]
    store.close()
    assert [p.name.split(".corrupt-")[0] for p in tmp_path.glob("*.corrupt-*")] == [journal.name]


def test_the_sending_order_holds_as_deliveries_change(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(n, order=float(n)) for n in range(1, 6)])
    store.update_delivery(replace(delivery(4, order=4.0), urgent=True))
    store.update_delivery(replace(delivery(2, order=2.0), state="failed", attempts=2))
    store.update_delivery(replace(delivery(5, order=5.0), order=0.5))
    store.update_delivery(replace(delivery(3, order=3.0), attempts=1))
    store.add_deliveries([delivery(6, channel="telegram", order=1.5)])
    assert [d.id for d in store.deliveries("whatsapp")] == ["d4", "d5", "d1", "d3"]
    assert [d.id for d in store.deliveries("whatsapp", state="failed")] == ["d2"]
    assert [d.id for d in store.deliveries()] == ["d4", "d5", "d1", "d6", "d3"]
    assert [d.id for d in store.deliveries(state=None)] == ["d4", "d5", "d1", "d6", "d2", "d3"]
    store.record_posts([store.deliveries("whatsapp")[0]], "wamid", NOW)
    assert [d.id for d in store.deliveries()] == ["d5", "d1", "d6", "d3"]
    store.close()
    reopened = Store.open(tmp_path, read_only=True)
    assert [d.id for d in reopened.deliveries(state=None)] == ["d5", "d1", "d6", "d2", "d3"]
    reopened.close()


# -- a write that fails changes nothing (tests/test_disk_full.py does it on a real full disk) ----

class FailingWrites:
    """Make the outbox's writes (journal and snapshot) fail with ENOSPC once `armed`, after
    writing half of what they were given (a short write, as a filling disk does)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        real = bridge.journal.write_fully

        def write_fully(fd: int, data: bytes) -> None:
            if not self.armed:
                real(fd, data)
                return
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(bridge.journal, "write_fully", write_fully)


def outbox_view(store: Store) -> tuple[object, ...]:
    return ([d.to_dict() for d in store.deliveries(state=None)], store.last_post("whatsapp"),
            store.channel_pause("whatsapp"), [p.delivery_id for p in store.posts()])


def test_a_failed_outbox_write_raises_and_leaves_memory_as_the_disk_is(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    failing = FailingWrites(monkeypatch)
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    before = outbox_view(store)
    failing.armed = True
    with pytest.raises(OSError, match="No space left"):
        store.add_deliveries([delivery(3)])
    with pytest.raises(OSError, match="No space left"):
        store.update_delivery(replace(delivery(1), in_flight=True, token="t"))
    with pytest.raises(OSError, match="No space left"):
        store.set_channel_pause("whatsapp", "unauthorized")
    assert outbox_view(store) == before
    assert not store.has_delivery("d3")  # so the next poll queues it again
    failing.armed = False
    assert [d.id for d in store.add_deliveries([delivery(3)])] == ["d3"]
    store.close()
    reopened = Store.open(tmp_path)
    assert [d.id for d in reopened.deliveries()] == ["d1", "d2", "d3"]
    assert not reopened.deliveries()[0].in_flight
    reopened.close()


def test_a_post_whose_outbox_write_fails_is_still_a_post(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = FailingWrites(monkeypatch)
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    store.record_post(store.deliveries()[0], "wamid-1", NOW)
    failing.armed = True
    # The history is appended by its own file's code: only the outbox's write fails here.
    with pytest.raises(OSError, match="No space left"):
        store.record_post(store.deliveries()[0], "wamid-2", NOW + timedelta(minutes=5))
    view = outbox_view(store)
    assert view[0] == [] and view[3] == ["d1", "d2"]  # posted: never sent again
    assert store.last_post("whatsapp") == NOW  # the pacing the disk has
    store.close()  # folding the journal in fails too: it stays, and nothing is lost
    failing.armed = False
    reopened = Store.open(tmp_path)
    assert outbox_view(reopened) == view
    reopened.close()


def test_seen_keys_whose_file_cannot_be_written_are_not_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(tmp_path)
    store.save_feed(FeedState("notizie", primed=("wa",)), {"wa": {"l:1"}}, now=NOW)
    written = (tmp_path / "feeds" / "notizie.json").read_bytes()

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bridge.store, "write_fully", full)
    with pytest.raises(OSError, match="No space left"):
        store.save_feed(FeedState("notizie", primed=("tg", "wa")), {"wa": {"l:1", "l:2"}, "tg": {"l:2"}}, now=NOW)
    # Not seen, so the items are still new to the next poll; and not primed for "tg", whose
    # first poll would otherwise be skipped and its items posted as if they were new.
    assert store.seen_by("wa", "l:2") == {} and store.seen_by("tg", "l:2") == {}
    assert store.feed_state("notizie").primed == ("wa",)
    assert (tmp_path / "feeds" / "notizie.json").read_bytes() == written
    assert not list((tmp_path / "feeds").glob(".*.tmp"))
    monkeypatch.undo()
    store.save_feed(FeedState("notizie", primed=("tg", "wa")), {"wa": {"l:1", "l:2"}, "tg": {"l:2"}}, now=NOW)
    assert store.seen_by("tg", "l:2") == {"notizie": int(NOW.timestamp())}
    store.close()


def test_forget_feed_forgets_one_feed_only_and_survives_a_reopen(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    for feed in ("notizie", "eventi"):
        store.save_feed(FeedState(feed, primed=("wa",), etag='"1"', last_poll=NOW), {"wa": {f"l:{feed}-1", "l:both"}},
                        now=NOW)
    assert store.forget_feed("notizie") == 2
    assert store.seen_by("wa", "l:both") == {"eventi": int(NOW.timestamp())}
    assert store.feed_state("notizie") == FeedState("notizie")
    store.close()
    assert not (tmp_path / "feeds" / "notizie.json").exists()
    store = Store.open(tmp_path)
    try:
        assert store.feed_state("notizie") == FeedState("notizie")  # a first poll again
        assert store.seen_count("notizie") == 0 and not store.knows_feed("notizie")
        assert store.feed_state("eventi").primed == ("wa",) and store.seen_count("eventi") == 2
    finally:
        store.close()


def test_forget_feed_never_turns_a_name_from_the_state_into_a_path(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    store.close()
    polls = {"polls": {"1": FeedState("../outbox", last_poll=NOW).to_dict()}}
    (tmp_path / "polls.json").write_text(json.dumps(polls), encoding="utf-8")
    store = Store.open(tmp_path)
    try:
        assert store.knows_feed("../outbox")
        assert store.forget_feed("../outbox") == 0
        assert len(store.deliveries()) == 1
    finally:
        store.close()
    assert (tmp_path / "outbox.json").exists()
