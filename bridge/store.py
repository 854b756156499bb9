"""Durable state under `state_dir`: TinyDB files written crash-safely, one writer at a time.

Layout (schema version in `outbox.json`, table `meta`):

    lock                 flock()ed by the running daemon (a second instance exits); holds its pid
                         and, while it cannot write the state, why (see `state_condition`)
    feeds/<feed_id>.json one file per feed: the identity keys seen from it
    polls.json           every feed's poll state: validators, health (written periodically)
    outbox.json          deliveries not yet sent (pending) or given up (failed), channel pacing:
                         a snapshot in TinyDB's layout, with the changes made since it in
    outbox.<n>.journal   one line per change (see `bridge.journal`; folded in now and then)
    history-YYYY-MM.jsonl every post made in that month (UTC): where, when, the remote message
                         id (append-only; see `History`)
    audit.jsonl          every editor's action on an alert (append-only; see `bridge.audit`)

A poll that finds new keys writes its own feed's file only, and an outbox change appends one
line, so the cost of a write grows neither with the number of feeds nor with the queue; a 304
writes nothing (its state reaches polls.json at the next `flush`). Every other file is replaced
atomically: temp file, fsync, rename, fsync of the directory, mode 0600; a kill at any instant
leaves either the old or the new file (and a journal line torn by a kill is ignored).

Ordering gives crash safety without transactions across files: new deliveries are written to
the outbox *before* their keys are marked seen (a crash in between re-finds the item, and the
delivery id is deterministic, so nothing doubles), and a sent delivery is added to the history
*before* it leaves the outbox (a crash in between is mended at open). Every change returns only
once it is on disk.

Off the event loop. Each change is written once, as a plan (`Plan`): a generator that decides
the change from what is in memory, yields each durable write (a function that checks the lock,
then writes and syncs), and changes memory after each write has returned, never before and
never when it raised. Two drivers run a plan. `commit` runs it here and now, on the calling
thread: the CLI, the tests, opening and closing, and the synchronous methods (`add_deliveries`,
`save_feed`, ...), which are `commit` of their plan. `acommit` is the daemon's: plans take
turns in the order they were asked for; at its turn a plan is decided on the event loop, its
writes are done by the store's one writer thread while the loop goes on, and memory is changed
on the loop once each write is on disk. So the loop never waits for a disk, a reader on the
loop never sees a change that is not on disk, a write that fails changes nothing, the writes to
a file are never interleaved or reordered, and memory changes in the order of the files. The
daemon awaits each change before its next step that others can see (marking keys seen, sending
a request, moving a post to the history). A plan whose caller gives up (is cancelled) before
its turn does not happen; one under way always completes, and if the loop itself stops
meanwhile, the rest of it is done there, blocking the loop for that one change. While changes
are being made in turn, `commit` refuses (RuntimeError): the two would write the same files at
once. The outbox's compaction thread writes only its own files (see `bridge.journal`), and is
started between two turns, from the memory as of then.

A call that cannot write (a full disk, a read-only mount, an I/O error) raises
`StateWriteError`, which says "state directory full or not writable", the path and the OS
error, and leaves the state in memory as it is on disk: what the call stood for did not
happen, and the caller stops there (a poll whose deliveries were not written marks nothing
seen, so the next one finds the items again); nothing half-written is left behind. A writer
checks before every write that its lock file is still the one named by the lock path
(`check_lock`): a state directory removed or replaced under a running daemon stops it rather
than letting two instances post. Schema 1 kept the whole outbox in `outbox.json` (rewritten at
every change): it is read as a snapshot without a journal and rewritten in the new layout at
the first open.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import errno
import fcntl
import itertools
import json
import os
import re
import stat
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog
from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware
from tinydb.storages import Storage

from bridge.appendlog import AppendLog
from bridge.audit import (
    INTERRUPTED,
    NOT_WRITTEN,
    AuditEntry,
    AuditLog,
    AuditWriteError,
    last_actions,
    not_applied,
    took_effect,
)
from bridge.config import OPS_FEED
from bridge.journal import Change, Document, JournaledStorage, UnreadableFile, fsync_dir, write_fully

# The records live in bridge.models; named here too, so that `from bridge.store import Delivery` works.
from bridge.models import DELIVERY_STATES as DELIVERY_STATES
from bridge.models import Delivery as Delivery
from bridge.models import FeedState as FeedState
from bridge.models import Post as Post
from bridge.models import UnreadableRecord
from bridge.models import from_iso as _from_iso
from bridge.models import iso as _iso
from bridge.models import read_time as _time
from bridge.seen import SeenIndex

# 2: outbox.json is a snapshot and outbox.<n>.journal the changes since; 1: outbox.json whole.
SCHEMA_VERSION = 2
# The outbox's tables and the field that names their documents in the journal.
OUTBOX_KEYS = {"deliveries": "id", "channels": "channel"}
# A seen key's time is refreshed at most this often (seconds): a feed answering 200 with nothing
# new then costs no write. Far shorter than the three days a title fingerprint is matched.
SEEN_REFRESH = 86400
OPS_POSTS_KEPT = 200  # ops alerts posted, the latest kept in memory for the console's *Stato*

log = structlog.get_logger("bridge.store")

T = TypeVar("T")
Write = Callable[[], Any]
# A change of the state (see the module): decided from memory, its durable writes yielded one
# at a time (what each returns is sent back), memory changed after each; returns its result.
Plan = Generator[Write, Any, T]


class StateError(Exception):
    """The state directory cannot be used. `hint` tells the operator what to do."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class StateLockedError(StateError):
    """Another channel-bridge process holds the state directory."""


class StateLockLostError(StateError):
    """The lock path no longer names the lock file this process holds: the state directory was
    removed, moved or replaced while running, and another instance could take it."""


# What a person reads in `status`, the log and the systemd status line when a write fails.
STATE_PROBLEM = "state directory full or not writable"


def _write_hint(state_dir: Path, code: int | None) -> str:
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (f"free space on the disk holding {state_dir} (df -h {state_dir}); "
                "channel-bridge resumes by itself once it can write again")
    if code == errno.EROFS:
        return (f"the file system holding {state_dir} is mounted read-only: remount it read-write "
                "(and check the disk: dmesg), or set bridge.state_dir to a writable directory")
    if code in (errno.EACCES, errno.EPERM):
        return (f"the service's user cannot write {state_dir}: check its owner and permissions "
                "(systemd: StateDirectory=)")
    return f"check the disk holding {state_dir} (dmesg, df -h {state_dir})"


class StateWriteError(StateError, OSError):
    """A state file could not be written: the disk is full, the file system read-only, the
    directory not writable. Also an `OSError` (with `errno`, `strerror`, `filename`), so code
    that handles the OS error as such still does."""

    def __init__(self, path: Path, error: OSError, *, hint: str = "") -> None:
        self.path = path
        self.detail = f"{path}: {error.strerror or error}"
        StateError.__init__(self, f"{STATE_PROBLEM}: {self.detail}", hint=hint or _write_hint(path.parent, error.errno))
        self.errno = error.errno
        self.strerror = error.strerror or str(error)
        self.filename = str(path)

    def __str__(self) -> str:
        return str(self.args[0])


def write_failure(exc: BaseException, state_dir: Path) -> StateWriteError | None:
    """`exc` as a failed write under `state_dir`, or None when it is something else.

    A `StateWriteError`, or an OS error of the kind a full or read-only disk gives (from code
    that does not wrap its errors): the daemon reports them as the state directory's condition
    and resumes when writes succeed again; anything else is a bug.
    """
    if isinstance(exc, StateWriteError):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return None
    path = Path(os.fsdecode(exc.filename)) if exc.filename else None
    if path is not None and not path.is_relative_to(state_dir):
        return None  # another disk's trouble (a temporary directory, say): not the state's
    return StateWriteError(path or state_dir, exc)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new content, never a mix.

    Raise `StateWriteError` when it cannot be written; the old content stays, and the
    temporary file is removed (on a full disk it would hold the space that is left).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_fully(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # never created, or the directory itself is gone or read-only
        raise StateWriteError(path, exc) from None
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    try:
        fsync_dir(directory)
    except OSError as exc:
        raise StateWriteError(directory, exc) from None


class AtomicJSONStorage(Storage):
    """A TinyDB storage that never leaves a half-written file (TinyDB's JSONStorage can)."""

    def __init__(self, path: str, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise StateError(
                f"state file {self.path} is unreadable ({exc})",
                hint="move it aside and start again; the daemon then treats its feeds as new (no flood)",
            ) from None
        if not isinstance(data, dict):
            raise StateError(f"state file {self.path} does not hold TinyDB tables")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if self.read_only:
            raise StateError(f"state file {self.path} is open read-only")
        write_atomically(self.path, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())

    def close(self) -> None:
        pass


def _read_through(storage: Storage) -> TinyDB:
    """A TinyDB over `storage` that reads it once: TinyDB reads its storage at every query."""
    return TinyDB(storage=CachingMiddleware(lambda: storage))  # type: ignore[no-untyped-call]


def _now() -> datetime:
    return datetime.now(UTC)


def _encode(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class PostLog:
    """The audit log of posts: an append-only JSON Lines file (`bridge.appendlog`).

    Appending costs the same whatever the log's length (a TinyDB file would be rewritten whole
    at every post). Each append is written whole and fsynced, or not at all: a write that
    fails part-way (a nearly full disk takes only part of it) is cut back to where the log
    ended, and `StateWriteError` is raised. A line torn by a crash is cut off before the next
    append, and a reader skips it: its delivery is still in the outbox, in flight, and is
    reconciled with the channel before anything is sent again. A complete last record that
    lacks only its newline is kept, and the next append starts on a new line.
    """

    def __init__(self, path: Path, *, read_only: bool, check: Callable[[], None] = lambda: None) -> None:
        self.path = path
        self.read_only = read_only
        self._check = check  # raises when this process may no longer write the state
        self._file = AppendLog(path, lambda line: _parse_post(line, None) is not None)

    def read(self, keep: Callable[[bytes], bool] | None = None) -> list[Post]:
        """Every complete record, in file order; with `keep`, only those of the lines for
        which it is true (the others are not parsed: a search's quick look at the raw line).

        A record glued onto a torn one (what a short write of an older version left) is
        recovered. A time without a zone is read as UTC. Both, and lines that cannot be read,
        are logged as one warning; a torn last line (a crash, or an append under way) is not.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        posts = []
        notes: list[str] = []
        unreadable = 0
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip() or (keep is not None and not keep(line)):
                continue
            post = _parse_post(line, notes)
            if post is None and (found := line.rfind(b'{"delivery_id"')) > 0:
                post = _parse_post(line[found:], notes)  # glued on: the torn part before it is lost
                if post is not None:
                    notes.append(f"line {number}: a torn record before {post.delivery_id} skipped")
            if post is not None:
                posts.append(post)
            elif number < len(lines):  # not the last line: damage, not a crash mid-append
                unreadable += 1
        if unreadable:
            notes.append(f"{unreadable} unreadable line(s) skipped")
        if notes:
            log.warning("history has records written by hand or damaged; read what could be read",
                        file=str(self.path), count=len(notes), details=notes[:5])
        return posts

    def append(self, posts: list[Post]) -> None:
        """Add `posts` durably (write, fsync) before returning, or raise `StateWriteError` and
        leave the log as it was."""
        if self.read_only:
            raise StateError(f"{self.path} is open read-only")
        self._check()
        data = "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in posts).encode()
        try:
            self._file.append(data)
        except OSError as exc:
            raise StateWriteError(self.path, exc) from None


# The history, one file a month: the UTC month of the posts it holds.
HISTORY_FILE = "history-{month}.jsonl"
HISTORY_MONTH = re.compile(r"history-(\d{4}-\d{2})\.jsonl")
LEGACY_HISTORY = "history.jsonl"  # before the history was kept by month: read, then split at open
# How far back a writer remembers which deliveries were posted (see `History.posted_since`):
# longer than a feed's seen keys are kept (bridge.poll.SEEN_RETENTION, 180 days), so that a
# delivery is known as posted for as long as its item can be recognised as seen.
HISTORY_HORIZON = timedelta(days=200)


def _month(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m}"


def history_path(state_dir: Path, moment: datetime) -> Path:
    """The history file that holds the posts made at `moment`."""
    return state_dir / HISTORY_FILE.format(month=_month(moment))


def _post_key(post: Post) -> tuple[str, str, datetime]:
    return (post.delivery_id, post.channel, post.posted_at)


class History:
    """The audit log of posts: one `PostLog` a month, `history-YYYY-MM.jsonl`.

    A post goes to the file of its `posted_at` month (UTC), so a reader that wants the posts
    since a moment opens only the files of that month and after, and the log never has to be
    rotated: a new month starts a new file, and no record is ever moved. The files of old
    months are read by `history` only; an operator may archive them.

    The single `history.jsonl` of older versions is read as well, and a writer splits it into
    the monthly files at open (`split_legacy`); a kill at any moment of that loses nothing and
    doubles nothing: each monthly file is replaced whole with what it held plus the old file's
    records it lacked, and the old file is removed last. Until then a reader reads both and
    counts a record found in both once.
    """

    def __init__(self, state_dir: Path, *, read_only: bool, check: Callable[[], None] = lambda: None) -> None:
        self.state_dir = state_dir
        self.read_only = read_only
        self._check = check
        self._logs: dict[str, PostLog] = {}

    def _log(self, month: str) -> PostLog:
        if month not in self._logs:
            path = self.state_dir / HISTORY_FILE.format(month=month)
            self._logs[month] = PostLog(path, read_only=self.read_only, check=self._check)
        return self._logs[month]

    def months(self) -> list[str]:
        """The months that have a file, oldest first."""
        try:
            names = os.listdir(self.state_dir)
        except FileNotFoundError:
            return []
        return sorted(m.group(1) for name in names if (m := HISTORY_MONTH.fullmatch(name)))

    def append(self, posts: list[Post]) -> None:
        """Add `posts` durably to the file of their month, as `PostLog.append` does. Posts made
        together share their time, so one call writes one file, whole or not at all."""
        by_month: dict[str, list[Post]] = {}
        for post in posts:
            by_month.setdefault(_month(post.posted_at), []).append(post)
        for month, chosen in by_month.items():
            self._log(month).append(chosen)

    def read(self, since: datetime | None = None) -> list[Post]:
        """The records posted at or after `since` (all without it), in file order, month after
        month; only the files of `since`'s month and later are opened."""
        first = _month(since) if since is not None else ""
        posts: list[Post] = []
        legacy = self.state_dir / LEGACY_HISTORY
        if legacy.exists():
            posts = PostLog(legacy, read_only=True).read()
        known = {_post_key(p) for p in posts}
        for month in self.months():
            if month >= first:
                posts.extend(p for p in self._log(month).read() if not known or _post_key(p) not in known)
        return [p for p in posts if since is None or p.posted_at >= since]

    def month_path(self, month: str) -> Path:
        """The file of one month's records ("YYYY-MM"), whether or not it exists."""
        return self.state_dir / HISTORY_FILE.format(month=month)

    def read_month(self, month: str, keep: Callable[[bytes], bool] | None = None) -> list[Post]:
        """The records of one month's file ("YYYY-MM"), in file order, those of the lines
        `keep` is true of if given (`PostLog.read`); [] for a month without one. Opens nothing
        else, keeps nothing, changes nothing: safe beside the writer and from another thread
        (an append under way is a torn last line, skipped silently). The old single file is
        not read: a writer has split it at open."""
        return PostLog(self.month_path(month), read_only=True).read(keep)

    def split_legacy(self) -> None:
        """Move the records of the old single `history.jsonl` into the monthly files, then
        remove it (see the class). Raise `StateWriteError` when a file cannot be written: the
        old file is then still there, and read."""
        legacy = self.state_dir / LEGACY_HISTORY
        if self.read_only or not legacy.exists():
            return
        self._check()
        by_month: dict[str, list[Post]] = {}
        records = PostLog(legacy, read_only=True).read()
        for post in records:
            by_month.setdefault(_month(post.posted_at), []).append(post)
        lines = sum(1 for line in legacy.read_bytes().split(b"\n") if line.strip())
        for month, posts in sorted(by_month.items()):
            log_file = self._log(month)
            held = log_file.read()
            known = {_post_key(p) for p in held}
            missing = [p for p in posts if _post_key(p) not in known]
            if not missing:
                continue
            # The old file's records first: they are the older ones.
            data = "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in [*missing, *held])
            self._check()
            write_atomically(log_file.path, data.encode())
        self._check()
        # Lines that could not be read are not records, but a person may still read them.
        aside = legacy.with_name(f"{LEGACY_HISTORY}.unreadable-lines") if lines > len(records) else None
        try:
            if aside is not None:
                os.replace(legacy, aside)
            else:
                os.unlink(legacy)
        except OSError as exc:
            raise StateWriteError(legacy, exc) from None
        _fsync_dir(self.state_dir)
        log.info("history split by month", months=len(by_month), records=len(records),
                 kept_aside=str(aside) if aside else None)


def _parse_post(line: bytes, notes: list[str] | None) -> Post | None:
    try:
        return Post.from_dict(json.loads(line), notes)
    except (ValueError, KeyError, TypeError):
        return None


def _schema_version(meta: object, path: Path) -> int | None:
    """The schema version in the outbox's `meta` table, None when not recorded yet. Raise
    `StateError` when it is not a whole number (a hand edit wrote "2", say)."""
    if not isinstance(meta, Mapping) or "schema" not in meta:
        return None
    version = meta["schema"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise StateError(
            f"{path}: the schema version is {json.dumps(version)}, not a whole number",
            hint=f'write it as a number, as channel-bridge does ("schema": {SCHEMA_VERSION}), or restore the file '
                 "from a backup",
        )
    return version


def _warn_repaired(path: Path, notes: list[str]) -> None:
    if notes:
        log.warning("state written by hand or by another version: read with the repairs listed",
                    file=str(path), count=len(notes), details=notes[:5])


class Store:
    """The bridge's state directory. Open with `Store.open(...)`; close with `close()`."""

    def __init__(self, state_dir: Path, *, read_only: bool) -> None:
        self.state_dir = state_dir
        self.read_only = read_only
        self._lock_fd: int | None = None
        self._lock_lost: StateLockLostError | None = None
        self._states: dict[str, FeedState] = {}  # every feed's poll state (polls.json)
        # Poll states change in memory only (see `save_feed`): counted, so that a flush knows
        # what it wrote, and a change made while it was being written stays to be written.
        self._states_changes = 0
        self._states_written = 0
        # (channel, key, feed) -> last seen: every feed file's keys, packed (see bridge.seen)
        self._seen = SeenIndex()
        self._feed_files: set[str] = set()  # feeds whose file is loaded or written
        self._outbox: JournaledStorage | None = None
        self._history = History(state_dir, read_only=True)
        self._history_loaded = False  # see `_load_history`
        self._deliveries: dict[str, Delivery] = {}
        # (channel, state) -> its deliveries in sending order, each after its key (see `deliveries`)
        self._queues: dict[tuple[str, str], list[_Queued]] = {}
        self._last_post: dict[str, datetime] = {}
        self._posted_ids: set[str] = set()
        # For corrections: the latest post of each posted item (its own, or its latest
        # correction's), by the id of the item's first post; and how many corrections it had.
        self._latest: dict[str, Post] = {}
        self._posts_by_id: dict[str, Post] = {}
        self._recent_by_feed: dict[str, list[Post]] = {}  # first posts of each feed, oldest first
        self._corrected: dict[str, int] = {}
        self._posted_at: dict[str, list[tuple[datetime, str | None]]] = {}
        # The latest posts of the bridge's own ops alerts, for *Stato* (a few a day at most).
        self._ops_posts: deque[Post] = deque(maxlen=OPS_POSTS_KEPT)
        self._paused: dict[str, str] = {}
        self._audit = AuditLog(state_dir)
        self._last_actions: dict[str, AuditEntry] | None = None  # alert id -> its last action, once read
        # NOT_APPLIED entries not yet written (the audit log failed too): go before the next entries.
        self._unnoted: list[AuditEntry] = []
        # Changes asked for with `acommit`, waiting for their turn, and the task taking them.
        self._turns: deque[tuple[Plan[Any], asyncio.Future[Any]]] = deque()
        self._taking: asyncio.Task[None] | None = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._moving: asyncio.Future[None] | None = None  # see `amove_deadlines`
        self._noted: dict[str, Any] = {}  # what `note_problem` last recorded, as the lock file holds it

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path, *, read_only: bool = False) -> Store:
        """Open the state in `state_dir`, creating it (mode 0700) if needed.

        A writer takes the lock first: raise `StateLockedError` if another process holds it.
        A reader (`read_only=True`, for `status` and `history`) takes no lock and never writes;
        it sees the last committed state because every file is replaced atomically.
        Raise `StateError` if a file is unreadable or written by a newer version.
        """
        store = cls(state_dir, read_only=read_only)
        if not read_only:
            try:
                state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                (state_dir / "feeds").mkdir(mode=0o700, exist_ok=True)
            except OSError as exc:
                hint = "check bridge.state_dir in config.toml and the directory's permissions"
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                    hint = _write_hint(state_dir.parent, exc.errno)
                raise StateError(f"cannot create state directory {state_dir}: {exc.strerror or exc}",
                                 hint=hint) from None
            store._take_lock()
        try:
            store._load()
        except BaseException:
            store._release()  # nothing to save: it was being read
            raise
        return store

    def _take_lock(self) -> None:
        path = self.state_dir / "lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateWriteError(path, exc, hint=_write_hint(self.state_dir, exc.errno)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").partition("\n")[0].strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateLockedError(
                    f"another channel-bridge (pid {holder}) is already using {self.state_dir}",
                    hint="stop it first (systemctl stop channel-bridge), or give this one its own state_dir",
                ) from None
            raise StateWriteError(path, exc) from None
        # The lock dies with the process (even on SIGKILL): nothing stale can block a restart.
        self._lock_fd = fd
        try:
            self._write_lock_record(None, None, "")
        except OSError as exc:
            self._release()
            raise StateWriteError(path, exc) from None

    def _write_lock_record(self, problem: str | None, since: datetime | None, hint: str) -> None:
        """The lock file's content: the pid, then why the state cannot be written, if it cannot.

        Rewritten in place and only shrunk after (never truncated to nothing first): the block
        it occupies stays allocated, so this write needs no free space and works on a full
        disk, where `status` must learn why nothing else could be written.
        """
        assert self._lock_fd is not None
        record = f"{os.getpid()}\n"
        if problem:
            record += json.dumps({"state_problem": problem[:1000], "since": _iso(since), "hint": hint[:1000]},
                                 ensure_ascii=False) + "\n"
        data = record.encode()
        os.pwrite(self._lock_fd, data, 0)
        os.ftruncate(self._lock_fd, len(data))

    def note_problem(self, problem: str | None, since: datetime | None = None, hint: str = "") -> None:
        """Record (or clear, with None) why the state cannot be written, for `status` to read
        (see `state_condition`). Best effort: a failure here changes nothing else."""
        if self._lock_fd is None or self._lock_lost is not None:
            return
        self._noted = {"state_problem": problem, "since": _iso(since), "hint": hint} if problem else {}
        try:
            self._write_lock_record(problem, since, hint)
        except OSError as exc:
            log.debug("could not record the state problem in the lock file", error=str(exc))

    def condition(self) -> StateCondition:
        """Whether the state directory can be written, as `status` tells it: for the writer
        (the daemon, and its console) from what it recorded itself, for a reader from the
        running daemon's lock file (see `state_condition`)."""
        if self._lock_fd is None:
            return state_condition(self.state_dir)
        return state_condition(self.state_dir, recorded=self._noted)

    def polls_written(self) -> datetime | None:
        """When the feeds' poll states were last written (polls.json's time), None if never."""
        try:
            return datetime.fromtimestamp((self.state_dir / "polls.json").stat().st_mtime, UTC)
        except OSError:
            return None

    def check_lock(self) -> None:
        """Raise `StateLockLostError` when the lock path no longer names the file whose lock
        this process holds (its device and inode differ, or it is gone): the state directory
        was removed, moved or replaced, and a second instance could take it and post the
        same alerts. Once lost, every later write raises too. A reader has nothing to check.
        """
        if self._lock_fd is None:
            return
        if self._lock_lost is not None:
            raise self._lock_lost
        path = self.state_dir / "lock"
        held = os.fstat(self._lock_fd)
        try:
            named = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            why = "its lock file is gone"
        except OSError:
            return  # cannot tell (permissions, I/O): the write that follows says what is wrong
        else:
            if (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                return
            why = "its lock file was replaced by another one"
        self._lock_lost = StateLockLostError(
            f"the state directory {self.state_dir} was removed or replaced while running ({why}): "
            "stopping, so that no second instance posts the same alerts",
            hint="restore the directory from a backup, or start channel-bridge again "
                 "(systemctl restart channel-bridge): it starts afresh and posts nothing old",
        )
        raise self._lock_lost

    @property
    def lock_lost(self) -> bool:
        """True once `check_lock` found the state directory removed or replaced."""
        return self._lock_lost is not None

    def _load(self) -> None:
        version = self._load_outbox()
        self._history = History(self.state_dir, read_only=self.read_only, check=self.check_lock)
        if not self.read_only:
            # A reader (`status`) needs none of the history; `history` reads it itself (`posts`).
            self._history.split_legacy()
            self._load_history()
        if self._outbox is not None and not self.read_only:
            if version != SCHEMA_VERSION:
                # A new state directory, or schema 1: start the snapshot of the new layout.
                self._outbox.compact(self._outbox_tables())
            # A crash between "added to history" and "removed from outbox": finish the move.
            stale = [d for d in self._deliveries if d in self._posted_ids]
            if stale:
                self._write_outbox({"deliveries": dict.fromkeys(stale)})
                for delivery_id in stale:
                    self._unqueue(delivery_id)
            # A crash between an action's audit entry and its outbox write: the trail says so.
            self._reconcile_audit()
        self._load_states()
        feeds_dir = self.state_dir / "feeds"
        if feeds_dir.is_dir():
            for path in sorted(feeds_dir.glob("*.json")):
                self._load_seen(path.stem, path)
            self._seen.sort()
        for feed_id, state in list(self._states.items()):
            # Only a feed file vouches for a first poll: without its seen keys, a feed is new.
            if feed_id not in self._feed_files and state.primed:
                self._states[feed_id] = replace(state, primed=())

    def _load_history(self) -> None:
        """Remember which deliveries were posted, and when, from the history's recent months:
        those of the last `HISTORY_HORIZON`, and back to a month before the oldest delivery
        still in the outbox (one posted just before a crash is found there, see `_load`)."""
        if self._history_loaded:
            return
        self._history_loaded = True
        since = _now() - HISTORY_HORIZON
        oldest = min((d.created for d in self._deliveries.values()), default=None)
        if oldest is not None:
            since = min(since, oldest - timedelta(days=31))
        for post in self._history.read(since):
            self._posted_ids.add(post.delivery_id)
            self._note_latest(post)
            self._posted_at.setdefault(post.channel, []).append((post.posted_at, post.remote_id))
            if post.feed_id == OPS_FEED:
                self._ops_posts.append(post)

    def _load_outbox(self) -> int | None:
        """Read the outbox (snapshot and journal) into memory; return its schema version, None
        for a new one. A file that cannot be read is moved aside (a reader raises instead)."""
        path = self.state_dir / "outbox.json"
        storage = JournaledStorage(str(path), keys=OUTBOX_KEYS, read_only=self.read_only, check=self.check_lock)
        if self.read_only and not path.exists() and not storage.journals():
            return None
        for _ in range(len(storage.journals()) + 2):  # each try moves one file aside
            db = _read_through(storage)
            try:
                meta = db.table("meta").get(doc_id=1)
                break
            except UnreadableFile as exc:
                if self.read_only:
                    raise StateError(
                        f"state file {exc.path} is unreadable ({exc.detail})",
                        hint="the daemon moves it aside at its next start; see the log",
                    ) from None
                self._quarantine(exc.path, exc)
        else:
            raise StateError(f"the outbox in {self.state_dir} cannot be read")
        version = _schema_version(meta, path)
        if version is not None and version > SCHEMA_VERSION:
            raise StateError(
                f"{self.state_dir} was written by a newer channel-bridge (schema {version}, "
                f"this version reads up to {SCHEMA_VERSION})",
                hint="upgrade channel-bridge, or restore the state backup of the older version",
            )
        notes: list[str] = []
        for doc in db.table("deliveries").all():
            try:
                delivery = Delivery.from_dict(doc, notes)
            except UnreadableRecord as exc:
                raise StateError(str(exc), hint=exc.hint) from None
            self._deliveries[delivery.id] = delivery
        for delivery in self._deliveries.values():
            self._queues.setdefault((delivery.channel, delivery.state), []).append((*sending_key(delivery), delivery))
        for queue in self._queues.values():
            queue.sort()  # ids differ, so a comparison never reaches the deliveries themselves
        for doc in db.table("channels").all():
            if doc.get("last_post"):
                self._last_post[doc["channel"]] = _time(doc["last_post"], "last_post", notes)
            if doc.get("paused"):
                self._paused[doc["channel"]] = doc["paused"]
        _warn_repaired(path, notes)
        self._outbox = storage
        return version

    def _load_states(self) -> None:
        path = self.state_dir / "polls.json"
        try:
            data = AtomicJSONStorage(str(path), read_only=True).read() or {}
            for doc in data.get("polls", {}).values():
                state = FeedState.from_dict(doc)
                self._states[state.feed_id] = state
        except (StateError, KeyError, TypeError, ValueError, AttributeError) as exc:
            if self.read_only:
                raise StateError(f"state file {path} is unreadable ({exc})") from None
            # Only poll health and validators are lost: the next polls fetch in full, and the
            # seen keys (in feeds/) still keep every old item from being posted again.
            self._states.clear()
            self._quarantine(path, exc)

    def _load_seen(self, feed_id: str, path: Path) -> None:
        rows = self._read_seen(feed_id, path)
        if rows is None:
            if self.read_only:
                return
            # Its seen keys are gone: the feed's next poll records what it lists and posts none
            # of it, as a first poll without backfill would. Old items are never re-posted.
            self._set_state(FeedState(feed_id, rebuilt=True))
            self.commit(self._plan_write_states())
            return
        seen, primed = rows
        # `primed` lives with the keys it vouches for: a feed whose first poll is recorded must
        # never be first-polled again (that would swallow the items that came after).
        self._states[feed_id] = replace(self._states.get(feed_id) or FeedState(feed_id), primed=primed)
        self._feed_files.add(feed_id)
        self._seen.load(feed_id, ((c, k, t) for c, marks in seen.items() for k, t in marks.items()))

    def _read_seen(self, feed_id: str, path: Path) -> tuple[dict[str, dict[str, int]], tuple[str, ...]] | None:
        """A feed file's keys (channel -> key -> last seen) and `primed`; None when unreadable
        (a writer moves the file aside first)."""
        seen: dict[str, dict[str, int]] = {}
        try:
            data = AtomicJSONStorage(str(path), read_only=True).read() or {}
            for row in data.get("seen", {}).values():
                seen.setdefault(row["c"], {})[row["k"]] = int(row["t"])
            primed = tuple(data.get("feed", {}).get("1", {}).get("primed", ()))
        except (StateError, KeyError, TypeError, ValueError, AttributeError) as exc:
            if not self.read_only:
                self._quarantine(path, exc)
            return None
        return seen, primed

    def _read_feed_file(self, feed_id: str) -> tuple[dict[str, dict[str, int]], tuple[str, ...]] | None:
        """The feed file's keys and `primed`, as `_read_seen`; None when it is missing too."""
        path = self._feed_path(feed_id)
        return self._read_seen(feed_id, path) if path.exists() else None

    def _write_seen(self, feed_id: str, seen: Mapping[str, Mapping[str, int]], primed: tuple[str, ...]) -> None:
        self.check_lock()
        rows = (
            {"c": channel, "k": key, "t": last}
            for channel, marks in sorted(seen.items())
            for key, last in sorted(marks.items())
        )
        # TinyDB's layout (tables of numbered documents), so any TinyDB can read the file.
        document = {"feed": {"1": {"feed_id": feed_id, "primed": list(primed)}},
                    "seen": {str(n): row for n, row in enumerate(rows, 1)}}
        path = self._feed_path(feed_id)
        write_atomically(path, json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())

    def _feed_path(self, feed_id: str) -> Path:
        return self.state_dir / "feeds" / f"{feed_id}.json"

    def _set_state(self, state: FeedState) -> None:
        """Keep a feed's poll state in memory; `flush` writes it."""
        self._states[state.feed_id] = state
        self._states_changes += 1

    def _plan_write_states(self) -> Plan[None]:
        """Write polls.json with the poll states as of the plan's turn."""
        states = list(self._states.values())  # immutable: the writer encodes them
        changes = self._states_changes
        yield partial(self._write_states, states)
        self._states_written = changes

    def _write_states(self, states: list[FeedState]) -> None:
        self.check_lock()
        # TinyDB's layout, encoded one document at a time: at 8,000 feeds one call encoding it
        # whole would hold the interpreter (and so the event loop) for tens of milliseconds.
        documents = ",".join(f'"{n}":{_encode(state.to_dict())}' for n, state in enumerate(states, 1))
        write_atomically(self.state_dir / "polls.json", f'{{"polls":{{{documents}}}}}'.encode())

    def flush(self, *, force: bool = False) -> None:
        """`commit` of `plan_flush`."""
        self.commit(self.plan_flush(force=force))

    def plan_flush(self, *, force: bool = False) -> Plan[None]:
        """Write the feeds' poll states if they changed since the last write (see `save_feed`),
        or anyway with `force` (a test that the state can be written again), and fold the keys
        seen since into the packed index. Raise `StateWriteError` when they cannot be written."""
        if (self._states_changes != self._states_written or force) and not self.read_only:
            yield from self._plan_write_states()
        self._seen.merge()

    def _quarantine(self, path: Path, exc: Exception) -> None:
        """Move an unreadable state file aside, keeping it for inspection, and say so loudly."""
        aside = path.with_name(f"{path.name}.corrupt-{_now():%Y%m%dT%H%M%S}")
        self.check_lock()
        try:
            os.replace(path, aside)
        except OSError as error:
            raise StateWriteError(path, error) from None
        _fsync_dir(path.parent)
        log.error("state file unreadable: moved aside, starting it afresh", file=str(path), moved_to=str(aside),
                  error=str(exc))

    def close(self) -> None:
        """Write what is held in memory only, fold the outbox's journal into its snapshot,
        then release files and the lock (always).

        Raise `StateWriteError` when the poll states cannot be written (a full or read-only disk
        at stop): only they are lost, and the next start fetches every feed in full. Once the
        lock is lost nothing is written: the directory may be another instance's by now.
        """
        try:
            if not self.read_only and self._lock_lost is None:
                try:
                    self.flush()
                except StateWriteError as exc:
                    raise StateWriteError(exc.path, exc, hint=(
                        f"the feeds' poll states could not be saved at stop; nothing else is lost (the "
                        f"next start fetches every feed in full): {_write_hint(self.state_dir, exc.errno)}"
                    )) from None
        finally:
            self._release()

    def _release(self) -> None:
        self._forget_stale_turns()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        self._seen.clear()
        self._feed_files.clear()
        self._states.clear()
        if self._outbox is not None:
            self._close_outbox(self._outbox)
        self._outbox = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _close_outbox(self, outbox: JournaledStorage) -> None:
        outbox.wait()
        if not self.read_only and outbox.journal_bytes:
            # A stopped bridge leaves one TinyDB file; if it cannot be written, the journal
            # still holds every change and the next start reads it.
            try:
                outbox.compact(self._outbox_tables())
            except OSError as exc:
                log.warning("outbox journal not folded into its snapshot at stop; nothing is lost",
                            error=str(exc))
        outbox.close()

    # -- making changes: here and now, or in turn with the writes off the event loop --------

    def commit(self, plan: Plan[T]) -> T:
        """Make the change `plan` stands for here and now, on this thread, and return its
        result: decided, written, and in memory before this returns.

        Raise what a write raised (`StateWriteError`, `StateLockLostError`), with memory as
        the disk is. Raise RuntimeError, changing nothing, while changes asked for with
        `acommit` are being made: both would write the same files at once.
        """
        if self._taking is not None and not self._taking.done():
            plan.close()
            raise RuntimeError("a state change was made at once while others are being made in turn (acommit)")
        self._forget_stale_turns()
        try:
            write = next(plan)
            while True:
                write = plan.send(write())
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            plan.close()

    def acommit(self, plan: Plan[T]) -> asyncio.Future[T]:
        """Ask for the change `plan` stands for in turn, after every change asked for before,
        with its writes done by the store's writer thread (see the module); from a coroutine.

        The future gives the plan's result once its change is on disk and in memory, or the
        exception a write raised (memory then as the disk is). Cancelled before its turn, the
        change is not made; under way, it is made, whoever waits for it.
        """
        loop = asyncio.get_running_loop()
        if self._taking is None or self._taking.done():
            self._forget_stale_turns()
        future: asyncio.Future[T] = loop.create_future()
        self._turns.append((plan, future))
        if self._taking is None or self._taking.done():
            self._taking = loop.create_task(self._take_turns(), name="state changes")
        return future

    @property
    def changes_waiting(self) -> int:
        """How many changes asked for with `acommit` wait for their turn (not begun yet)."""
        return len(self._turns)

    async def settled(self) -> None:
        """Return once every change asked for with `acommit` so far is made (or failed)."""
        if self._taking is not None and not self._taking.done():
            await asyncio.wait([self._taking])

    async def _take_turns(self) -> None:
        plan: Plan[Any] | None = None
        future: asyncio.Future[Any] | None = None
        try:
            while self._turns:
                plan, future = self._turns.popleft()
                if future.cancelled():
                    plan.close()  # its caller gave up before its turn: it is not made
                    continue
                try:
                    result = await self._run_turn(plan)
                except Exception as exc:
                    # Handed to the caller, who meets it as if it had made the change itself
                    # (a full disk, a lost lock, or a bug, logged at the daemon's boundary).
                    if not future.cancelled():
                        future.set_exception(exc)
                else:
                    if not future.cancelled():
                        future.set_result(result)
                plan = future = None
        except asyncio.CancelledError:
            # The loop is ending: the change under way was finished by `_run_turn`; those
            # that have not begun are not made.
            if future is not None:
                future.cancel()
            for waiting, asked in self._turns:
                waiting.close()
                asked.cancel()
            self._turns.clear()
            raise

    async def _run_turn(self, plan: Plan[T]) -> T:
        """Decide `plan` here, on the loop, run each of its writes in the writer thread, and
        change memory here after each."""
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-writer")
        try:
            write = next(plan)
            while True:
                job = self._writer.submit(write)
                try:
                    done = await asyncio.wrap_future(job)
                except asyncio.CancelledError:
                    self._finish_here(plan, job)
                    raise
                write = plan.send(done)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            plan.close()

    @staticmethod
    def _finish_here(plan: Plan[Any], job: concurrent.futures.Future[Any]) -> None:
        """The loop is ending while `job`, a write of `plan`, is under way: wait for it (the
        loop's last moments are spent here) and make the rest of the change on this thread, so
        that memory stays as the disk is, whatever happens to the process next."""
        try:
            done = job.result()
            while True:
                done = plan.send(done)()
        except (StopIteration, concurrent.futures.CancelledError, OSError, StateError):
            pass  # made, never begun, or a write failed: memory is as the disk either way

    def _forget_stale_turns(self) -> None:
        """Drop the changes asked for on an event loop that ended before their turn came (its
        task was cancelled before it began): they were never made."""
        if self._turns and (self._taking is None or self._taking.done()):
            log.debug("state changes asked for on an event loop that ended before them: not made",
                      count=len(self._turns))
            for plan, _ in self._turns:
                plan.close()
            self._turns.clear()

    # -- feeds and seen keys --------------------------------------------------------------

    def feed_state(self, feed_id: str) -> FeedState:
        """The feed's remembered state; a fresh one for a feed never polled."""
        return self._states.get(feed_id) or FeedState(feed_id)

    def feed_ids(self) -> list[str]:
        """The feeds the state remembers (a poll state or seen keys), sorted."""
        return sorted(set(self._states) | self._feed_files)

    def seen_by(self, channel: str, key: str) -> Mapping[str, int]:
        """For `channel`, the feeds that showed `key` and when they last did (epoch seconds)."""
        return self._seen.seen_by(channel, key)

    def save_feed(
        self,
        state: FeedState,
        seen: Mapping[str, set[str]] | None = None,
        *,
        now: datetime | None = None,
        forget_before: datetime | None = None,
    ) -> None:
        """`commit` of `plan_save_feed`."""
        self.commit(self.plan_save_feed(state, seen, now=now, forget_before=forget_before))

    def plan_save_feed(
        self,
        state: FeedState,
        seen: Mapping[str, set[str]] | None = None,
        *,
        now: datetime | None = None,
        forget_before: datetime | None = None,
    ) -> Plan[None]:
        """Record a poll of one feed.

        `seen` maps channel -> keys shown by the feed in this poll; new ones are recorded and
        old ones refreshed at `now` (at most daily). Keys of this feed last seen before
        `forget_before` are dropped, so the store stays bounded by age, never by count. When
        its keys changed, the feed's file is written at once (one atomic write, whatever the
        number of feeds). The poll state itself (validators, health) is only kept in memory
        until the next `flush`: losing it to a crash costs a full fetch, never a lost or a
        repeated post, so a 304 costs no disk write at all.

        Raise OSError when the feed's file cannot be written: then nothing is recorded, in
        memory either (not even the poll state, whose `primed` goes with the keys).
        """
        feed_id = state.feed_id
        previous = self._states.get(feed_id)
        stamp = int((now or _now()).timestamp())
        due = {
            channel: [k for k in keys if (last := self._seen.last_seen(channel, k, feed_id)) is None
                      or stamp - last >= SEEN_REFRESH]
            for channel, keys in (seen or {}).items()
        }
        cutoff = None if forget_before is None else int(forget_before.timestamp())
        oldest = self._seen.oldest(feed_id)
        prune = cutoff is not None and oldest is not None and oldest < cutoff
        if not (any(due.values()) or prune or previous is None or previous.primed != state.primed):
            self._set_state(state)
            return
        # The index keeps digests: the full keys are read back from the file, changed, and
        # the file written back whole.
        read = yield partial(self._read_feed_file, feed_id)
        marks = read[0] if read is not None else self._marks_lost(feed_id, seen or {}, stamp)
        for channel, keys in due.items():
            for key in keys:
                marks.setdefault(channel, {})[key] = stamp
        forgotten = []
        if cutoff is not None:
            for channel, channel_marks in marks.items():
                for key in [k for k, last in channel_marks.items() if last < cutoff]:
                    del channel_marks[key]
                    forgotten.append((channel, key))
        # The file first: the index and the poll state change only once it is written.
        yield partial(self._write_seen, feed_id, marks, state.primed)
        self._feed_files.add(feed_id)
        self._set_state(state)
        for channel, keys in due.items():
            for key in keys:
                self._seen.mark(channel, key, feed_id, stamp)
        for channel, key in forgotten:
            self._seen.forget(channel, key, feed_id)
        self._seen.set_oldest(feed_id, min((t for m in marks.values() for t in m.values()), default=stamp))

    def _marks_lost(self, feed_id: str, shown: Mapping[str, set[str]], stamp: int) -> dict[str, dict[str, int]]:
        """The keys to write for a feed whose file could not be read back: none for a feed
        never recorded; else what the feed lists now."""
        if feed_id not in self._feed_files:
            return {}
        # The file vanished or was spoiled (and moved aside) since it was written: keep at least
        # what the feed lists now, so that none of it can be posted again after a restart.
        log.error("state file lost while running: rewriting it from the feed's current items",
                  file=str(self._feed_path(feed_id)), feed=feed_id)
        return {channel: {k: self._seen.last_seen(channel, k, feed_id) or stamp for k in keys}
                for channel, keys in shown.items()}

    def seen_count(self, feed_id: str) -> int:
        return self._seen.count(feed_id)

    def knows_feed(self, feed_id: str) -> bool:
        """True when the state holds seen keys or a poll state of `feed_id`."""
        return feed_id in self._states or feed_id in self._feed_files

    def forget_feed(self, feed_id: str) -> int:
        """`commit` of `plan_forget_feed`."""
        return self.commit(self.plan_forget_feed(feed_id))

    def plan_forget_feed(self, feed_id: str) -> Plan[int]:
        """Forget what the state knows of one feed, its seen keys (its file) and its poll
        state, so that its next poll is a first poll again: it records what the feed lists and
        posts only its `backfill`. Its queued deliveries and the history stay, so an alert
        already posted is never posted again (its delivery id is in the history). Return the
        number of seen keys forgotten.

        The file goes first: a crash before polls.json is written leaves a poll state without
        its file, which `open` already reads as a feed never polled. Raise `StateWriteError`
        when a write fails (what was not written is still known).
        """
        marks: dict[str, dict[str, int]] = {}
        # Only a file found in feeds/ is removed: a name from elsewhere (a hand-edited
        # polls.json) never becomes a path.
        if feed_id in self._feed_files:
            read = yield partial(self._read_feed_file, feed_id)
            marks = read[0] if read is not None else {}
            yield partial(self._remove_feed_file, feed_id)
            self._feed_files.discard(feed_id)
        for channel, channel_marks in marks.items():
            for key in channel_marks:
                self._seen.forget(channel, key, feed_id)
        if feed_id in self._states:
            yield partial(self._write_states, [s for s in self._states.values() if s.feed_id != feed_id])
            del self._states[feed_id]
        return sum(len(channel_marks) for channel_marks in marks.values())

    def _remove_feed_file(self, feed_id: str) -> None:
        self.check_lock()
        path = self._feed_path(feed_id)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StateWriteError(path, exc, hint=_write_hint(self.state_dir, exc.errno)) from None
        _fsync_dir(path.parent)

    # -- outbox ---------------------------------------------------------------------------

    def deliveries(self, channel: str | None = None, *, state: str | None = "pending") -> list[Delivery]:
        """Deliveries in sending order: urgent first, then oldest first.

        Each channel's queue is kept in order as deliveries come and go, so a look at a long
        queue costs a copy of it, never a sort.
        """
        queues = [queue for (name, kind), queue in self._queues.items()
                  if (channel is None or name == channel) and (state is None or kind == state)]
        if len(queues) == 1:
            return [entry[-1] for entry in queues[0]]
        return [entry[-1] for entry in sorted(itertools.chain.from_iterable(queues))]

    def _queue(self, delivery: Delivery) -> None:
        """Put `delivery` in memory, new or changed, in its place in the sending order."""
        old = self._deliveries.get(delivery.id)
        entry = (*sending_key(delivery), delivery)
        if old is not None:
            if (old.channel, old.state, sending_key(old)) == (delivery.channel, delivery.state, entry[:-1]):
                queue = self._queues[(old.channel, old.state)]
                queue[bisect.bisect_left(queue, entry[:-1])] = entry
                self._deliveries[delivery.id] = delivery
                return
            self._unqueue(delivery.id)
        self._deliveries[delivery.id] = delivery
        bisect.insort(self._queues.setdefault((delivery.channel, delivery.state), []), entry)

    def _unqueue(self, delivery_id: str) -> None:
        """Take a delivery out of memory and out of its queue."""
        delivery = self._deliveries.pop(delivery_id, None)
        if delivery is None:
            return
        queue = self._queues[(delivery.channel, delivery.state)]
        del queue[bisect.bisect_left(queue, sending_key(delivery))]
        if not queue:
            del self._queues[(delivery.channel, delivery.state)]

    def has_delivery(self, delivery_id: str) -> bool:
        """Whether `delivery_id` is in the outbox, or was posted within `HISTORY_HORIZON`."""
        return delivery_id in self._deliveries or self._posted(delivery_id)

    def _note_latest(self, post: Post) -> None:
        self._posts_by_id[post.delivery_id] = post
        if post.corrects is None:
            self._recent_by_feed.setdefault(post.feed_id, []).append(post)
        original = post.corrects or post.delivery_id
        if post.corrects is not None:
            self._corrected[original] = self._corrected.get(original, 0) + 1
        self._latest[original] = post

    def latest_post(self, delivery_id: str) -> Post | None:
        """The latest post of the item first posted as `delivery_id`: that post, or its latest
        correction (within `HISTORY_HORIZON`); None when it was not posted."""
        self._load_history()
        return self._latest.get(delivery_id)

    def recent_posts(self, feed_id: str, since: datetime) -> list[Post]:
        """The first posts of `feed_id`'s items (not their corrections) made at or after
        `since`, oldest first; older ones are forgotten here (`since` only moves forward)."""
        self._load_history()
        posts = self._recent_by_feed.get(feed_id, [])
        kept = [post for post in posts if post.posted_at >= since]
        if len(kept) != len(posts):
            self._recent_by_feed[feed_id] = kept
        return kept

    def withdrawn(self, delivery_id: str) -> datetime | None:
        """When the post `delivery_id` was found withdrawn at its source (`bridge.withdrawn`),
        or None."""
        from bridge.withdrawn import WITHDRAWN

        entry = self._actions().get(delivery_id)
        return entry.at if entry is not None and entry.action == WITHDRAWN else None

    def post(self, delivery_id: str) -> Post | None:
        """The post of that delivery id (within `HISTORY_HORIZON`), or None."""
        self._load_history()
        return self._posts_by_id.get(delivery_id)

    def corrections_of(self, delivery_id: str) -> int:
        """How many corrections the post `delivery_id` had: posted, or in the outbox."""
        self._load_history()
        queued = sum(1 for d in self._deliveries.values() if d.corrects == delivery_id)
        return self._corrected.get(delivery_id, 0) + queued

    def _posted(self, delivery_id: str) -> bool:
        self._load_history()
        return delivery_id in self._posted_ids

    def add_deliveries(self, deliveries: list[Delivery]) -> list[Delivery]:
        """`commit` of `plan_add_deliveries`."""
        return self.commit(self.plan_add_deliveries(deliveries))

    def plan_add_deliveries(self, deliveries: list[Delivery]) -> Plan[list[Delivery]]:
        """Queue new deliveries (one durable write); return those that were not already known
        at the plan's turn.

        Raise OSError, with nothing queued, when they cannot be written.
        """
        added = list({d.id: d for d in deliveries if not self.has_delivery(d.id)}.values())
        if not added:
            return []
        yield partial(self._write_outbox, {"deliveries": {d.id: d.to_dict() for d in added}})
        for delivery in added:
            self._queue(delivery)
        self._compact_if_due()
        return added

    def update_delivery(self, delivery: Delivery) -> None:
        """`commit` of `plan_update_deliveries` for one delivery."""
        self.commit(self.plan_update_deliveries([delivery]))

    def plan_update_deliveries(self, deliveries: list[Delivery]) -> Plan[None]:
        """Record a retry schedule, a send in flight, a hold or a failure for queued deliveries
        (one durable write for them all).

        Raise OSError, with the deliveries unchanged, when it cannot be written.
        """
        if not deliveries:
            return
        yield partial(self._write_outbox, {"deliveries": {d.id: d.to_dict() for d in deliveries}})
        for delivery in deliveries:
            self._queue(delivery)
        self._compact_if_due()

    def plan_start_send(self, delivery: Delivery) -> Plan[bool]:
        """Record `delivery` (read from the queue, now with its send in flight) unless an
        editor changed it since it was read (held, dropped, sent now: see `bridge.approval`);
        return whether it was recorded, and so may be sent."""
        current = self._deliveries.get(delivery.id)
        if current is None or (current.state, current.acted_at) != ("pending", delivery.acted_at):
            return False
        yield from self.plan_update_deliveries([delivery])
        return True

    def record_post(
        self, delivery: Delivery, remote_id: str | None, at: datetime, *, verified: bool | None = None
    ) -> Post:
        """Move a delivery from the outbox to the history: it has been posted (`commit`)."""
        return self.record_posts([delivery], remote_id, at, verified=verified)[0]

    def record_posts(
        self, deliveries: list[Delivery], remote_id: str | None, at: datetime, *, verified: bool | None = None
    ) -> list[Post]:
        """`commit` of `plan_record_posts`."""
        return self.commit(self.plan_record_posts(deliveries, remote_id, at, verified=verified))

    def plan_record_posts(
        self, deliveries: list[Delivery], remote_id: str | None, at: datetime, *, verified: bool | None = None
    ) -> Plan[list[Post]]:
        """Move deliveries posted together (one digest) to the history in one write each file.

        Raise OSError when a write fails. If the history could not be written, nothing
        changed; if only the outbox could not, the posts are recorded (the history is what
        says a delivery was posted: a restart drops them from the outbox too) and the channel's
        last post stays the one on disk.
        """
        posts = [Post(
            delivery_id=delivery.id,
            channel=delivery.channel,
            feed_id=delivery.feed_id,
            title=delivery.alert.title,
            link=delivery.alert.link,
            posted_at=at,
            remote_id=remote_id,
            verified=verified,
            version=_source_version(delivery),
            digest=delivery.digest,
            corrects=delivery.corrects,
            published=delivery.alert.published,
        ) for delivery in deliveries]
        yield partial(self._history.append, posts)
        self._ops_posts.extend(post for post in posts if post.feed_id == OPS_FEED)
        for post in posts:
            self._note_latest(post)
        for delivery in deliveries:
            self._posted_ids.add(delivery.id)
            self._posted_at.setdefault(delivery.channel, []).append((at, remote_id))
            self._unqueue(delivery.id)
        channels = list(dict.fromkeys(delivery.channel for delivery in deliveries))
        yield partial(self._write_outbox, {
            "deliveries": dict.fromkeys(d.id for d in deliveries),
            "channels": {name: _channel_document(name, at, self._paused.get(name)) for name in channels}})
        self._last_post.update(dict.fromkeys(channels, at))
        self._compact_if_due()
        return posts

    # -- editors' actions (see bridge.approval) -------------------------------------------

    def plan_act(self, entries: list[AuditEntry], changed: list[Delivery], dropped: list[str]) -> Plan[None]:
        """Record editors' actions: `entries` in the audit log first, then in one outbox write
        the deliveries `changed` and those `dropped` (by id) taken out. Both are durable when
        the plan ends; raise StateWriteError, the outbox unchanged, when either cannot be
        written. Entries written before a failed outbox write are followed at once by their
        `audit.NOT_APPLIED` entries (NOT_WRITTEN), or, if even that fails, before the next
        entries or at the next open; `last_action` reports an action only once it took effect."""
        index = self._actions()  # read before the append: never from a log with entries not yet applied
        yield partial(self._append_audit, entries)
        if not changed and not dropped:
            index.update({entry.alert_id: entry for entry in entries})
            return
        yield partial(self._write_acted, entries, {"deliveries": {**{d.id: d.to_dict() for d in changed},
                                                                  **dict.fromkeys(dropped)}})
        index.update({entry.alert_id: entry for entry in entries})
        for delivery in changed:
            self._queue(delivery)
        for delivery_id in dropped:
            self._unqueue(delivery_id)
        self._compact_if_due()

    def _append_audit(self, entries: list[AuditEntry]) -> None:
        self.check_lock()
        try:
            # Entries of actions that did not take effect, not yet said so: before anything new.
            self._audit.append([*self._unnoted, *entries])
        except AuditWriteError as exc:
            raise StateWriteError(self._audit.path, exc, hint=_write_hint(self.state_dir, exc.errno)) from None
        self._unnoted = []

    def _write_acted(self, entries: list[AuditEntry], change: Change) -> None:
        """The outbox write of `entries`' actions; when it fails, the trail says at once that
        they did not take effect (if it can: else at the next append), and the failure is raised."""
        try:
            self._write_outbox(change)
        except StateWriteError:
            self._unnoted = [not_applied(entry, _now(), NOT_WRITTEN) for entry in entries]
            try:
                self._append_audit([])
            except StateError as exc:
                log.warning("the audit trail cannot say yet that an action did not take effect; "
                            "it will, at the next write", error=str(exc))
            raise

    def _reconcile_audit(self) -> None:
        """At open: follow every action of the trail that the outbox does not show (a kill
        between its two writes) with its NOT_APPLIED entry (INTERRUPTED). Best effort: one
        that cannot be written now goes before the next entries."""
        index = self._actions()
        unapplied = [entry for alert_id, entry in index.items()
                     if not took_effect(entry, self._deliveries.get(alert_id))]
        if not unapplied:
            return
        now = _now()
        notes = [not_applied(entry, now, INTERRUPTED) for entry in unapplied]
        self._last_actions = last_actions(itertools.chain(self._audit.read(), notes))
        self._unnoted = notes
        try:
            self._append_audit([])
        except StateError as exc:
            log.warning("the audit trail cannot say yet that an action did not take effect; it will, at the next "
                        "write", error=str(exc), count=len(notes))
        else:
            log.warning("actions interrupted before they took effect: the audit trail now says so",
                        alerts=[entry.alert_id for entry in unapplied])

    def _actions(self) -> dict[str, AuditEntry]:
        if self._last_actions is None:
            self._last_actions = last_actions(self._audit.read())
        return self._last_actions

    def last_action(self, alert_id: str) -> AuditEntry | None:
        """The last action recorded on `alert_id`, or None."""
        return self._actions().get(alert_id)

    def audit_entries(self, since: datetime | None = None) -> list[AuditEntry]:
        """The audit trail (at or after `since`), oldest first, as it is on disk."""
        return self._audit.read(since)

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery of that id in the outbox, whatever its state, or None."""
        return self._deliveries.get(delivery_id)

    def posted(self, delivery_id: str) -> bool:
        """Whether `delivery_id` is in the history (within `HISTORY_HORIZON`)."""
        return self._posted(delivery_id)

    def posts_since(self, channel: str, since: datetime) -> int:
        """How many posts `channel` made at or after `since` (a digest, one remote message, counts
        once); `since` within `HISTORY_HORIZON`."""
        self._load_history()
        return len({(at, remote_id) for at, remote_id in self._posted_at.get(channel, []) if at >= since})

    def channel_pause(self, channel: str) -> str | None:
        """Why `channel` is paused (a channel-wide failure), or None when it may post."""
        return self._paused.get(channel)

    def set_channel_pause(self, channel: str, reason: str | None) -> None:
        """`commit` of `plan_channel_pause`."""
        self.commit(self.plan_channel_pause(channel, reason))

    def plan_channel_pause(self, channel: str, reason: str | None) -> Plan[None]:
        """Pause `channel` with a reason, or resume it with None; kept across restarts.

        Raise OSError, with the pause unchanged, when it cannot be written.
        """
        if self._paused.get(channel) == reason:
            return
        yield partial(self._write_outbox, {
            "channels": {channel: _channel_document(channel, self._last_post.get(channel), reason)}})
        if reason is None:
            self._paused.pop(channel, None)
        else:
            self._paused[channel] = reason
        self._compact_if_due()

    def last_post(self, channel: str) -> datetime | None:
        return self._last_post.get(channel)

    def amove_deadlines(self, shift: timedelta) -> asyncio.Future[None]:
        """`acommit` of `plan_move_deadlines`, asked for at once: the deadlines of every change
        asked for before this call are moved, those of changes asked for after it are not.
        Until it is made, `deadlines_settled` waits for it."""
        self._moving = self.acommit(self.plan_move_deadlines(shift))
        return self._moving

    async def deadlines_settled(self) -> bool:
        """Wait for the move of the deadlines asked for last, if it is not made yet, whatever its
        outcome; return True if there was one to wait for (then read the clock again)."""
        moving = self._moving
        if moving is None or moving.done():
            return False
        await asyncio.wait([moving])  # not cancelled with the caller: others wait for it too
        return True

    def plan_move_deadlines(self, shift: timedelta) -> Plan[None]:
        """Move every wall-clock deadline kept by `shift`, the step of the wall clock, so that
        each falls due after the same real wait: a pending delivery's next attempt and the
        moment an alert awaiting approval was queued, from which its `approve_timeout` counts
        (one durable write), and a failing feed's next try and failing-since (poll states, in
        memory until the next flush). Raise OSError, with the deliveries unchanged, when it
        cannot be written."""
        for state in list(self._states.values()):
            if state.retry_at is not None or state.failing_since is not None:
                self._set_state(replace(
                    state,
                    retry_at=state.retry_at + shift if state.retry_at else None,
                    failing_since=state.failing_since + shift if state.failing_since else None,
                ))
        moved = [replace(d, next_attempt=d.next_attempt + shift if d.next_attempt is not None else None,
                         created=d.created + shift if d.state == "awaiting" else d.created)
                 for d in [*self.deliveries(), *self.deliveries(state="awaiting")]
                 if d.next_attempt is not None or d.state == "awaiting"]
        yield from self.plan_update_deliveries(moved)

    def _write_outbox(self, change: Change) -> None:
        """Commit one change of the outbox durably: one journal line, whatever the queue's length."""
        assert self._outbox is not None
        self.check_lock()
        try:
            self._outbox.append(change)
        except OSError as exc:
            if isinstance(exc, StateWriteError):
                raise
            raise StateWriteError(self._outbox.path, exc) from None  # its journal, beside it

    def _compact_if_due(self) -> None:
        """Fold the journal into a new snapshot, in a thread, once it outgrows the snapshot."""
        assert self._outbox is not None
        if self._outbox.compaction_due():
            self._outbox.compact(self._outbox_tables(), background=True)

    def _outbox_tables(self) -> dict[str, Iterable[Document]]:
        """The outbox as of now, for a snapshot: the list of deliveries is copied here (they are
        immutable), their encoding is left to whoever consumes it, possibly a thread."""
        deliveries = list(self._deliveries.values())
        channels = [doc for name in sorted(set(self._last_post) | set(self._paused))
                    if (doc := self._channel_doc(name)) is not None]
        return {"meta": [{"schema": SCHEMA_VERSION}], "channels": channels,
                "deliveries": map(Delivery.to_dict, deliveries)}

    def _channel_doc(self, name: str) -> Document | None:
        return _channel_document(name, self._last_post.get(name), self._paused.get(name))

    # -- history --------------------------------------------------------------------------

    def ops_posts(self, since: datetime) -> list[Post]:
        """The ops alerts posted at or after `since`, newest first (the latest OPS_POSTS_KEPT
        of them): from memory for the writer; a reader, which loads no history, reads them from
        the history files of `since`'s month and later, so that `status` lists what the
        console's *Stato* lists."""
        if self.read_only and not self._history_loaded:
            posts: Iterable[Post] = self._read_ops_posts(since)
        else:
            posts = self._ops_posts
        chosen = sorted((p for p in posts if p.posted_at >= since), key=lambda p: p.posted_at, reverse=True)
        return chosen[:OPS_POSTS_KEPT]

    def _read_ops_posts(self, since: datetime) -> list[Post]:
        if (self.state_dir / LEGACY_HISTORY).exists():
            return [p for p in self._history.read(since) if p.feed_id == OPS_FEED]
        marker = f'"{OPS_FEED}"'.encode()  # a cheap test of the line before it is decoded
        first = _month(since)
        return [p for month in self._history.months() if month >= first
                for p in self._history.read_month(month, lambda line: marker in line) if p.feed_id == OPS_FEED]

    def history_months(self) -> list[str]:
        """The months ("YYYY-MM", UTC) the history has a file for, oldest first."""
        return self._history.months()

    def month_posts(self, month: str, keep: Callable[[bytes], bool] | None = None) -> list[Post]:
        """The posts recorded in `month` ("YYYY-MM", UTC), oldest first, read from its file
        alone (`History.read_month`, `keep` as there): safe to call from a thread other than
        the writer's."""
        return sorted(self._history.read_month(month, keep), key=lambda p: p.posted_at)

    def month_file(self, month: str) -> Path:
        """The history file of `month` ("YYYY-MM", UTC), whether or not it exists."""
        return self._history.month_path(month)

    def posts(self, since: datetime | None = None) -> Iterator[Post]:
        """Every post recorded, oldest first, optionally only those at or after `since` (then
        only the history's files of `since`'s month and later are read)."""
        return iter(sorted(self._history.read(since), key=lambda p: p.posted_at))


def _source_version(delivery: Delivery) -> tuple[str, str]:
    """The title and summary of `delivery`'s item as its feed gave them (before an editor's
    change of the text): what a later correction compares with."""
    alert = delivery.original if delivery.original is not None else delivery.alert
    return (alert.title, alert.summary)


def _channel_document(name: str, last_post: datetime | None, paused: str | None) -> Document | None:
    """A channel's entry in the outbox; None (none kept) when it has neither."""
    if last_post is None and paused is None:
        return None
    return {"channel": name, "last_post": _iso(last_post), "paused": paused}


@dataclass(frozen=True, slots=True)
class StateCondition:
    """Whether the state directory can be written, as `status` tells it (see `state_condition`)."""

    path: Path
    problem: str | None = None  # "state directory full or not writable: ..." when it is
    since: datetime | None = None  # when the daemon first failed to write, if it said
    hint: str = ""
    free_bytes: int | None = None  # for the service's user; None when the directory is missing
    read_only: bool = False
    warning: str | None = None  # nearly full: the largest state file could not be rewritten

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.problem is None, "problem": self.problem,
                "since": _iso(self.since), "hint": self.hint or None, "free_bytes": self.free_bytes,
                "read_only": self.read_only, "warning": self.warning}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the process holding the lock of `state_dir` (the daemon), None when none
    does: the pid the lock file names, if that process lives and the lock is held (a closed
    store leaves its pid in the file). Looks only, never takes the lock: a daemon starting
    meanwhile must not find it taken."""
    pid, _ = _lock_record(state_dir)
    if pid is None or not _alive(pid):
        return None
    return None if _flock_held(state_dir / "lock") is False else pid


def _flock_held(path: Path) -> bool | None:
    """Whether someone holds a flock() on the file at `path`, from /proc/locks (None when
    that cannot be told)."""
    try:
        inode = os.stat(path).st_ino
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in table.splitlines():
        words = line.split()
        if "FLOCK" in words and any(word.count(":") == 2 and word.rsplit(":", 1)[1] == str(inode)
                                    for word in words):
            return True
    return False


def _lock_record(state_dir: Path) -> tuple[int | None, Mapping[str, Any]]:
    """The pid and the recorded problem in the lock file (see `Store._write_lock_record`)."""
    try:
        text = (state_dir / "lock").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, {}
    first, _, rest = text.partition("\n")
    pid = int(first) if first.strip().isdigit() else None
    try:
        record = json.loads(rest) if rest.strip() else {}
    except ValueError:
        record = {}
    return pid, record if isinstance(record, Mapping) else {}


def state_condition(state_dir: Path, *, recorded: Mapping[str, Any] | None = None) -> StateCondition:
    """Can the state directory be written? What `status` (a separate, read-only process) says.

    Three sources, so that it is true even when nothing can be written: what the running
    daemon recorded in its lock file when a write failed (rewritten in place, that record
    needs no free space; ignored once that daemon is gone), a file system mounted read-only,
    and no space left (both from statvfs, for the service's user). A directory with less
    free space than its largest file (rewritten whole, it needs that much again) gets a
    warning: the next write of that file can fail. `recorded`, from the daemon itself, stands
    for its lock file's record.
    """
    if recorded is None:
        pid, record = _lock_record(state_dir)
        problem = record.get("state_problem") if pid is not None and _alive(pid) else None
    else:
        record = recorded
        problem = record.get("state_problem")
    since = None
    if isinstance(problem, str) and problem:
        try:
            since = _from_iso(record.get("since"))
        except ValueError:
            since = None
    else:
        problem = None
    try:
        fs = os.statvfs(state_dir)
    except OSError:
        return StateCondition(state_dir, problem, since)
    free = fs.f_bavail * fs.f_frsize
    read_only = bool(fs.f_flag & os.ST_RDONLY)
    hint = ""
    if problem is None and read_only:
        problem, hint = f"{STATE_PROBLEM}: {state_dir}: Read-only file system", _write_hint(state_dir, errno.EROFS)
    elif problem is None and fs.f_bavail == 0:
        problem, hint = f"{STATE_PROBLEM}: {state_dir}: No space left on device", _write_hint(state_dir, errno.ENOSPC)
    elif problem is not None:
        hint = str(record.get("hint") or "")
    warning = None
    sizes = [(entry.stat().st_size, entry.name) for entry in _state_files(state_dir)]
    if sizes and problem is None:
        size, name = max(sizes)
        if free < size:
            warning = (f"nearly full: {human_size(free)} free, less than {name} ({human_size(size)}), "
                       "which is rewritten whole; free space soon")
    return StateCondition(state_dir, problem, since, hint, free, read_only, warning)


def _state_files(state_dir: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(state_dir) as entries:
            return [e for e in entries if e.name.endswith(".json") and stat.S_ISREG(e.stat().st_mode)]
    except OSError:
        return []


def human_size(size: int) -> str:
    """`size` bytes for people: "512 B", "3.4 MB"."""
    amount = float(size)
    for unit in ("B", "KB", "MB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


SendingKey = tuple[bool, bool, float, datetime, str]
# A delivery after its sending key: a bare key sorts just before its delivery's entry.
_Queued = tuple[bool, bool, float, datetime, str, Delivery]


def sending_key(delivery: Delivery) -> SendingKey:
    """Where a delivery goes in its channel's queue: an editor's send-now first, then urgent, then
    oldest first (its id last, so that no two keys are equal)."""
    return (not delivery.send_now, not delivery.urgent, delivery.order, delivery.created, delivery.id)


def with_retry(delivery: Delivery, *, error: str, at: datetime | None, failed: bool = False) -> Delivery:
    """A copy of `delivery` after one more failed attempt."""
    return replace(
        delivery,
        attempts=delivery.attempts + 1,
        next_attempt=at,
        last_error=error,
        state="failed" if failed else delivery.state,
    )
