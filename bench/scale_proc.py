"""Watch a process and its descendants from outside: CPU seconds and memory over time (Linux /proc).

`TreeSampler(pid)` samples every `period` seconds in a daemon thread: the CPU (user + system)
of the process and of every descendant it has ever seen (a child that exits keeps its last
count, so parser processes that are replaced still count), the resident memory of the root
process and of the whole tree. Readers ask for the CPU at a moment, the peak memory in a
window, and when the tree last used CPU (how the bench tells that a cycle is over).
"""

from __future__ import annotations

import bisect
import itertools
import os
import threading
import time
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at the tree at `time` (epoch seconds): CPU seconds so far, RSS in bytes."""

    time: float
    cpu: float
    rss_root: int
    rss_tree: int


def _stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, parent pid) of `pid`, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[1])


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def peak_rss(pid: int) -> int:
    """The kernel's high-water mark of resident memory (VmHWM) of `pid`, in bytes; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreeSampler:
    """Samples the tree rooted at `pid` every `period` seconds until `stop()` (or `limit` seconds)."""

    def __init__(self, pid: int, *, period: float = 0.05, limit: float = 7200.0) -> None:
        self.pid = pid
        self.period = period
        self._limit = limit
        self._last_cpu: dict[int, float] = {}
        self._samples: list[Sample] = []
        self._times: list[float] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{pid}", daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        pids = [self.pid]
        index = 0
        while index < len(pids) and index < 1000:
            pids.extend(_children(pids[index]))
            index += 1
        return pids

    def _sample(self) -> Sample:
        rss_tree = 0
        rss_root = 0
        for pid in self._tree():
            stat = _stat(pid)
            if stat is None:
                continue
            self._last_cpu[pid] = stat[0]
            rss = _rss(pid)
            rss_tree += rss
            if pid == self.pid:
                rss_root = rss
        return Sample(time.time(), sum(self._last_cpu.values()), rss_root, rss_tree)

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit
        while not self._stopping.is_set() and time.monotonic() < deadline:
            sample = self._sample()
            with self._lock:
                self._samples.append(sample)
                self._times.append(sample.time)
            self._stopping.wait(self.period)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def last(self) -> Sample:
        """The newest sample (taking one now if there is none yet)."""
        with self._lock:
            if self._samples:
                return self._samples[-1]
        return self._sample()

    def at(self, moment: float) -> Sample:
        """The last sample taken at or before `moment` (the first one if none)."""
        with self._lock:
            index = bisect.bisect_right(self._times, moment) - 1
            return self._samples[max(index, 0)]

    def window(self, start: float, end: float) -> list[Sample]:
        with self._lock:
            low = bisect.bisect_left(self._times, start)
            high = bisect.bisect_right(self._times, end)
            return self._samples[low:high]

    def peak(self, start: float, end: float) -> tuple[int, int]:
        """Peak (root RSS, tree RSS) in bytes between `start` and `end`."""
        chosen = self.window(start, end) or [self.at(end)]
        return max(s.rss_root for s in chosen), max(s.rss_tree for s in chosen)

    def last_busy(self, since: float, *, threshold: float = 0.02) -> float:
        """The time of the last sample after `since` at which the tree's CPU count had risen by
        more than `threshold` s since the previous sample; `since` if none did."""
        chosen = self.window(since, time.time() + 1)
        busy = since
        for previous, current in itertools.pairwise(chosen):
            if current.cpu - previous.cpu > threshold:
                busy = current.time
        return busy

    def wait_quiet(self, since: float, *, quiet: float = 1.0, timeout: float = 120.0) -> float:
        """Wait until the tree has used no CPU (beyond noise) for `quiet` seconds, at most
        `timeout`; return the moment it last was busy."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            busy = self.last_busy(since)
            if time.time() - busy >= quiet:
                return busy
            time.sleep(self.period)
        return self.last_busy(since)
