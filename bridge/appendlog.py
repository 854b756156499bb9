"""An append-only JSON Lines file, written whole or not at all: the history's and the audit trail's.

Appending costs the same whatever the file's length. Each append is written whole and fsynced
(the directory too when the file is new), or not at all: a write that fails part-way (a nearly
full disk takes only part of it) is cut back to where the file ended, and the OSError raised.
A last line torn by a crash is cut off before the next append (a reader skips it); a complete
last record that lacks only its newline is kept, and the next append starts on a new line.
Whether a line is a complete record is the owner's to say (`is_record`); one writer at a time
(the state's lock).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bridge.journal import fsync_dir, write_fully


class AppendLog:
    """The file at `path`; `is_record` tells a complete record's line from a torn one."""

    # A record is far shorter; the tail is looked for in this many last bytes first.
    TAIL_WINDOW = 65536

    def __init__(self, path: Path, is_record: Callable[[bytes], bool]) -> None:
        self.path = path
        self._is_record = is_record
        self._checked_tail = False

    def append(self, data: bytes) -> None:
        """Add `data` (whole lines) durably before returning; raise the OSError of a write that
        failed, the file then as it was."""
        if not self._checked_tail:
            self._mend_tail()
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            end = os.fstat(fd).st_size  # one writer: our records start here
            try:
                write_fully(fd, data)
                os.fsync(fd)
            except OSError:
                self._cut_back(fd, end)
                raise
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)

    def _cut_back(self, fd: int, end: int) -> None:
        """Undo a failed append: the file ends where it ended before."""
        try:
            os.ftruncate(fd, end)  # shrinking needs no free space
            os.fsync(fd)
        except OSError:
            self._checked_tail = False  # the next append looks at the tail again
        else:
            self._checked_tail = True

    def _mend_tail(self) -> None:
        """Make the file end with a newline: a complete last record that lacks only its newline
        gets one, a torn one is cut off."""
        try:
            with open(self.path, "r+b") as file:
                size = os.fstat(file.fileno()).st_size
                if size == 0:
                    self._checked_tail = True
                    return
                file.seek(max(size - self.TAIL_WINDOW, 0))
                tail = file.read()
                if tail.endswith(b"\n"):
                    self._checked_tail = True
                    return
                if b"\n" not in tail and size > len(tail):
                    file.seek(0)
                    tail = file.read()
                start = size - len(tail) + tail.rfind(b"\n") + 1
                if self._is_record(tail[tail.rfind(b"\n") + 1:]):
                    file.seek(size)
                    file.write(b"\n")
                else:
                    file.truncate(start)
                file.flush()
                os.fsync(file.fileno())
        except FileNotFoundError:
            pass
        self._checked_tail = True
