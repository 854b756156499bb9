"""The outbox's storage: a TinyDB snapshot plus a journal, compacted in a thread, crash-safe."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tinydb import TinyDB

import bridge.journal
from bridge.journal import JournaledStorage, UnreadableFile
from bridge.store import Store

KEYS = {"rows": "id"}


def storage(path: Path, *, read_only: bool = False) -> JournaledStorage:
    return JournaledStorage(str(path / "db.json"), keys=KEYS, read_only=read_only)


def rows(store: JournaledStorage) -> dict[str, Any]:
    """The `rows` table, by key."""
    data = store.read() or {}
    return {doc["id"]: doc for doc in data.get("rows", {}).values()}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[JournaledStorage]:
    store = storage(tmp_path)
    store.read()
    yield store
    store.close()


def test_changes_are_journal_lines_and_a_compaction_folds_them_into_a_tinydb_snapshot(
        tmp_path: Path, db: JournaledStorage) -> None:
    db.append({"rows": {"a": {"id": "a", "n": 1}, "b": {"id": "b", "n": 2}}})
    db.append({"rows": {"a": {"id": "a", "n": 3}, "b": None}})
    assert not (tmp_path / "db.json").exists()
    lines = (tmp_path / "db.0.journal").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"rows": {"a": {"id": "a", "n": 1}, "b": {"id": "b", "n": 2}}}, {"rows": {"a": {"id": "a", "n": 3}, "b": None}}]
    assert rows(storage(tmp_path, read_only=True)) == {"a": {"id": "a", "n": 3}}

    db.compact({"meta": [{"schema": 2}], "rows": [{"id": "a", "n": 3}]})
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["db.json"]  # the journal it holds is gone
    plain = TinyDB(str(tmp_path / "db.json"))  # TinyDB's own JSONStorage reads the snapshot
    assert plain.table("rows").all() == [{"id": "a", "n": 3}]
    assert plain.table("meta").get(doc_id=1) == {"schema": 2, "journal": 1}
    plain.close()
    db.append({"rows": {"c": {"id": "c", "n": 4}}})
    assert (tmp_path / "db.1.journal").exists()
    # Any TinyDB over this storage sees snapshot and journal together.
    journaled = TinyDB(str(tmp_path / "db.json"), storage=JournaledStorage, keys=KEYS, read_only=True)
    assert sorted(doc["id"] for doc in journaled.table("rows").all()) == ["a", "c"]


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path, db: JournaledStorage) -> None:
    db.append({"rows": {"a": {"id": "a"}}})
    db.close()
    journal = tmp_path / "db.0.journal"
    with journal.open("ab") as file:
        file.write(b'{"rows": {"b": {"id": "b", "n"')  # killed mid-append
    assert rows(storage(tmp_path, read_only=True)) == {"a": {"id": "a"}}
    again = storage(tmp_path)
    assert rows(again) == {"a": {"id": "a"}}
    again.append({"rows": {"c": {"id": "c"}}})
    again.close()
    assert [json.loads(line) for line in journal.read_text().splitlines()] == [
        {"rows": {"a": {"id": "a"}}}, {"rows": {"c": {"id": "c"}}}]


def test_a_complete_last_line_without_its_newline_is_kept(tmp_path: Path, db: JournaledStorage) -> None:
    db.append({"rows": {"a": {"id": "a"}}})
    db.close()
    journal = tmp_path / "db.0.journal"
    journal.write_bytes(journal.read_bytes() + b'{"rows":{"b":{"id":"b"}}}')
    again = storage(tmp_path)
    assert set(rows(again)) == {"a", "b"}
    again.append({"rows": {"c": {"id": "c"}}})
    again.close()
    assert set(rows(storage(tmp_path, read_only=True))) == {"a", "b", "c"}
    assert len(journal.read_text().splitlines()) == 3


def test_a_damaged_line_before_the_last_makes_the_journal_unreadable(tmp_path: Path, db: JournaledStorage) -> None:
    db.append({"rows": {"a": {"id": "a"}}})
    db.append({"rows": {"b": {"id": "b"}}})
    db.close()
    journal = tmp_path / "db.0.journal"
    first, second = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"\x00" * len(first) + second)  # a disk error, not a crash
    with pytest.raises(UnreadableFile) as caught:
        storage(tmp_path, read_only=True).read()
    assert caught.value.path == journal and "line 1" in caught.value.detail


def test_a_compaction_cut_short_by_a_kill_leaves_the_old_snapshot_and_its_temporary_file_goes(
        tmp_path: Path, db: JournaledStorage) -> None:
    db.append({"rows": {"a": {"id": "a"}}})
    db.close()
    (tmp_path / ".db.json.tmp").write_bytes(b'{"meta":{"1":{"journal":1}},"rows":{\n"1":{"id":"a"},\n"2":{"i')
    assert rows(storage(tmp_path, read_only=True)) == {"a": {"id": "a"}}
    assert rows(storage(tmp_path)) == {"a": {"id": "a"}}
    assert not (tmp_path / ".db.json.tmp").exists()


def test_a_failed_append_is_cut_back_and_raises(tmp_path: Path, db: JournaledStorage,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    db.append({"rows": {"a": {"id": "a"}}})
    size = (tmp_path / "db.0.journal").stat().st_size

    def half_then_full(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])  # a short write: the disk filled up in the middle
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bridge.journal, "write_fully", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        db.append({"rows": {"b": {"id": "b", "text": "x" * 1000}}})
    assert (tmp_path / "db.0.journal").stat().st_size == size
    monkeypatch.undo()
    db.append({"rows": {"c": {"id": "c"}}})
    assert set(rows(storage(tmp_path, read_only=True))) == {"a", "c"}


def test_a_compaction_in_the_thread_lets_changes_go_on_and_loses_none(tmp_path: Path, db: JournaledStorage) -> None:
    for n in range(200):
        db.append({"rows": {f"r{n}": {"id": f"r{n}", "n": n}}})
    release = threading.Event()

    def slow_rows() -> Iterator[dict[str, Any]]:
        release.wait(10)  # the compaction is under way while the changes below are made
        yield from ({"id": f"r{n}", "n": n} for n in range(200))

    db.compact({"rows": slow_rows()}, background=True)
    assert db.compacting
    db.append({"rows": {"r0": None, "late": {"id": "late", "n": -1}}})
    assert not db.compaction_due()  # one at a time
    release.set()
    db.wait()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["db.1.journal", "db.json"]
    expected = {f"r{n}" for n in range(1, 200)} | {"late"}
    assert set(rows(storage(tmp_path, read_only=True))) == expected
    db.close()
    assert set(rows(storage(tmp_path))) == expected


def test_a_compaction_is_due_when_the_journal_outgrows_the_snapshot(tmp_path: Path, db: JournaledStorage,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JournaledStorage, "MIN_JOURNAL", 1000)
    db.compact({"rows": [{"id": f"r{n}", "text": "x" * 100} for n in range(50)]})
    snapshot = (tmp_path / "db.json").stat().st_size
    assert snapshot > 5000
    written = 0
    while not db.compaction_due():
        db.append({"rows": {"r1": {"id": "r1", "text": "y" * 100}}})
        written += 1
    assert db.journal_bytes > snapshot
    assert db.journal_bytes < snapshot + 200  # due as soon as it outgrows it, not later
    assert written > 10


COUNT = 2000


def test_a_reader_racing_compactions_always_sees_a_moment_of_the_writers_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JournaledStorage, "MIN_JOURNAL", 0)
    monkeypatch.setattr(JournaledStorage, "COMPACT_RATIO", 0.05)
    writer = storage(tmp_path)
    writer.read()
    done = threading.Event()
    seen: list[int] = []
    problems: list[str] = []

    def read_all_the_time() -> None:
        while not done.is_set():
            try:
                keys = set(rows(storage(tmp_path, read_only=True)))
            except UnreadableFile as exc:
                problems.append(str(exc))
                return
            count = len(keys)
            if keys != {f"r{n}" for n in range(count)}:
                problems.append(f"not a prefix: {sorted(keys)[:5]}... ({count})")
            if seen and count < seen[-1]:
                problems.append(f"went back from {seen[-1]} to {count}")
            seen.append(count)

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for n in range(COUNT):
            writer.append({"rows": {f"r{n}": {"id": f"r{n}", "text": "x" * 200}}})
            if writer.compaction_due():
                writer.compact({"rows": [{"id": f"r{k}", "text": "x" * 200} for k in range(n + 1)]}, background=True)
    finally:
        done.set()
        reader.join(30)
        writer.close()
    assert problems == []
    assert len(seen) > 1
    assert len(rows(storage(tmp_path, read_only=True))) == COUNT


WRITER = textwrap.dedent(
    """
    import os
    import random
    import sys
    from dataclasses import replace
    from datetime import UTC, datetime
    from pathlib import Path

    from bridge.item import Alert
    from bridge.journal import JournaledStorage
    from bridge.store import Delivery, Store

    # Compactions every few changes, so that kills land in the middle of them too.
    JournaledStorage.MIN_JOURNAL = 0
    JournaledStorage.COMPACT_RATIO = 0.05

    state, seed, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    store = Store.open(state)
    now = datetime.now(UTC)

    def say(*words):
        # One write per line: a kill never leaves half a line behind a whole one.
        os.write(1, (" ".join(map(str, words)) + "\\n").encode())

    def delivery(k):
        alert = Alert(feed_id="f", feed_name="Feed", title=f"Avviso {k}", summary="Testo. " * 40,
                      link=f"https://www.comune.esempio.it/n/{k}")
        return Delivery(id=f"d{k}", channel="wa", feed_id="f", alert=alert, created=now, order=float(k))

    while True:
        queued = store.deliveries()
        roll = rng.random()
        if roll < 0.4 or len(queued) < 30:
            batch = [delivery(n + i) for i in range(rng.randint(1, 4))]
            n += len(batch)
            say("add", *(d.id for d in batch))
            store.add_deliveries(batch)
        elif roll < 0.8:
            target = rng.choice(queued)
            say("update", target.id, target.attempts + 1)
            store.update_delivery(replace(target, attempts=target.attempts + 1))
        else:
            batch = queued[: rng.randint(1, 3)]
            say("post", *(d.id for d in batch))
            store.record_posts(batch, "remote", now)
        say("done")
    """
)


def apply(model: tuple[dict[str, int], set[str]], line: list[str]) -> tuple[dict[str, int], set[str]]:
    queued, posted = dict(model[0]), set(model[1])
    kind, *args = line
    if kind == "add":
        queued.update(dict.fromkeys(args, 0))
    elif kind == "update":
        queued[args[0]] = int(args[1])
    else:
        for delivery_id in args:
            queued.pop(delivery_id)
            posted.add(delivery_id)
    return queued, posted


def test_a_kill_at_any_instant_loses_no_delivery_and_resurrects_none(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    model: tuple[dict[str, int], set[str]] = ({}, set())
    next_id = 1
    for round_ in range(10):
        log = tmp_path / f"writer-{round_}.log"
        with log.open("w") as out:
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(state), str(round_), str(next_id)],
                                      env=env, stdout=out)
        deadline = time.monotonic() + 30
        while "done" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.5))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        text = log.read_text()
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a line cut by the kill: its change had not begun
        lines = [line.split() for line in text.splitlines() if line.strip()]
        assert lines, "the writer never started"
        uncertain = None
        for index, line in enumerate(lines):
            if line == ["done"]:
                continue
            if index + 1 < len(lines) and lines[index + 1] == ["done"]:
                model = apply(model, line)
            else:
                uncertain = line  # begun, not acknowledged: either outcome is right
        store = Store.open(state)
        try:
            found = ({d.id: d.attempts for d in store.deliveries()}, {p.delivery_id for p in store.posts()})
        finally:
            store.close()
        allowed = [model] + ([apply(model, uncertain)] if uncertain else [])
        assert found in allowed, f"round {round_}: uncertain {uncertain}"
        model = found
        next_id += sum(len(line) - 1 for line in lines if line[0] == "add")
    assert len(model[1]) > 0 and len(model[0]) > 0


class Refused(Exception):
    pass


@pytest.mark.parametrize("refuse_at", [1, 2], ids=["before the snapshot", "before it replaces the old one"])
@pytest.mark.parametrize("background", [False, True], ids=["at once", "in its thread"])
def test_a_compaction_the_owners_check_refuses_replaces_nothing(
        tmp_path: Path, refuse_at: int, background: bool) -> None:
    """The owner's check (the store: is the state directory still ours?) is asked before the
    snapshot is written and before it replaces the old one; a refusal leaves the files as they
    were, the temporary one removed, and every change still read from the journals."""
    asked: list[int] = []

    def check() -> None:
        asked.append(1)
        if len(asked) >= refuse_at:
            raise Refused("the state directory is no longer ours")

    db = JournaledStorage(str(tmp_path / "db.json"), keys=KEYS, check=check)
    db.read()
    db.append({"rows": {"a": {"id": "a", "n": 1}}})
    before = sorted(p.name for p in tmp_path.iterdir())
    if background:
        db.compact({"rows": [{"id": "a", "n": 1}]}, background=True)
        db.wait()
    else:
        with pytest.raises(Refused):
            db.compact({"rows": [{"id": "a", "n": 1}]})
    db.close()
    assert len(asked) == refuse_at
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["db.0.journal"]
    assert rows(storage(tmp_path, read_only=True)) == {"a": {"id": "a", "n": 1}}
