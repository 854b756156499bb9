"""Scale: one channel-bridge for thousands of comuni, measured against its peers (issue 7).

Usage (from the repository, with the test extras installed: `make test` does it):

    .venv/bin/python bench/scale.py --sizes 500,2000,8000     # the full run, about 15 min on 2 cores
    .venv/bin/python bench/scale.py --quick                   # 200 feeds, small peer sample, ~2 min

For each size N it starts a feed farm (`scale_feeds.py`: N realistic 20-item comune feeds of
~17 KB on 250 loopback hosts 127.0.1.x, ETag and Last-Modified, 50-150 ms per answer and 1-2 s
for 5% of the feeds, served by an asyncio process), a fake WAHA channel, and the real
`channel-bridge run` as a subprocess on a generated config, then measures three cycles:

- first:   a daemon started on an empty state polls everything (all new: recorded, none posted);
           its interval is a day, so that no scheduled poll comes during it or the idle after;
- all-304: the daemon restarted with interval T (`--interval`, 50 s) polls everything once at
           start (200 feeds a second), nothing changed;
- 5%:      then one interval T of scheduled polls, each feed once at its phase, during which
           5% of the feeds each get one new item at a random moment; each is posted at the
           feed's next poll (latency: from the item appearing in its feed to its post reaching
           the fake WAHA, at most T + 2 s). Its wall is T by construction: the daemon keeps up
           with 8,000 feeds polled every T seconds, spread evenly, not in one burst.

The first cycle starts at the farm's first request and ends when the farm has answered every
feed and the daemon's process tree (daemon, parser) has used no CPU for a second; the all-304
one ends at the answer that completes the set. Measured from outside: wall, CPU (the tree,
/proc), peak RSS (the daemon alone and the tree), the state directory's size, the time spent
writing state (py-spy samples in `bridge.store`'s write path, with --idle so fsync waits
count). Idle: RSS and CPU after the first cycle; steady state: RSS at the end of the 5% cycle.
The farm's own CPU and a raw asyncio client with the daemon's limits (64 at once, 2 per host)
show whether the server could be the bottleneck and what the latency alone costs.

The peers (rss2email 3.14, feed2exec 0.23, a naive feedparser loop), installed by the bench in
`bench/.scale/peers-venv`, run the same three cycles on a sample of the same farm (sequential
tools need N x latency, about 25 min per cycle for 8,000 feeds: they run once, on
`--peer-sample` feeds of the first size's farm, and their wall and CPU per feed are scaled to
each N, marked "~"; their RSS is as measured). Work files, logs and profiles
go to `bench/.scale/` (git-ignored). Everything is bounded: the farm and the fake stop by
themselves, every subprocess is killed at the end, every wait has a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "tests")]

from scale_feeds import FarmSpec, FarmStats, FeedFarm, parse_item_link  # noqa: E402
from scale_peers import PEERS, PeerCycle, PeerRunner, ensure_peers_venv, run_measured  # noqa: E402
from scale_proc import TreeSampler, peak_rss  # noqa: E402
from servers.waha import FakeWaha  # noqa: E402

API_KEY = "scale-bench-key"
CHAT = "120363000000000042@newsletter"
MB = 1024 * 1024
DAEMON_POLLS = 64  # bridge.daemon.MAX_CONCURRENT_POLLS, mirrored by the raw baseline client
DAEMON_PER_HOST = 2  # bridge.daemon.MAX_POLLS_PER_HOST
STORE_WRITE_FRAMES = ("write_atomically (", "append (bridge/store.py", "append (bridge/journal.py",
                      "_write_snapshot (bridge/journal.py")
STORE_SAVE_FRAMES = ("save_feed (", "_write_outbox (", "record_posts (")


@dataclass(slots=True)
class Cycle:
    """One measured cycle of the daemon or of a peer."""

    tool: str
    name: str  # first | 5% | all-304
    feeds: int
    wall: float
    cpu: float
    rss_root: int = 0
    rss_tree: int = 0
    state_bytes: int | None = None
    state_write: float | None = None  # seconds in bridge.store's write path (py-spy)
    state_save: float | None = None  # seconds in save_feed/_write_outbox incl. serialising
    latency: tuple[float, float] | None = None  # item-to-post p50, p99
    fetch_to_post: tuple[float, float] | None = None
    posted: int | None = None
    expected: int | None = None
    requests: int = 0
    ok: int = 0
    not_modified: int = 0
    max_per_host: int = 0
    server_cpu: float = 0.0
    scaled_from: int | None = None  # a peer measured on this many feeds, scaled to `feeds`
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.feeds / self.wall if self.wall > 0 else 0.0


# -- helpers ------------------------------------------------------------------------------------


def dir_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under `path`."""
    total = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
                files += 1
            except OSError:
                pass
    return total, files


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[rank]


def write_config(path: Path, urls: list[str], interval: int, waha_url: str) -> None:
    lines = [
        "[bridge]",
        'state_dir = "state"',
        'timezone = "Europe/Rome"',
        'user_agent = "channel-bridge scale bench"',
        "",
        "[defaults]",
        f'interval = "{interval}s"',
        'channels = ["whatsapp"]',
        'link_domains = ["example.it"]',
        'fetch_article = "never"',  # the farm's item links are not on loopback: never fetch them
        "",
    ]
    for index, url in enumerate(urls):
        lines += ["[[feeds]]", f'id = "c{index:05d}"', f'name = "Comune {index:05d}"', f'url = "{url}"', ""]
    lines += [
        "[channels.whatsapp]",
        'type = "waha"',
        f'url = "{waha_url}"',
        f'chat_id = "{CHAT}"',
        'api_key = "env:WAHA_API_KEY"',
        "",
    ]
    path.write_text("\n".join(lines))


class Profiler:
    """py-spy recording one process tree into collapsed stacks, stopped with SIGINT."""

    def __init__(self, py_spy: Path | None, pid: int, out: Path) -> None:
        self.out = out
        self.rate = 100
        self.process: subprocess.Popen[bytes] | None = None
        if py_spy is None:
            return
        self.process = subprocess.Popen(
            [str(py_spy), "record", "--pid", str(pid), "--idle", "--nonblocking", "--subprocesses",
             "--rate", str(self.rate), "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def stop(self) -> dict[str, int] | None:
        """Stop recording; return the collapsed stacks (stack -> samples), None without py-spy."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.stacks_of(self.out)

    @staticmethod
    def stacks_of(raw: Path) -> dict[str, int]:
        """The collapsed stacks of py-spy's raw output `raw` (stack -> samples)."""
        stacks: dict[str, int] = {}
        if raw.exists():
            for line in raw.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                if count.isdigit():
                    stacks[stack] = stacks.get(stack, 0) + int(count)
        return stacks

    def seconds_in(self, stacks: dict[str, int] | None, frames: tuple[str, ...]) -> float | None:
        if stacks is None:
            return None
        return sum(n for stack, n in stacks.items() if any(f in stack for f in frames)) / self.rate


def hot_spots(stacks: dict[str, int], rate: int, top: int = 30) -> str:
    """Per process (the daemon, each parser): busy seconds, then inclusive and self seconds per
    function; samples whose innermost frame is a wait (select, pipe read, lock) are left out."""
    idle_markers = ("select (selectors.py", "_worker (concurrent/futures/thread.py", "wait (threading.py",
                    "main (multiprocessing/resource_tracker.py", "read_signed (multiprocessing/forkserver.py",
                    "recv_bytes", "_recv (multiprocessing", "wait (")
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    own: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    busy: collections.Counter[str] = collections.Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        process = frames[0][:100]
        if "resource_tracker" in process or any(marker in frames[-1] for marker in idle_markers):
            continue
        busy[process] += count
        own[process][frames[-1]] += count
        for frame in set(frames[1:]):
            inclusive[process][frame] += count
    lines = []
    for process, samples in busy.most_common():
        lines += ["", f"== {process}: busy {samples / rate:.1f} s at {rate} Hz", "inclusive s  function"]
        lines += [f"{n / rate:10.2f}  {frame[:160]}" for frame, n in inclusive[process].most_common(top)]
        lines += ["self s      function"]
        lines += [f"{n / rate:10.2f}  {frame[:160]}" for frame, n in own[process].most_common(top // 2)]
    return "\n".join(lines)


# -- the daemon ---------------------------------------------------------------------------------


class Daemon:
    """`channel-bridge run` as a subprocess, watched by a TreeSampler and optionally py-spy."""

    def __init__(self, config: Path, log: Path, py_spy: Path | None, profile_out: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env["WAHA_API_KEY"] = API_KEY
        self.log = log
        self.started = time.time()
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bridge", "--config", str(config), "run"],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=config.parent, start_new_session=True,
            )
        self.sampler = TreeSampler(self.process.pid, period=0.05)
        self.py_spy = py_spy
        self.profile_out = profile_out
        self.profiler = Profiler(py_spy, self.process.pid, profile_out)
        self.hwm = 0

    def restart_profiler(self, name: str) -> tuple[Profiler, dict[str, int] | None]:
        """Stop the current recording (returned with its stacks) and start a new one."""
        old = self.profiler
        stacks = old.stop()
        self.profiler = Profiler(self.py_spy, self.process.pid, self.profile_out.with_name(name))
        return old, stacks

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> tuple[int | None, dict[str, int] | None]:
        """SIGTERM, then SIGKILL after 30 s; return (exit code, the last recording's stacks)."""
        self.hwm = max(self.hwm, peak_rss(self.process.pid))
        stacks = self.profiler.stop()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # parser processes left behind, if any
        except ProcessLookupError:
            pass
        self.sampler.stop()
        return self.process.returncode, stacks


def wait_cycle(farm: FeedFarm, daemon: Daemon, feeds: int, timeout: float) -> tuple[FarmStats, float]:
    """Wait until the farm has answered every feed once since its mark, then until the daemon's
    tree is quiet; return the farm's stats and the end time."""
    deadline = time.time() + timeout
    stats = farm.stats()
    while time.time() < deadline and daemon.alive() and len(stats.per_feed) < feeds:
        time.sleep(0.2)
        stats = farm.stats()
    since = stats.last_answer or time.time()
    busy = daemon.sampler.wait_quiet(since, quiet=1.0, timeout=max(5.0, deadline - time.time()))
    stats = farm.stats()
    return stats, max(busy, stats.last_answer or 0.0)


def wait_all_polled(farm: FeedFarm, daemon: Daemon, feeds: int, timeout: float) -> tuple[FarmStats, float]:
    """Wait until the farm has answered every feed since its mark (each once: the start-up
    polls); return its stats and the time of the last answer. Scheduled polls go on after it,
    so no quiet is waited for."""
    deadline = time.time() + timeout
    stats = farm.stats()
    while time.time() < deadline and daemon.alive() and (len(stats.per_feed) < feeds
                                                          or stats.ok + stats.not_modified < feeds):
        time.sleep(0.1)
        stats = farm.stats()
    return stats, stats.last_answer or time.time()


def fill(cycle: Cycle, stats: FarmStats) -> Cycle:
    cycle.requests, cycle.ok, cycle.not_modified = stats.requests, stats.ok, stats.not_modified
    cycle.max_per_host, cycle.server_cpu = stats.max_per_host, stats.server_cpu
    return cycle


def measure_daemon(n: int, farm: FeedFarm, waha: FakeWaha, work: Path, args: argparse.Namespace,
                   py_spy: Path | None, report: list[str]) -> list[Cycle]:
    """The three cycles of channel-bridge on `n` feeds; see the module docstring."""
    urls = farm.urls()
    config = work / "config.toml"
    state = work / "state"
    log = work / "daemon.log"
    cycles: list[Cycle] = []
    cycle_timeout = args.cycle_timeout

    # Phase A: the first cycle, on an empty state; a day-long interval, so that the scheduled
    # polls (spread over the interval) hardly ever come during it or the idle after it.
    write_config(config, urls, 86400, waha.url)
    farm.mark()
    posts0 = len(waha.posts)
    daemon = Daemon(config, log, py_spy, work / "profile-first.txt")
    try:
        stats, end = wait_cycle(farm, daemon, n, cycle_timeout)
        if not daemon.alive():
            raise RuntimeError(f"channel-bridge exited ({daemon.process.returncode}); see {log}")
        start = stats.first_request or daemon.started
        startup = start - daemon.started
        profiler, stacks = daemon.restart_profiler("profile-idle-a.txt")
        root, tree = daemon.sampler.peak(start, end)
        first = fill(Cycle("channel-bridge", "first", n, end - start, daemon.sampler.at(end).cpu
                           - daemon.sampler.at(start).cpu, root, tree), stats)
        first.posted = len(waha.posts) - posts0
        first.expected = 0
        first.state_write = profiler.seconds_in(stacks, STORE_WRITE_FRAMES)
        first.state_save = profiler.seconds_in(stacks, STORE_SAVE_FRAMES)
        first.state_bytes, files = dir_size(state)
        first.extra.update(startup=startup, state_files=files, complete=len(stats.per_feed) >= n)
        if stacks:
            (work / "hot-first.txt").write_text(hot_spots(stacks, profiler.rate))
        # Idle after the first cycle.
        idle_start = time.time()
        time.sleep(args.idle)
        idle_end = time.time()
        first.extra["idle_cpu"] = daemon.sampler.at(idle_end).cpu - daemon.sampler.at(idle_start).cpu
        first.extra["idle_rss"] = daemon.sampler.at(idle_end).rss_root
        first.extra["idle_rss_tree"] = daemon.sampler.at(idle_end).rss_tree
        first.extra["idle_seconds"] = idle_end - idle_start
        cycles.append(first)
    finally:
        code, _ = daemon.stop()
    first.extra["exit"] = code
    first.extra["hwm"] = daemon.hwm

    # Phase B: restart with the interval T. The start-up polls (spread at 200 a second, each
    # feed once) are the all-304 cycle; then, in steady state, one interval of scheduled polls
    # (each feed once, at its phase) during which 5% of the feeds get a new item is the 5% cycle.
    interval = args.interval
    write_config(config, urls, interval, waha.url)
    farm.mark()
    daemon = Daemon(config, log, py_spy, work / "profile-304.txt")
    try:
        stats, end = wait_all_polled(farm, daemon, n, min(cycle_timeout, interval * 0.9))
        if not daemon.alive():
            raise RuntimeError(f"channel-bridge exited ({daemon.process.returncode}); see {log}")
        start = stats.first_request or daemon.started
        profiler, stacks = daemon.restart_profiler("profile-changed.txt")
        root, tree = daemon.sampler.peak(start, end)
        idle304 = fill(Cycle("channel-bridge", "all-304", n, end - start,
                             daemon.sampler.at(end).cpu - daemon.sampler.at(start).cpu, root, tree), stats)
        idle304.state_write = profiler.seconds_in(stacks, STORE_WRITE_FRAMES)
        idle304.state_save = profiler.seconds_in(stacks, STORE_SAVE_FRAMES)
        idle304.state_bytes, _ = dir_size(state)
        idle304.extra.update(startup=start - daemon.started, interval=interval, complete=len(stats.per_feed) >= n)
        if stacks:
            (work / "hot-304.txt").write_text(hot_spots(stacks, profiler.rate))
        cycles.append(idle304)

        # One interval of scheduled polls, with changes at random moments in it.
        rng = random.Random(args.seed + n)
        changed = sorted(rng.sample(range(n), max(1, round(n * args.changed))))
        window = time.time()
        farm.mark()
        moments = [rng.uniform(window + 0.5, window + interval - 0.5) for _ in changed]
        posts_before = len(waha.posts)
        farm.change(changed, moments)
        while time.time() < window + interval:
            time.sleep(0.1)
        window_end = time.time()
        stats = farm.stats()
        root, tree = daemon.sampler.peak(window, window_end)
        cyc = fill(Cycle("channel-bridge", "5%", n, window_end - window,
                         daemon.sampler.at(window_end).cpu - daemon.sampler.at(window).cpu, root, tree), stats)
        cyc.extra["complete"] = len(stats.per_feed) >= n
        cyc.extra["steady_rss"] = daemon.sampler.at(window_end).rss_root
        cyc.extra["steady_rss_tree"] = daemon.sampler.at(window_end).rss_tree
        # A change late in the window is polled in the next interval: wait for every post.
        deadline = window_end + interval + 30
        while time.time() < deadline and len(waha.posts) - posts_before < len(changed):
            time.sleep(0.2)
        stats = farm.stats()  # the answers' times, for fetch-to-post
    finally:
        code, stacks = daemon.stop()
    cyc.state_write = daemon.profiler.seconds_in(stacks, STORE_WRITE_FRAMES)
    cyc.state_save = daemon.profiler.seconds_in(stacks, STORE_SAVE_FRAMES)
    if stacks:
        (work / "hot-changed.txt").write_text(hot_spots(stacks, daemon.profiler.rate))
    cyc.state_bytes, _ = dir_size(state)
    cyc.extra.update(exit=code, hwm=daemon.hwm, interval=interval)

    # Latency: every change matched with its post.
    change_times = {(feed, number): at for feed, number, at in farm.changes() if feed in set(changed)}
    matched = match_posts(change_times, waha.posts[posts_before:], stats.ok_answers)
    latencies, fetch_to_post = matched.latencies, matched.fetch_to_post
    cyc.posted, cyc.expected = matched.posted, len(change_times)
    cyc.extra["duplicates"] = matched.duplicates
    cyc.extra["unexpected"] = matched.unexpected
    if latencies:
        cyc.latency = (statistics.median(latencies), percentile(latencies, 0.99))
        cyc.extra["latency_max"] = max(latencies)
    if fetch_to_post:
        cyc.fetch_to_post = (statistics.median(fetch_to_post), percentile(fetch_to_post, 0.99))
    cycles.append(cyc)
    return cycles


@dataclass(slots=True)
class Matched:
    """The farm's new items matched with the posts the fake WAHA received."""

    latencies: list[float]  # item appearing in its feed -> its first post, seconds
    fetch_to_post: list[float]  # the feed's last 200 answer -> the post
    posted: int  # new items posted at least once
    duplicates: int  # posts beyond the first of one item
    unexpected: int  # items posted that were not among the changes


def match_posts(change_times: dict[tuple[int, int], float], posts: list[Any],
                ok_answers: dict[int, float]) -> Matched:
    """Match each post (its text holds the item's link, `parse_item_link`) with the change
    (feed, item number) -> moment it came from."""
    by_item: collections.Counter[tuple[int, int]] = collections.Counter()
    latencies: list[float] = []
    fetch_to_post: list[float] = []
    for post in posts:
        key = None
        for word in post.text.split():
            key = parse_item_link(word.strip("()<>"))
            if key:
                break
        if key is None:
            continue
        by_item[key] += 1
        if key in change_times and by_item[key] == 1:
            latencies.append(post.time - change_times[key])
            if key[0] in ok_answers:
                fetch_to_post.append(post.time - ok_answers[key[0]])
    return Matched(latencies, fetch_to_post, posted=sum(1 for key in change_times if by_item[key] >= 1),
                   duplicates=sum(count - 1 for count in by_item.values() if count > 1),
                   unexpected=sum(1 for key in by_item if key not in change_times))


# -- run --once ---------------------------------------------------------------------------------


def measure_once(n: int, farm: FeedFarm, waha: FakeWaha, work: Path, args: argparse.Namespace,
                 py_spy: Path | None) -> list[Cycle]:
    """`channel-bridge run --once` (how cron users and `make run` meet the bridge) over the same
    farm, on a state of its own: first (an empty state), all-304 (nothing changed), 5% (as many
    feeds with one new item each, changed before the run). Measured whole, as the peers are:
    from the start of the process to its exit, imports, state load and final flush included;
    CPU from the kernel (the process and its parsers). Then, apart and never measured, one more
    all-304 run under py-spy: its hot spots go to hot-once-304.txt."""
    once = work / "once"
    shutil.rmtree(once, ignore_errors=True)
    once.mkdir()
    config = once / "config.toml"
    write_config(config, farm.urls(), 86400, waha.url)
    env = {**os.environ, "WAHA_API_KEY": API_KEY}
    command = [sys.executable, "-m", "bridge", "--config", str(config), "run", "--once"]
    rng = random.Random(args.seed + n + 1)
    cycles = []
    for name in ("first", "all-304", "5%"):
        changed: list[int] = []
        if name == "5%":
            changed = sorted(rng.sample(range(n), max(1, round(n * args.changed))))
            farm.change(changed)
        farm.mark()
        posts_before = len(waha.posts)
        wall, cpu, rss, code = run_measured(command, env=env, cwd=once, log=once / "output.log",
                                            timeout=args.cycle_timeout)
        stats = farm.stats()
        cycle = fill(Cycle("run --once", name, n, wall, cpu, 0, rss), stats)
        cycle.posted, cycle.expected = len(waha.posts) - posts_before, len(changed)
        cycle.state_bytes, _ = dir_size(once / "state")
        cycle.extra.update(exit=code, complete=len(stats.per_feed) >= n)
        cycles.append(cycle)
        print(f"  run --once     {name:8s} {wall:7.1f} s wall {cpu:6.1f} s CPU  exit {code}, "
              f"{stats.ok} x 200, {stats.not_modified} x 304, {cycle.posted}/{cycle.expected} posted", flush=True)
    if py_spy is not None:
        raw = work / "profile-once-304.txt"
        run_measured([str(py_spy), "record", "--subprocesses", "--idle", "--rate", "100", "--format", "raw",
                      "--output", str(raw), "--", *command], env=env, cwd=once, log=once / "profile.log",
                     timeout=args.cycle_timeout)
        stacks = Profiler.stacks_of(raw)
        if stacks:
            (work / "hot-once-304.txt").write_text(hot_spots(stacks, 100))
    return cycles


# -- the raw baseline ---------------------------------------------------------------------------


async def _raw_cycle(urls: list[str]) -> int:
    """GET every URL once with the daemon's limits (64 at once, 2 per host), keep-alive."""
    polls = asyncio.Semaphore(DAEMON_POLLS)
    hosts: dict[str, asyncio.Semaphore] = {}
    idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
    total = 0

    async def get(url: str) -> None:
        nonlocal total
        rest = url.removeprefix("http://")
        hostport, _, path = rest.partition("/")
        host, _, port_text = hostport.partition(":")
        key = (host, int(port_text))
        async with hosts.setdefault(host, asyncio.Semaphore(DAEMON_PER_HOST)), polls:
            pool = idle.setdefault(key, [])
            reader, writer = pool.pop() if pool else await asyncio.open_connection(*key)
            writer.write(f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            total += len(await reader.readexactly(length))
            pool.append((reader, writer))

    await asyncio.gather(*(get(url) for url in urls))
    for pool in idle.values():
        for _, writer in pool:
            writer.close()
    return total


def raw_baseline(farm: FeedFarm) -> dict[str, float]:
    """Wall and CPU of the raw client, the farm's CPU per request."""
    farm.mark()
    started = time.time()
    cpu = time.process_time()
    body_bytes = asyncio.run(asyncio.wait_for(_raw_cycle(farm.urls()), 600))
    wall = time.time() - started
    stats = farm.stats()
    return {"wall": wall, "client_cpu": time.process_time() - cpu, "server_cpu": stats.server_cpu,
            "requests": stats.requests, "bytes": body_bytes, "max_per_host": stats.max_per_host}


# -- the peers ----------------------------------------------------------------------------------


def measure_peers(farm: FeedFarm, sample: list[int], work: Path, bindir: Path, args: argparse.Namespace,
                  report: list[str]) -> dict[str, list[PeerCycle]]:
    urls = [farm.url(i) for i in sample]
    rng = random.Random(args.seed)
    results: dict[str, list[PeerCycle]] = {}
    for peer in PEERS:
        peer_dir = work / peer
        shutil.rmtree(peer_dir, ignore_errors=True)
        runner = PeerRunner(peer, urls, peer_dir, bindir, timeout=args.peer_timeout)
        cycles: list[PeerCycle] = []
        for name in ("first", "5%", "all-304"):
            if name == "5%":
                farm.change([sample[i] for i in rng.sample(range(len(sample)), max(1, round(len(sample)
                                                                                          * args.changed)))])
            farm.mark()
            result = runner.cycle()
            stats = farm.stats()
            note = f"{stats.ok} x 200, {stats.not_modified} x 304"
            if result.exit_code is None:
                note += f", killed at {args.peer_timeout:.0f} s"
            elif result.exit_code != 0:
                note += f", exit {result.exit_code}"
            cycles.append(PeerCycle(peer, result.feeds, result.wall, result.cpu, result.peak_rss,
                                    result.exit_code, note))
            print(f"    {peer:10s} {name:8s} {result.wall:7.1f} s wall {result.cpu:6.1f} s CPU  {note}", flush=True)
        results[peer] = cycles
    return results


# -- the table ----------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


HEADER = (f"{'N':>5} {'tool':15} {'cycle':8} {'wall s':>8} {'CPU s':>7} {'CPU ms/feed':>11} {'RSS MB':>11} "
          f"{'state MB':>8} {'write s':>8} {'lat p50/p99 s':>14} {'feeds/s':>8} {'ours vs':>8}")


def row(n: int, cycle: Cycle, ours: Cycle | None = None) -> str:
    approx = "~" if cycle.scaled_from else ""
    rss = f"{cycle.rss_root / MB:.0f}/{cycle.rss_tree / MB:.0f}" if cycle.rss_root else f"{cycle.rss_tree / MB:.0f}"
    write = "-" if cycle.state_write is None else f"{cycle.state_write:.1f}"
    lat = "-" if cycle.latency is None else f"{cycle.latency[0]:.1f}/{cycle.latency[1]:.1f}"
    ratio = "-"
    if ours is not None and cycle.throughput > 0:
        ratio = f"x{ours.throughput / cycle.throughput:.1f}"
    state = "-" if cycle.state_bytes is None else f"{cycle.state_bytes / MB:.1f}"
    return (f"{n:>5} {cycle.tool:15} {cycle.name:8} {approx + fmt(cycle.wall):>8} {approx + fmt(cycle.cpu):>7} "
            f"{cycle.cpu / cycle.feeds * 1000:>11.2f} {rss:>11} {state:>8} {write:>8} {lat:>14} "
            f"{cycle.throughput:>8.1f} {ratio:>8}")


def peer_cycles(n: int, peers: dict[str, list[PeerCycle]]) -> list[Cycle]:
    """Peer cycles scaled to `n` feeds (wall and CPU per feed times n; RSS as measured)."""
    out = []
    for peer, cycles in peers.items():
        for name, result in zip(("first", "5%", "all-304"), cycles, strict=True):
            factor = n / result.feeds
            cycle = Cycle(peer, name, n, result.wall * factor, result.cpu * factor, 0, result.peak_rss,
                          note=result.note)
            cycle.scaled_from = result.feeds if result.feeds != n else None
            out.append(cycle)
    return out


def print_size(n: int, ours: list[Cycle], peers: list[Cycle], baseline: dict[str, float],
               once: list[Cycle] | None = None) -> list[str]:
    lines = [HEADER]
    mine = {c.name: c for c in ours}
    for cycle in ours:
        lines.append(row(n, cycle))
    by_name = {c.name: c for c in once or []}
    rss2email = {c.name: c for c in peers if c.tool == "rss2email"}
    for cycle in once or []:
        lines.append(row(n, cycle))  # compared with the daemon and rss2email in the line below
    for cycle in peers:
        lines.append(row(n, cycle, mine.get(cycle.name)))
    if once:
        # "ours vs" of a run --once line compares it with rss2email's run; here, per feed.
        parts = []
        for name, cycle in by_name.items():
            text = (f"{name} {cycle.cpu / cycle.feeds * 1000:.2f} ms/feed "
                    f"(daemon {mine[name].cpu / mine[name].feeds * 1000:.2f}")
            if name in rss2email:
                peer = rss2email[name]
                text += f", rss2email {peer.cpu / peer.feeds * 1000:.2f}, wall x{peer.wall / cycle.wall:.1f} faster"
            parts.append(text + ")")
        lines.append("      run --once CPU: " + "; ".join(parts) + "; exit codes "
                     + ", ".join(str(c.extra["exit"]) for c in once)
                     + "; 5% posted " + f"{by_name['5%'].posted}/{by_name['5%'].expected}")
    first, idle304, changed = mine["first"], mine["all-304"], mine["5%"]
    lines.append(
        f"      daemon: start-up {first.extra['startup']:.1f} s (empty state), {idle304.extra['startup']:.1f} s "
        f"(loading {first.extra['state_files']} state files); interval T = {changed.extra['interval']} s; "
        f"peak RSS (VmHWM) {max(first.extra['hwm'], changed.extra['hwm']) / MB:.0f} MB; "
        f"exit codes {first.extra['exit']}, {changed.extra['exit']}"
    )
    lines.append(
        f"      idle: {first.extra['idle_rss'] / MB:.0f} MB RSS after the first cycle, CPU "
        f"{first.extra['idle_cpu']:.2f} s in {first.extra['idle_seconds']:.0f} s (no poll due); steady state at "
        f"T = {changed.extra['interval']} s: {changed.extra['steady_rss'] / MB:.0f} MB "
        f"({changed.extra['steady_rss_tree'] / MB:.0f} MB with the parser), "
        f"{changed.cpu / changed.wall:.0%} of one core"
    )
    ftp = changed.fetch_to_post
    lines.append(
        f"      5% cycle: {changed.posted}/{changed.expected} changed items posted, "
        f"{changed.extra['duplicates']} duplicates, {changed.extra['unexpected']} unexpected posts; "
        f"item-to-post max {fmt(changed.extra.get('latency_max'))} s "
        f"(target <= T + 2 = {changed.extra['interval'] + 2} s);"
        f" fetch-to-post p50/p99 {fmt(ftp[0] if ftp else None, '.2f')}/{fmt(ftp[1] if ftp else None, '.2f')} s"
    )
    lines.append(
        "      polls: " + ", ".join(f"{c.name} {c.ok} x 200 + {c.not_modified} x 304, max {c.max_per_host}/host"
                                   for c in ours)
        + f"; state write path {fmt(changed.state_save)} s in save_feed/outbox (py-spy)"
    )
    per_request = baseline["server_cpu"] / max(baseline["requests"], 1)
    lines.append(
        f"      farm: raw asyncio client (64 at once, 2/host) {baseline['wall']:.1f} s wall for {n} GETs: the "
        f"latency floor of a cycle; server CPU {per_request * 1e6:.0f} us/request (capacity ~"
        f"{1 / per_request:.0f} req/s on one core); in our cycles the server used "
        + ", ".join(f"{c.server_cpu:.1f} s CPU in {c.wall:.0f} s" for c in ours)
        + (" -> not the bottleneck" if all(c.server_cpu < 0.5 * c.wall for c in ours) else " -> CHECK: busy server")
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,2000,8000", help="feed counts, comma-separated")
    parser.add_argument("--quick", action="store_true", help="200 feeds, a 30-feed peer sample")
    parser.add_argument("--hosts", type=int, default=250, help="loopback hosts 127.0.1.1..N (max 250)")
    parser.add_argument("--latency", default="0.05-0.15", help="answer latency range, seconds")
    parser.add_argument("--slow-latency", default="1-2", help="latency range of the slow feeds, seconds")
    parser.add_argument("--slow-share", type=float, default=0.05, help="share of slow feeds")
    parser.add_argument("--changed", type=float, default=0.05, help="share of feeds changed in the 5%% cycle")
    parser.add_argument("--peer-sample", type=int, default=200, help="feeds the peers run on (scaled to N)")
    parser.add_argument("--peer-timeout", type=float, default=300.0, help="seconds per peer cycle")
    parser.add_argument("--no-peers", action="store_true", help="measure channel-bridge only")
    parser.add_argument("--no-profile", action="store_true", help="no py-spy (no state-write time)")
    parser.add_argument("--no-once", action="store_true", help="leave out the three `run --once` cycles")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle measured after the first cycle")
    parser.add_argument("--interval", type=int, default=50,
                        help="interval T of the all-304 and 5%% cycles, seconds (the 5%% cycle lasts T)")
    parser.add_argument("--cycle-timeout", type=float, default=600.0, help="seconds one daemon cycle may take")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=BENCH / ".scale", help="work files, logs, profiles")
    args = parser.parse_args(argv)
    # A SIGTERM unwinds like an exception, so the daemon, the farm and the fake are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    if args.quick:
        args.sizes, args.peer_sample, args.interval = "200", 30, 20
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    low, high = (float(x) for x in args.latency.split("-"))
    slow_low, slow_high = (float(x) for x in args.slow_latency.split("-"))
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.time()
    py_spy: Path | None = None
    bindir: Path | None = None
    problem = ""
    if not (args.no_peers and args.no_profile):
        print("peers venv: installing rss2email 3.14, feed2exec 0.23, py-spy (once) ...", flush=True)
        bindir, problem = ensure_peers_venv(args.out / "peers-venv", args.out / "peers-install.log")
        if bindir is None:
            print(f"peers venv: install failed: {problem}", flush=True)
        elif not args.no_profile and (bindir / "py-spy").exists():
            py_spy = bindir / "py-spy"
    report: list[str] = []
    peers: dict[str, list[PeerCycle]] | None = None
    output: list[str] = [f"channel-bridge scale bench, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
                         f"latency {args.latency} s, {args.slow_share:.0%} of feeds {args.slow_latency} s; "
                         f"{args.hosts} loopback hosts; RSS MB = daemon/tree; write s = py-spy in bridge.store "
                         "writes; ~ = peer measured on a sample, scaled to N"]
    summary: dict[str, Any] = {}
    for n in sizes:
        print(f"\nN = {n}: starting the farm ...", flush=True)
        work = args.out / f"n{n}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        spec = FarmSpec(feeds=n, hosts=min(args.hosts, n), latency=(low, high), slow_share=args.slow_share,
                        slow_latency=(slow_low, slow_high), seed=args.seed, lifetime=3 * 3600)
        waha = FakeWaha(api_key=API_KEY).start()
        try:
            with FeedFarm(spec) as farm:
                baseline = raw_baseline(farm)
                print(f"  raw client: {baseline['wall']:.1f} s for {n} GETs", flush=True)
                ours = measure_daemon(n, farm, waha, work, args, py_spy, report)
                for cycle in ours:
                    print(f"  channel-bridge {cycle.name:8s} {cycle.wall:7.1f} s wall {cycle.cpu:6.1f} s CPU",
                          flush=True)
                once = [] if args.no_once else measure_once(n, farm, waha, work, args, py_spy)
                if not args.no_peers and bindir is not None and peers is None:
                    sample_size = min(n, args.peer_sample)
                    sample = list(range(0, n, max(1, n // sample_size)))[:sample_size]
                    print(f"  peers on {len(sample)} feeds ...", flush=True)
                    peers = measure_peers(farm, sample, args.out / "peers", bindir, args, report)
        finally:
            waha.close()
        scaled = peer_cycles(n, peers) if peers else []
        lines = print_size(n, ours, scaled, baseline, once)
        output += ["", *lines]
        summary[str(n)] = {"ours": [dataclasses.asdict(c) for c in ours], "once": [dataclasses.asdict(c) for c in once],
                           "baseline": baseline}
        print("\n".join(lines), flush=True)
    if problem:
        output.append(f"peers: not measured: {problem}")
    output += report
    output.append(f"\ntotal bench time {time.time() - started:.0f} s; logs and profiles (hot-*.txt) in {args.out}")
    text = "\n".join(output)
    print("\n" + "=" * 40 + "\n" + text)
    (args.out / "table.txt").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
