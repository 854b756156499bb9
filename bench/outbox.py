"""The outbox under a large queue: cost per change, event-loop stalls, memory (a benchmark, not a test).

Usage: .venv/bin/python bench/outbox.py [--queued 100000] [--changes 3000] [--ratio 0.02] [--dir DIR]

A state directory is given `--queued` deliveries for one channel, built from the real comune
news of ../shared/corpus (synthetic text when it is not there), written as a schema-1
`outbox.json`: the layout every version reads, so the same script measures the code before the
journal too. Then, on an asyncio loop, `--changes` rounds of what a poll and a send do to the
outbox: `add_deliveries` (one new alert), `deliveries(channel)` (the delivery worker's look at
its queue), `update_delivery` (the head marked in flight) and `record_post` (the head leaves
the outbox for the history). A probe task sleeps 2 ms at a time beside them and records how
late it wakes: the longest stall of the loop.

The journal is folded into a new snapshot when it outgrows `--ratio` times the snapshot (the
daemon's ratio is 1: one compaction every ~100,000 changes at this size, too rare for a short
run); each compaction still writes the whole queue, in a thread, while the changes go on.

Printed: open time (including the one-time rewrite to the new layout), memory per queued
delivery (live Python memory after open, over the queue; and resident memory, which also
keeps what the load's parsing left in the heap), per-change p50/p99/max (wall and CPU time),
the longest loop stall and the garbage collector's, how often outbox.json was rewritten,
state size, reopen time.

The code before the journal (schema 1, the whole file written at each change):

    git archive 7749215 bridge | tar -x -C /tmp/outbox-before
    PYTHONPATH=/tmp/outbox-before .venv/bin/python bench/outbox.py --changes 10
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bridge.store
from bridge import memory
from bridge.item import Alert
from bridge.store import Delivery, Store

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "items-real.jsonl"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CHANNEL = "whatsapp"
PROBE_SLEEP = 0.002


def news() -> list[dict[str, str]]:
    if CORPUS.exists():
        rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [{"title": r["title"], "lead": r.get("lead_text") or "", "link": r["link"], "feed": r["comune_feed"]}
                for r in rows if r.get("title") and r.get("link")]
    return [{"title": f"Avviso numero {n}: chiusura temporanea di via Roma per lavori",
             "lead": "Da lunedì via Roma resta chiusa per lavori alla rete idrica. Le deviazioni sono indicate.",
             "link": f"https://www.comune.esempio.it/novita/avviso-{n}/", "feed": f"comune-{n % 500}"}
            for n in range(1000)]


def delivery(n: int, rows: list[dict[str, str]]) -> Delivery:
    row = rows[n % len(rows)]
    alert = Alert(feed_id=row["feed"], feed_name=f"Comune di {row['feed']}", title=row["title"],
                  summary=row["lead"][:300], link=f"{row['link']}?n={n}", published=NOW - timedelta(seconds=n))
    return Delivery(id=f"{CHANNEL}-{n:08d}", channel=CHANNEL, feed_id=row["feed"], alert=alert, created=NOW,
                    order=(NOW - timedelta(seconds=n)).timestamp())


def write_schema_1(state_dir: Path, queued: int, rows: list[dict[str, str]]) -> None:
    state_dir.mkdir(mode=0o700)
    (state_dir / "feeds").mkdir(mode=0o700)
    data = {"meta": {"1": {"schema": 1}}, "channels": {},
            "deliveries": {str(n): delivery(n, rows).to_dict() for n in range(1, queued + 1)}}
    (state_dir / "outbox.json").write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def resident() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def size_of(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def disk_floor(directory: Path, count: int = 300) -> list[float]:
    """What the disk alone costs: a 600-byte append and its fdatasync, `count` times."""
    path = directory / "floor"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            os.write(fd, b"x" * 599 + b"\n")
            os.fdatasync(fd)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return samples


class Collections:
    """The garbage collector's pauses (a full collection walks every delivery in memory)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)


def figures(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):8.3f} ms  p99 {p99:8.3f} ms  max {ms[-1]:8.3f} ms  ({len(ms)} calls)"


async def exercise(store: Store, state_dir: Path, queued: int, changes: int,
                   rows: list[dict[str, str]]) -> dict[str, Any]:
    costs: dict[str, list[float]] = {"add_deliveries": [], "deliveries(channel)": [], "update_delivery": [],
                                     "record_post": []}
    cpus: dict[str, list[float]] = {kind: [] for kind in costs}
    during: list[float] = []  # changes made while a compaction was under way
    outside: list[float] = []
    lags: list[float] = []
    done = asyncio.Event()
    snapshot = state_dir / "outbox.json"
    rewrites = 0
    last = snapshot.stat()

    async def probe() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(PROBE_SLEEP)
            lags.append(time.perf_counter() - before - PROBE_SLEEP)

    async def timed(kind: str, call: Any) -> Any:
        nonlocal rewrites, last
        compacting = bool(getattr(getattr(store, "_outbox", None), "compacting", False))
        started, cpu = time.perf_counter(), time.thread_time()
        value = call()
        costs[kind].append(time.perf_counter() - started)
        if kind != "deliveries(channel)":
            (during if compacting else outside).append(costs[kind][-1])
        cpus[kind].append(time.thread_time() - cpu)
        now = snapshot.stat()
        if (now.st_ino, now.st_mtime_ns, now.st_size) != (last.st_ino, last.st_mtime_ns, last.st_size):
            rewrites += 1
        last = now
        # Long enough for the probe to wake between two calls: a stall is one call's, as in
        # the daemon, where other tasks run between two store calls.
        await asyncio.sleep(PROBE_SLEEP * 2)
        return value

    prober = asyncio.ensure_future(probe())
    await asyncio.sleep(PROBE_SLEEP * 2)
    started = time.perf_counter()
    for n in range(changes):
        new = delivery(queued + 1 + n, rows)
        await timed("add_deliveries", lambda new=new: store.add_deliveries([new]))
        head = (await timed("deliveries(channel)", lambda: store.deliveries(CHANNEL)))[0]
        flying = replace(head, in_flight=True, token=f"tok-{n}")
        await timed("update_delivery", lambda flying=flying: store.update_delivery(flying))
        await timed("record_post", lambda flying=flying, n=n: store.record_post(flying, f"wamid-{n}", NOW))
    elapsed = time.perf_counter() - started
    done.set()
    await prober
    return {"costs": costs, "cpus": cpus, "during": during, "outside": outside, "stall": max(lags),
            "snapshots": rewrites, "elapsed": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=3000, help="rounds of add, look, update, record")
    parser.add_argument("--ratio", type=float, default=0.02, help="compact when the journal exceeds this × snapshot")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the state directory")
    args = parser.parse_args()
    journaled = hasattr(bridge.store, "OUTBOX_KEYS")
    if journaled:
        from bridge.journal import JournaledStorage

        JournaledStorage.COMPACT_RATIO = args.ratio
    rows = news()
    memory.return_freed_memory()  # as the daemon does at start
    with tempfile.TemporaryDirectory(prefix="outbox-bench-", dir=args.dir) as tmp:
        floor = disk_floor(Path(tmp))
        state_dir = Path(tmp) / "state"
        write_schema_1(state_dir, args.queued, rows)
        before = resident()
        started = time.perf_counter()
        store = Store.open(state_dir)
        opened = time.perf_counter() - started
        per_delivery = (resident() - before) / args.queued
        collections = Collections()
        run = asyncio.run(exercise(store, state_dir, args.queued, args.changes, rows))
        gc.callbacks.remove(collections)
        started = time.perf_counter()
        store.close()
        closed = time.perf_counter() - started
        on_disk = size_of(state_dir)
        files = sorted(path.name for path in state_dir.iterdir() if path.is_file())
        started = time.perf_counter()
        Store.open(state_dir).close()
        reopened = time.perf_counter() - started
        gc.collect()
        tracemalloc.start()  # last: it slows the interpreter down even after it stops
        store = Store.open(state_dir)
        gc.collect()
        live = tracemalloc.get_traced_memory()[0] / len(store.deliveries())
        tracemalloc.stop()
        store.close()
    layout = f"snapshot + journal, compaction at {args.ratio:g}× the snapshot" if journaled else "whole file"
    print(f"outbox: {args.queued:,} queued deliveries, {args.changes:,} rounds of changes ({layout})")
    print(f"  the disk alone:         {figures(floor)} (600-byte append + fdatasync)")
    print(f"  open (schema-1 file):   {opened:8.2f} s")
    if args.queued >= 1000:  # below, the store's fixed overhead dominates
        print(f"  memory per delivery:    {live:8.0f} bytes live (tracemalloc), {per_delivery:.0f} bytes resident "
              "(with what the load left in the heap)")
    print("  per call, wall time (the disk's fdatasync included):")
    for kind, samples in run["costs"].items():
        print(f"    {kind + ':':<22}{figures(samples)}")
    if run["during"]:
        print(f"    changes, no compaction: {figures(run['outside'])}")
        print(f"    changes, compacting:  {figures(run['during'])}")
    print("  per call, CPU time of the loop's thread (the code's own cost):")
    for kind, samples in run["cpus"].items():
        print(f"    {kind + ':':<22}{figures(samples)}")
    print(f"  longest loop stall:     {run['stall'] * 1000:8.1f} ms (probe sleeping {PROBE_SLEEP * 1000:g} ms)")
    print(f"  longest GC pause:       {max(collections.pauses, default=0) * 1000:8.1f} ms "
          f"({len(collections.pauses)} collections)")
    print(f"  outbox.json rewritten:  {run['snapshots']:8d} times during the rounds ({run['elapsed']:.1f} s)")
    print(f"  close:                  {closed:8.2f} s")
    print(f"  state on disk:          {on_disk / 1e6:8.1f} MB ({', '.join(files)})")
    print(f"  reopen:                 {reopened:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
