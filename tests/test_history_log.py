"""The audit log on a nearly full disk: an append is written whole or not at all, and nothing
already in it is ever lost or glued to another record."""

from __future__ import annotations

import errno
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from filesystems import SmallFs

from bridge.store import STATE_PROBLEM, Post, PostLog, StateWriteError

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def post(n: int, *, title: str = "") -> Post:
    return Post(delivery_id=f"d{n}", channel="whatsapp", feed_id="notizie",
                title=title or f"Avviso {n}: chiusura di via Roma", link=f"https://www.comune.esempio.it/n/{n}",
                posted_at=NOW + timedelta(minutes=n), remote_id=f"wamid-{n}")


def ids(log: PostLog) -> list[str]:
    return [p.delivery_id for p in log.read()]


def test_an_append_that_does_not_fit_on_a_nearly_full_disk_is_cut_back_whole(small_fs: SmallFs) -> None:
    path = small_fs.path / "history.jsonl"
    log = PostLog(path, read_only=False)
    log.append([post(1), post(2)])
    size = path.stat().st_size
    small_fs.fill()  # every free block taken: only the rest of the log's last block is left
    # A batch longer than that rest: the kernel takes the part that fits (a short write),
    # then refuses the remainder with ENOSPC.
    batch = [post(n, title="Avviso lungo " + "x" * 300) for n in range(3, 40)]
    with pytest.raises(StateWriteError, match=STATE_PROBLEM) as caught:
        log.append(batch)
    assert caught.value.errno == errno.ENOSPC
    assert str(path) in str(caught.value) and "No space left on device" in str(caught.value)
    assert path.stat().st_size == size, "the torn part of the append was left in the log"
    assert ids(log) == ["d1", "d2"]

    small_fs.free()  # space is back: the next append is whole, nothing is glued onto anything
    log.append([post(40)])
    reopened = PostLog(path, read_only=False)
    reopened.append([post(41)])
    assert ids(PostLog(path, read_only=True)) == ["d1", "d2", "d40", "d41"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_a_short_write_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "history.jsonl"
    log = PostLog(path, read_only=False)
    log.append([post(1)])
    real_write = os.write
    calls: list[int] = []

    def short_write(fd: int, data: bytes | memoryview) -> int:
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(path):
            calls.append(len(data))
            if len(calls) == 1:
                return real_write(fd, bytes(data[: len(data) // 3]))  # the disk took a third
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", short_write)
    log.append([post(2), post(3)])
    monkeypatch.undo()
    assert len(calls) >= 2, "the rest of a short write was never written"
    assert ids(log) == ["d1", "d2", "d3"]


def test_a_short_write_then_a_failure_leaves_the_log_as_it_was(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "history.jsonl"
    log = PostLog(path, read_only=False)
    log.append([post(1)])
    before = path.read_bytes()
    real_write = os.write
    calls = 0

    def failing_write(fd: int, data: bytes | memoryview) -> int:
        nonlocal calls
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(path):
            calls += 1
            if calls == 1:
                return real_write(fd, bytes(data[:17]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(StateWriteError, match="No space left on device"):
        log.append([post(2)])
    monkeypatch.undo()
    assert path.read_bytes() == before
    log.append([post(3)])  # the next one is whole and on its own line
    assert ids(log) == ["d1", "d3"]


def test_a_complete_last_record_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(post(1).to_dict()) + "\n" + json.dumps(post(2).to_dict()), encoding="utf-8")
    assert ids(PostLog(path, read_only=True)) == ["d1", "d2"]
    log = PostLog(path, read_only=False)
    log.append([post(3)])
    assert ids(log) == ["d1", "d2", "d3"]
    assert path.read_text().endswith("\n") and len(path.read_text().splitlines()) == 3


def test_a_torn_last_record_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(post(1).to_dict()) + '\n{"delivery_id": "d2", "chan', encoding="utf-8")
    log = PostLog(path, read_only=False)
    log.append([post(3)])
    assert ids(log) == ["d1", "d3"]
    assert len(path.read_text().splitlines()) == 2


def test_a_record_glued_onto_a_torn_one_is_recovered(tmp_path: Path) -> None:
    # What an older version left after a short write: the torn record, then the next one on
    # the same line. The torn one is lost; the whole one after it is not.
    path = tmp_path / "history.jsonl"
    torn = json.dumps(post(2).to_dict())[:40]
    path.write_text("\n".join([json.dumps(post(1).to_dict()), torn + json.dumps(post(3).to_dict()),
                               json.dumps(post(4).to_dict())]) + "\n", encoding="utf-8")
    assert ids(PostLog(path, read_only=True)) == ["d1", "d3", "d4"]
