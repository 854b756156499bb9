"""The outbox under a large queue: cost per change, event-loop stalls, memory (a benchmark, not a test).

Usage: .venv/bin/python bench/outbox.py [--queued 100000] [--changes 3000] [--ratio 0.02] [--dir DIR]
                                         [--slow-sync SECONDS] [--feeds N]

A state directory is given `--queued` deliveries for one channel, built from the real comune
news of ../shared/corpus (synthetic text when it is not there), written as a schema-1
`outbox.json`: the layout every version reads, so the same script measures the code before the
journal too. Then, on an asyncio loop, `--changes` rounds of what a poll and a send do to the
outbox: `add_deliveries` (one new alert), `deliveries(channel)` (the delivery worker's look at
its queue), `update_delivery` (the head marked in flight) and `record_post` (the head leaves
the outbox for the history), each awaited as the daemon awaits it (`Store.acommit`: the write
in the store's writer thread; a tree without it makes the calls on the loop, as its daemon
did). A probe task sleeps 2 ms at a time beside them and records how late it wakes: the
stalls of the loop, as a distribution. Every fsync and fdatasync the process makes, in any
thread, is timed too: the disk's own latency, beside the loop's. Then up to 500 more rounds
without the probe give the CPU time of the loop's thread per call (with the probe, its own
wakeups while a change waits for the writer thread would count in the change's).

`--feeds N` also gives the state N feeds' poll states (`polls.json`), and after the rounds
makes the periodic flush that rewrites them, five times, as the daemon makes it, with the
probe on: its longest stall of the loop (8,000 feeds: a 3.7 MB file).

`--slow-sync S` adds S seconds to every fsync and fdatasync during the rounds (after the real
one, in whatever thread makes it): a stand-in for a disk whose syncs are slow, such as the
shared virtual disks whose syncs now and then take a second or more.

The journal is folded into a new snapshot when it outgrows `--ratio` times the snapshot (the
daemon's ratio is 1: one compaction every ~100,000 changes at this size, too rare for a short
run); each compaction still writes the whole queue, in a thread, while the changes go on.

Printed: open time (including the one-time rewrite to the new layout), memory per queued
delivery (live Python memory after open, over the queue; and resident memory, which also
keeps what the load's parsing left in the heap), per-change p50/p99/max (wall and CPU time),
the syncs' durations, the loop's stalls (p50/p99/p99.9/max, how many over 100 ms) and the
garbage collector's longest pause, how often outbox.json was rewritten, state size, reopen
time.

The code before the journal (schema 1, the whole file written at each change):

    git archive 7749215 bridge | tar -x -C /tmp/outbox-before
    PYTHONPATH=/tmp/outbox-before .venv/bin/python bench/outbox.py --changes 10

The journal with its writes still on the event loop: the same with `git archive 9b14e88`.
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
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bridge.store
from bridge import memory
from bridge.item import Alert
from bridge.store import Delivery, FeedState, Store

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "items-real.jsonl"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CHANNEL = "whatsapp"
PROBE_SLEEP = 0.002
CPU_ROUNDS = 500  # rounds after the others, without the probe, for the CPU time per call


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


def write_schema_1(state_dir: Path, queued: int, rows: list[dict[str, str]], feeds: int) -> None:
    state_dir.mkdir(mode=0o700)
    (state_dir / "feeds").mkdir(mode=0o700)
    data = {"meta": {"1": {"schema": 1}}, "channels": {},
            "deliveries": {str(n): delivery(n, rows).to_dict() for n in range(1, queued + 1)}}
    (state_dir / "outbox.json").write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    if feeds:
        polls = {str(n): FeedState(f"comune-{n}", etag=f'W/"{n:016x}"', last_modified="Fri, 20 Nov 2026 09:00:00 GMT",
                                   primed=(CHANNEL, "telegram"), last_poll=NOW, last_success=NOW, last_new_item=NOW,
                                   newest_item=NOW, usual_gap=86400.0).to_dict() for n in range(1, feeds + 1)}
        (state_dir / "polls.json").write_text(json.dumps({"polls": polls}, separators=(",", ":")))


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


class Syncs:
    """Every fsync and fdatasync of the process, timed (and made `extra` seconds slower) while on."""

    def __init__(self, extra: float) -> None:
        self.extra = extra
        self.samples: list[float] = []
        self._lock = threading.Lock()
        self._real = (os.fsync, os.fdatasync)

    def __enter__(self) -> Syncs:
        os.fsync, os.fdatasync = self._timed(self._real[0]), self._timed(self._real[1])
        return self

    def __exit__(self, *_: object) -> None:
        os.fsync, os.fdatasync = self._real

    def _timed(self, sync: Callable[[int], None]) -> Callable[[int], None]:
        def timed(fd: int) -> None:
            started = time.perf_counter()
            sync(fd)
            if self.extra:
                time.sleep(self.extra)
            with self._lock:
                self.samples.append(time.perf_counter() - started)
        return timed


def stalls(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    def at(share: float) -> float:
        return ms[min(len(ms) - 1, int(len(ms) * share))]
    over = sum(1 for s in ms if s > 100)
    return (f"p50 {at(0.5):6.2f} ms  p99 {at(0.99):6.2f} ms  p99.9 {at(0.999):7.2f} ms  max {ms[-1]:7.1f} ms  "
            f"over 100 ms: {over} of {len(ms)}")


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
                   rows: list[dict[str, str]], flushes: int) -> dict[str, Any]:
    costs: dict[str, list[float]] = {"add_deliveries": [], "deliveries(channel)": [], "update_delivery": [],
                                     "record_post": []}
    cpus: dict[str, list[float]] = {kind: [] for kind in costs}
    during: list[float] = []  # changes made while a compaction was under way
    outside: list[float] = []
    lags: list[float] = []
    probing = True  # False in the CPU rounds, which follow
    snapshot = state_dir / "outbox.json"
    rewrites = 0
    last = snapshot.stat()
    made = 0

    async def probe() -> None:
        while probing:
            before = time.perf_counter()
            await asyncio.sleep(PROBE_SLEEP)
            lags.append(time.perf_counter() - before - PROBE_SLEEP)

    async def timed(kind: str, call: Any) -> Any:
        nonlocal rewrites, last
        compacting = bool(getattr(getattr(store, "_outbox", None), "compacting", False))
        started, cpu = time.perf_counter(), time.thread_time()
        value = call()
        if asyncio.isfuture(value):
            value = await value
        if not probing:
            cpus[kind].append(time.thread_time() - cpu)
            return value
        costs[kind].append(time.perf_counter() - started)
        if kind != "deliveries(channel)":
            (during if compacting else outside).append(costs[kind][-1])
        now = snapshot.stat()
        if (now.st_ino, now.st_mtime_ns, now.st_size) != (last.st_ino, last.st_mtime_ns, last.st_size):
            rewrites += 1
        last = now
        # Long enough for the probe to wake between two calls: a stall is one call's, as in
        # the daemon, where other tasks run between two store calls.
        await asyncio.sleep(PROBE_SLEEP * 2)
        return value

    # As the daemon makes them: in turn, written off the loop, where the store can.
    off_loop = hasattr(store, "acommit")

    async def rounds(count: int) -> None:
        nonlocal made
        for _ in range(count):
            n = made
            made += 1
            new = delivery(queued + 1 + n, rows)
            if off_loop:
                await timed("add_deliveries", lambda new=new: store.acommit(store.plan_add_deliveries([new])))
            else:
                await timed("add_deliveries", lambda new=new: store.add_deliveries([new]))
            head = (await timed("deliveries(channel)", lambda: store.deliveries(CHANNEL)))[0]
            flying = replace(head, in_flight=True, token=f"tok-{n}")
            if off_loop:
                await timed("update_delivery",
                            lambda flying=flying: store.acommit(store.plan_update_deliveries([flying])))
                await timed("record_post", lambda flying=flying, n=n: store.acommit(
                    store.plan_record_posts([flying], f"wamid-{n}", NOW)))
            else:
                await timed("update_delivery", lambda flying=flying: store.update_delivery(flying))
                await timed("record_post", lambda flying=flying, n=n: store.record_post(flying, f"wamid-{n}", NOW))

    prober = asyncio.ensure_future(probe())
    await asyncio.sleep(PROBE_SLEEP * 2)
    started = time.perf_counter()
    await rounds(changes)
    elapsed = time.perf_counter() - started
    probing = False
    await prober
    # The loop thread's own CPU per call, without the probe's wakeups (while a change waits for
    # the writer thread they would count in it).
    await rounds(min(changes, CPU_ROUNDS))
    flush_lags: list[float] = []
    round_lags = lags
    if flushes:
        lags, probing = flush_lags, True
        prober = asyncio.ensure_future(probe())
        for _ in range(flushes):
            await asyncio.sleep(PROBE_SLEEP * 2)
            if off_loop:
                await store.acommit(store.plan_flush(force=True))
            else:
                store.flush(force=True)
        probing = False
        await prober
    return {"costs": costs, "cpus": cpus, "during": during, "outside": outside, "lags": round_lags,
            "snapshots": rewrites, "elapsed": elapsed, "off_loop": off_loop, "flush_lags": flush_lags}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=3000, help="rounds of add, look, update, record")
    parser.add_argument("--ratio", type=float, default=0.02, help="compact when the journal exceeds this × snapshot")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the state directory")
    parser.add_argument("--feeds", type=int, default=0, help="feeds' poll states to flush after the rounds")
    parser.add_argument("--slow-sync", type=float, default=0.0, metavar="SECONDS",
                        help="add this much to every fsync and fdatasync during the rounds (a slow disk)")
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
        write_schema_1(state_dir, args.queued, rows, args.feeds)
        before = resident()
        started = time.perf_counter()
        store = Store.open(state_dir)
        opened = time.perf_counter() - started
        per_delivery = (resident() - before) / args.queued
        collections = Collections()
        with Syncs(args.slow_sync) as syncs:
            run = asyncio.run(exercise(store, state_dir, args.queued, args.changes, rows, 5 if args.feeds else 0))
        gc.callbacks.remove(collections)
        polls = state_dir / "polls.json"
        polls_size = polls.stat().st_size if polls.exists() else 0
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
    print("  per call, CPU time of the loop's thread (the code's own cost; in the rounds after, without the probe):")
    for kind, samples in run["cpus"].items():
        print(f"    {kind + ':':<22}{figures(samples)}")
    where = "in the store's writer thread" if run["off_loop"] else "on the event loop"
    slower = f", each made {args.slow_sync * 1000:g} ms slower" if args.slow_sync else ""
    print(f"  syncs during the rounds: {figures(syncs.samples)} ({where}{slower})")
    print(f"  loop stalls:            {stalls(run['lags'])} (probe sleeping {PROBE_SLEEP * 1000:g} ms)")
    if run["flush_lags"]:
        print(f"  flush of {args.feeds:,} feeds' poll states ({polls_size / 1e6:.1f} MB), 5 times: longest loop stall "
              f"{max(run['flush_lags']) * 1000:.1f} ms")
    print(f"  longest GC pause:       {max(collections.pauses, default=0) * 1000:8.1f} ms "
          f"({len(collections.pauses)} collections)")
    print(f"  outbox.json rewritten:  {run['snapshots']:8d} times during the rounds ({run['elapsed']:.1f} s)")
    print(f"  close:                  {closed:8.2f} s")
    print(f"  state on disk:          {on_disk / 1e6:8.1f} MB ({', '.join(files)})")
    print(f"  reopen:                 {reopened:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
