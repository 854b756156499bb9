"""A TinyDB storage whose changes cost the same whatever the size of the database.

TinyDB's own storages write the whole database at every change: with 100,000 queued
deliveries that is a 60 MB file per change. This one appends each change to a journal and
writes the whole database only now and then (a compaction), in a thread. On disk, for a
database `NAME.json`:

    NAME.json          the snapshot, in TinyDB's own layout (tables of numbered documents), so
                       any TinyDB reads it; table `meta`, document 1, field `journal` is its
                       generation G
    NAME.<n>.journal   the changes of generation n, JSON Lines, one line per commit:
                       {"table": {"key": document, or null for a removal}}

A document is named in the journal by its table's key field (`keys`), never by TinyDB's
document number, so that a compaction may renumber. The database is the snapshot with every
journal of generation G or later applied in order; older journals are left-overs of a finished
compaction, removed by the writer.

- A commit (`append`) is one line, written whole and fdatasynced before it returns. A write
  that fails (ENOSPC, EIO) is cut off again and raises: the caller's change did not happen.
- A line torn by a crash can only be the last one: a reader ignores it and the writer cuts it
  before its next append. A complete last line that lacks only its newline is kept. A damaged
  line anywhere else makes the file unreadable (`UnreadableFile`).
- A compaction first starts a new journal (generation n+1), so commits go on while a thread
  writes the state as of that moment to a temporary snapshot of generation n+1, fsyncs it,
  renames it over the old one, fsyncs the directory, and only then removes the journals
  before n+1. A kill at any instant leaves the old snapshot with every journal since, or the
  new one with the journals it does not hold: the same database either way. Replaying a
  journal over a snapshot that already holds it changes nothing (each line sets or removes
  whole documents).

A compaction is due when the journals outgrow the snapshot (`COMPACT_RATIO`, at least
`MIN_JOURNAL` bytes): the writes per change stay bounded (each byte of state is written about
twice), and so does the disk used (about twice the snapshot at most) and the time to load.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog
from tinydb.storages import Storage

log = structlog.get_logger("bridge.journal")

Document = dict[str, Any]
Tables = dict[str, dict[str, Any]]  # TinyDB's layout: table -> document number -> document
Change = Mapping[str, Mapping[str, Document | None]]  # table -> key -> document, None removes it

_CHUNK = 1 << 15  # bytes of a snapshot encoded at a time: about a millisecond of work
# A compaction in the thread rests this long after each chunk: the interpreter runs one thread
# at a time, and without the rests the loop's thread would wait up to the interpreter's switch
# interval (5 ms) each time it takes it back after a system call; a change makes several.
_REST = 0.001
_SYNC_EVERY = 2 << 20  # bytes of snapshot written between two fdatasyncs of it, in the thread:
# little unwritten data at any moment, so the journal's own fdatasync never waits behind much
_READ_ATTEMPTS = 8  # a reader racing a compaction reads again, at most this often


class UnreadableFile(Exception):
    """One file of the database cannot be read; `path` names it."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class _ReadAgain(Exception):
    """A compaction replaced the snapshot or removed a journal while it was being read."""


def write_fully(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` or raise: `os.write` may write less than it was given (a
    nearly full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # never for a regular file; it would loop forever
            raise OSError(errno.EIO, "the file system accepted none of the bytes")
        view = view[written:]


def fsync_dir(directory: Path) -> None:
    """Make a rename, a new file or a removal in `directory` durable."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _encode(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _valid_change(record: object) -> bool:
    return isinstance(record, dict) and all(
        isinstance(docs, dict) and all(doc is None or isinstance(doc, dict) for doc in docs.values())
        for docs in record.values()
    )


class JournaledStorage(Storage):
    """A TinyDB storage: a snapshot in TinyDB's layout plus a journal of changes (see the module).

    `keys` maps each journaled table to the field that names its documents. TinyDB's own
    `write` (the whole database) is a synchronous compaction; the owner of the data commits a
    change with `append` and, when `compaction_due`, calls `compact` with its current tables.
    One caller at a time: the owner may call from more than one thread (the store appends from
    its writer thread and starts compactions from the event loop's, between two appends), but
    never from two at once; the compaction thread touches only its own files.
    """

    COMPACT_RATIO = 1.0  # journals larger than this times the snapshot: compact
    MIN_JOURNAL = 1 << 20  # bytes of journal below which a compaction is never due

    def __init__(self, path: str, *, keys: Mapping[str, str], read_only: bool = False,
                 check: Callable[[], None] = lambda: None) -> None:
        self.path = Path(path)
        # Asked before a compaction writes its snapshot and again before it replaces the old
        # one; it raises when this process may no longer write here (the state directory was
        # removed and another instance may own the new one at the same path).
        self._check = check
        self.keys = dict(keys)
        self.read_only = read_only
        self._pattern = re.compile(rf"^{re.escape(self.path.stem)}\.(\d+)\.journal$")
        self._lock = threading.Lock()  # guards the sizes below, shared with the compaction thread
        self._generation = 0  # the snapshot's
        self._snapshot_bytes = 0
        self._sizes: dict[int, int] = {}  # generation -> bytes of its journal, for generations >= the snapshot's
        self._retry_above = 0  # after a failed compaction: journal bytes before the next try
        self._current = 0  # the generation appended to
        self._fd: int | None = None
        self._expected = 0  # the size of the current journal after the last commit
        self._newline_missing = False
        self._loaded = False
        self._thread: threading.Thread | None = None

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> Tables | None:
        """The whole database: the snapshot with its journals applied; None when there is none.

        Raise `UnreadableFile` naming the first file that cannot be read.
        """
        for _ in range(_READ_ATTEMPTS):
            try:
                return self._read_once()
            except _ReadAgain:
                continue
        raise UnreadableFile(self.path, "it kept being replaced while read; try again")

    def journal_path(self, generation: int) -> Path:
        return self.path.with_name(f"{self.path.stem}.{generation}.journal")

    def journals(self) -> list[tuple[int, Path]]:
        """Every journal file beside the snapshot, oldest generation first."""
        found = []
        try:
            entries = list(os.scandir(self.path.parent))
        except FileNotFoundError:
            return []
        for entry in entries:
            match = self._pattern.match(entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
        return sorted(found)

    def _read_once(self) -> Tables | None:
        snapshot, inode = self._read_snapshot()
        data: Tables = snapshot or {}
        meta = data.get("meta", {}).get("1")
        generation = meta.get("journal", 0) if isinstance(meta, dict) else 0
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise UnreadableFile(self.path, f"its journal generation {generation!r} is not a number")
        applied: dict[int, int] = {}
        read: list[tuple[Path, int]] = []
        stale = []
        tail = (0, False)
        for number, path in self.journals():
            if number < generation:
                stale.append(path)
                continue
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raise _ReadAgain from None
            tail = self._apply_journal(data, path, raw)
            applied[number] = len(raw)
            read.append((path, len(raw)))
        if self.read_only:
            self._check_unchanged(inode, read[:-1])
            return data if (snapshot is not None or applied) else None
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            fsync_dir(self.path.parent)
        self._snapshot_tmp().unlink(missing_ok=True)  # a compaction cut short by a kill
        self._close_journal()
        with self._lock:
            self._generation = generation
            self._snapshot_bytes = self._snapshot_size()
            self._sizes = applied
        self._current = max(applied, default=generation)
        self._expected, self._newline_missing = tail if applied.get(self._current) else (0, False)
        self._loaded = True
        return data if (snapshot is not None or applied) else None

    def _check_unchanged(self, inode: int | None, earlier: list[tuple[Path, int]]) -> None:
        """A reader's view is a moment of the writer's history only if no compaction replaced
        the snapshot meanwhile and no journal but the last grew after it was read (the writer
        moved on to the next one): else read again."""
        try:
            now = os.stat(self.path).st_ino
        except FileNotFoundError:
            now = None
        if now != inode:
            raise _ReadAgain
        for path, size in earlier:
            try:
                grown = path.stat().st_size != size
            except FileNotFoundError:
                grown = True
            if grown:
                raise _ReadAgain

    def _read_snapshot(self) -> tuple[Tables | None, int | None]:
        try:
            with open(self.path, "rb") as file:
                inode = os.fstat(file.fileno()).st_ino
                raw = file.read()
        except FileNotFoundError:
            return None, None
        if not raw:
            return None, inode
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise UnreadableFile(self.path, str(exc)) from None
        if not isinstance(data, dict) or not all(isinstance(table, dict) for table in data.values()):
            raise UnreadableFile(self.path, "it does not hold TinyDB tables")
        return data, inode

    def _snapshot_size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _apply_journal(self, data: Tables, path: Path, raw: bytes) -> tuple[int, bool]:
        """Apply the journal's complete lines to `data`; return the size of its good part and
        whether that part ends without its newline."""
        lines = raw.split(b"\n")
        last = lines.pop()  # the bytes after the last newline: empty, torn, or a complete line
        index: dict[str, tuple[dict[str, str], list[int]]] = {}
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = self._parse(line)
            if record is None:
                raise UnreadableFile(path, f"line {number} is damaged")
            self._apply(data, record, index, path)
        good = len(raw) - len(last)
        record = self._parse(last) if last.strip() else None
        if record is None:
            return good, False  # nothing after the last newline, or a line torn by a crash
        self._apply(data, record, index, path)
        return len(raw), True

    def _parse(self, line: bytes) -> Change | None:
        try:
            record = json.loads(line)
        except ValueError:
            return None
        return record if _valid_change(record) else None

    def _apply(self, data: Tables, change: Change, index: dict[str, tuple[dict[str, str], list[int]]],
               path: Path) -> None:
        for table, docs in change.items():
            field = self.keys.get(table)
            if field is None:
                raise UnreadableFile(path, f"it changes table {table!r}, which has no key field")
            rows = data.setdefault(table, {})
            if table not in index:
                ids = {str(doc.get(field)): doc_id for doc_id, doc in rows.items() if isinstance(doc, dict)}
                index[table] = (ids, [max((int(n) for n in rows if n.isdigit()), default=0)])
            ids, last_id = index[table]
            for key, doc in docs.items():
                doc_id = ids.get(key)
                if doc is None:
                    if doc_id is not None:
                        del rows[doc_id]
                        del ids[key]
                    continue
                if doc_id is None:
                    last_id[0] += 1
                    doc_id = ids[key] = str(last_id[0])
                rows[doc_id] = doc

    # -- committing ------------------------------------------------------------------------

    def append(self, change: Change) -> None:
        """Commit `change` durably (one journal line, fdatasynced) before returning.

        Raise OSError when it cannot be written; the journal is then cut back to its size
        before the call, so the change is not in the database.
        """
        if self.read_only:
            raise PermissionError(f"{self.path} is open read-only")
        if not self._loaded:
            self.read()
        unknown = set(change) - set(self.keys)
        if unknown:
            raise ValueError(f"tables without a key field cannot be journaled: {sorted(unknown)}")
        line = (_encode(change) + "\n").encode()
        fd = self._journal_fd()
        start = self._expected
        if os.fstat(fd).st_size != start:
            # What a failed commit or a crash left after the last good line.
            os.ftruncate(fd, start)
        if self._newline_missing:
            line = b"\n" + line
        try:
            write_fully(fd, line)
            os.fdatasync(fd)
        except OSError:
            try:
                os.ftruncate(fd, start)
                os.fdatasync(fd)
            except OSError:
                pass  # the size check above cuts it before the next commit
            raise
        self._expected = start + len(line)
        self._newline_missing = False
        with self._lock:
            self._sizes[self._current] = self._expected

    def _journal_fd(self) -> int:
        if self._fd is None:
            path = self.journal_path(self._current)
            created = not path.exists()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if created:
                fsync_dir(self.path.parent)
        return self._fd

    def _close_journal(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def journal_bytes(self) -> int:
        """Bytes of journal not yet folded into the snapshot."""
        with self._lock:
            return sum(self._sizes.values())

    @property
    def compacting(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def compaction_due(self) -> bool:
        """True when the journals outgrow the snapshot and no compaction is under way."""
        if self.read_only or self.compacting:
            return False
        with self._lock:
            journal = sum(self._sizes.values())
            return journal > max(self.MIN_JOURNAL, self.COMPACT_RATIO * self._snapshot_bytes, self._retry_above)

    # -- compacting ------------------------------------------------------------------------

    def write(self, data: Tables) -> None:
        """Replace the whole database with `data` (TinyDB's storage call): a compaction, at once."""
        self.compact({name: list(table.items()) for name, table in data.items()}, numbered=True)

    def compact(self, tables: Mapping[str, Iterable[Any]], *, numbered: bool = False,
                background: bool = False) -> None:
        """Write `tables` as the new snapshot and drop the journals it holds.

        `tables` maps each table to its documents, numbered 1, 2, ... in order (or, with
        `numbered`, to (number, document) pairs); they are taken to be the database as of
        this call, and may be lazy: they are consumed while writing, possibly in the thread.
        `background` writes from a thread and returns at once; otherwise OSError is raised
        here. A change committed after this call goes into the new journal either way.
        """
        if self.read_only:
            raise PermissionError(f"{self.path} is open read-only")
        if not self._loaded:
            self.read()
        self.wait()
        # From here on commits go to the next generation: the snapshot holds every earlier one.
        self._close_journal()
        self._current += 1
        self._expected, self._newline_missing = 0, False
        generation = self._current
        if not background:
            self._compact(generation, tables, numbered, paced=False)
            return
        self._thread = threading.Thread(target=self._compact_logged, args=(generation, tables, numbered),
                                        name="journal-compaction", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Return once no compaction is under way."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _compact_logged(self, generation: int, tables: Mapping[str, Iterable[Any]], numbered: bool) -> None:
        try:
            self._compact(generation, tables, numbered, paced=True)
        except OSError as exc:
            log.warning("compaction failed; the journal keeps every change, it is tried again later",
                        file=str(self.path), error=str(exc))
        except Exception as exc:  # the owner's check refused: this process writes here no more
            log.warning("compaction abandoned", file=str(self.path), error=str(exc))

    def _compact(self, generation: int, tables: Mapping[str, Iterable[Any]], numbered: bool, *,
                 paced: bool) -> None:
        try:
            size = self._write_snapshot(generation, tables, numbered, paced=paced)
        except OSError:
            with self._lock:
                self._retry_above = sum(self._sizes.values()) + self.MIN_JOURNAL
            raise
        with self._lock:
            self._generation = generation
            self._snapshot_bytes = size
            self._sizes = {n: s for n, s in self._sizes.items() if n >= generation}
            self._retry_above = 0
        removed = False
        for number, path in self.journals():
            if number < generation:
                path.unlink(missing_ok=True)
                removed = True
        if removed:
            fsync_dir(self.path.parent)

    def _write_snapshot(self, generation: int, tables: Mapping[str, Iterable[Any]], numbered: bool, *,
                        paced: bool) -> int:
        self._check()
        tmp = self._snapshot_tmp()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        size = unsynced = 0
        try:
            for chunk in self._snapshot_chunks(generation, tables, numbered):
                write_fully(fd, chunk)
                size += len(chunk)
                if paced:
                    unsynced += len(chunk)
                    if unsynced >= _SYNC_EVERY:
                        os.fdatasync(fd)
                        unsynced = 0
                    time.sleep(_REST)
            os.fsync(fd)
            self._check()
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)  # give the space back at once
            raise
        os.close(fd)
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        return size

    def _snapshot_tmp(self) -> Path:
        return self.path.with_name(f".{self.path.name}.tmp")

    def _snapshot_chunks(self, generation: int, tables: Mapping[str, Iterable[Any]],
                         numbered: bool) -> Iterator[bytes]:
        """The snapshot's bytes: valid JSON in TinyDB's layout, one document a line, so that
        no single encoding call holds the interpreter for long."""
        pieces: list[str] = []
        held = 0
        names = ["meta", *sorted(name for name in tables if name != "meta")]
        for position, name in enumerate(names):
            rows: Iterable[tuple[Any, Any]]
            if name == "meta":
                given = list(tables.get("meta", ()))
                meta = dict((given[0][1] if numbered else given[0]) if given else {})
                meta["journal"] = generation
                rows = [("1", meta)]
            else:
                rows = tables[name] if numbered else enumerate(tables[name], 1)
            pieces.append(("{" if position == 0 else "},\n") + _encode(name) + ":{")
            for count, (doc_id, doc) in enumerate(rows):
                piece = ("\n" if count == 0 else ",\n") + f'"{doc_id}":' + _encode(doc)
                pieces.append(piece)
                held += len(piece)
                if held >= _CHUNK:
                    yield "".join(pieces).encode()
                    pieces, held = [], 0
        pieces.append("}}\n")
        yield "".join(pieces).encode()

    def close(self) -> None:
        """Wait for a compaction under way and release the journal."""
        self.wait()
        self._close_journal()
