"""Real file systems that fill up or turn read-only, for tests of the state directory.

    fs = small_fs                          # a fresh tmpfs of SIZE bytes, mounted under tmp_path
    fs.fill()                              # a ballast file takes every free block
    fs.fill(leave=8192)                    # ... all but about that many bytes
    fs.free()                              # the ballast goes: space is back
    read_only(path)                        # context manager: `path` bind-mounted read-only on itself

Mounting needs root (CI runs the suite as root); without it, or where mounting is refused (an
unprivileged container), the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SIZE = 4 * 1024 * 1024
CHUNK = 64 * 1024


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=30, check=False)


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small or read-only file system (CI runs the suite as root)")


class SmallFs:
    """A tmpfs of `size` bytes mounted at `path`, with a ballast file to fill it."""

    def __init__(self, path: Path, size: int = SIZE) -> None:
        _need_root()
        path.mkdir(parents=True, exist_ok=True)
        done = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        self.path = path
        self.ballast = path / "ballast"

    def free_bytes(self) -> int:
        info = os.statvfs(self.path)
        return info.f_bavail * info.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Take every free block with the ballast, then give back `leave` bytes of it."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (CHUNK, 4096, 1):
                block = b"\0" * size
                while True:
                    try:
                        if os.write(fd, block) < size:
                            break
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
            if leave:
                os.ftruncate(fd, max(os.fstat(fd).st_size - leave, 0))
        finally:
            os.close(fd)
        assert self.free_bytes() <= leave + 4096, self.free_bytes()

    def free(self) -> None:
        """The ballast goes: space is back."""
        self.ballast.unlink(missing_ok=True)

    def unmount(self) -> None:
        if _run("umount", str(self.path)).returncode != 0:
            _run("umount", "-l", str(self.path))  # still open by a process that is going away


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[SmallFs]:
    """A 4 MiB tmpfs at tmp_path/"fs", unmounted after the test (skipped when not root)."""
    fs = SmallFs(tmp_path / "fs")
    try:
        yield fs
    finally:
        fs.unmount()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` bind-mounted read-only onto itself while inside: every write under it fails with
    EROFS (also for processes that have it open), and it is writable again after."""
    _need_root()
    done = _run("mount", "--bind", str(path), str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip() or done.returncode}")
    try:
        done = _run("mount", "-o", "remount,ro,bind", str(path))
        if done.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {done.stderr.strip() or done.returncode}")
        yield
    finally:
        if _run("umount", str(path)).returncode != 0:
            _run("umount", "-l", str(path))
