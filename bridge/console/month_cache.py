"""The digests of past months' history files (`published.MonthDigest`), kept in memory so that
a search of *Pubblicati* skips, without reading them, the months that cannot hold what it
looks for: a search for words found nowhere reads no past month at all.

A post goes to the file of the month it was posted in, so a month's file grows only while the
month runs. The current month (UTC, as the files are named) and any later one are therefore
never cached: they are read at every search. A past month's file may still change (a hand
edit, a restore from a backup, the split of an old single history file, a post recorded late
after a clock jump): its digest is kept with the file's identity (inode, size, modification
and change times in nanoseconds), looked at (one `stat`) at every use, and a file whose
identity differs is read again. A file that changes while it is read is not cached.

The memory is bounded by bytes (`MonthDigest.nbytes`, `DEFAULT_BUDGET`): past it, the months
used least recently are dropped first, and a month whose digest alone exceeds it is never
kept. Safe to use from several threads (the console reads the history off the event loop).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bridge.console.published import MonthDigest, digest
from bridge.models import Post

# 100,000 posts over 24 months take about 10 MB of digests (bench/console.py prints it).
DEFAULT_BUDGET = 32 * 1024 * 1024

FileIdentity = tuple[int, int, int, int]


def file_identity(path: Path) -> FileIdentity | None:
    """What tells one state of a file from another without reading it; None without a file."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class PastMonths:
    """The digests of the past months of one state directory's history, as a
    `published.MonthDigests`: `months(month)` is the digest of `month` ("YYYY-MM", UTC), or None
    for the current month, a later one, or a month without a file (a search then reads it).

    `path_of(month)` is the month's file, `read(month)` its posts (every record, as the
    search's own reading gives them), `now()` the wall time that tells which months are past.
    """

    def __init__(self, path_of: Callable[[str], Path], read: Callable[[str], list[Post]],
                 now: Callable[[], datetime], budget: int = DEFAULT_BUDGET) -> None:
        self._path_of = path_of
        self._read = read
        self._now = now
        self.budget = budget
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[FileIdentity, MonthDigest]] = OrderedDict()
        self._bytes = 0
        self.reads = 0  # months read to make a digest (a measure for the bench and tests)

    @property
    def nbytes(self) -> int:
        """The memory the digests kept hold, about (`MonthDigest.nbytes`)."""
        with self._lock:
            return self._bytes

    def kept(self) -> list[str]:
        """The months whose digest is kept, least recently used first."""
        with self._lock:
            return list(self._kept)

    def __call__(self, month: str) -> MonthDigest | None:
        if month >= f"{self._now().astimezone(UTC):%Y-%m}":
            return None
        path = self._path_of(month)
        before = file_identity(path)
        if before is None:
            self._drop(month)
            return None
        with self._lock:
            entry = self._kept.get(month)
            if entry is not None and entry[0] == before:
                self._kept.move_to_end(month)
                return entry[1]
        posts = self._read(month)
        with self._lock:
            self.reads += 1
        if file_identity(path) != before:
            return None  # written while it was read: what was read may be half of it
        made = digest(posts)
        self._keep(month, before, made)
        return made

    def _keep(self, month: str, identity: FileIdentity, made: MonthDigest) -> None:
        with self._lock:
            old = self._kept.pop(month, None)
            if old is not None:
                self._bytes -= old[1].nbytes
            if made.nbytes > self.budget:
                return
            self._kept[month] = (identity, made)
            self._bytes += made.nbytes
            while self._bytes > self.budget:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._bytes -= dropped.nbytes

    def _drop(self, month: str) -> None:
        with self._lock:
            old = self._kept.pop(month, None)
            if old is not None:
                self._bytes -= old[1].nbytes
