"""The staff console at the scale of every Italian comune (a benchmark, not a test: it prints
figures and judges nothing).

Usage (from the repository, with the test extras installed: `make test` does it; Debian's
`chromium` for the second part, as the browser tests use it):

    .venv/bin/python bench/console.py                      # both parts, about 10 minutes on 2 cores
    .venv/bin/python bench/console.py --no-latency         # the pages only, about 2 minutes
    .venv/bin/python bench/console.py --live-feeds 2000 --interval 30   # a shorter second part

Part 1, pages, server side. A config of `--feeds` feeds (bench/scale.py's `write_config`),
their poll states (2% failing), `--queued` alerts waiting, and `--posts` posts over 24 months of
history (bench/console_history.py's `fill`), served by the real `Console` on loopback in this
process. Every GET route of role "viewer" in `bridge.console.server.ROUTES` is requested
`--rounds` times with each of its example query strings (`EXAMPLES`; a route without one is
requested bare and flagged, so a page added later is benched without editing this file); the
time is taken by a middleware put in front of the console's own, from the request's arrival to
the handler's return (a streamed CSV: to its last byte). Printed per example: median and p95 in
milliseconds, with the search's month digests (`bridge.console.month_cache`) and without them
(the history files read at every request), the first request after a start (digests still to
be made) apart, and the digests' memory.

Part 2, item-to-post latency under a browser. The real daemon (`channel-bridge run`, a
subprocess) on `--live-feeds` feeds of bench/scale_feeds.py's loopback farm, the fake WAHA of
the tests, the same 100,000 posts of history, the console on. After a first cycle (every item
recorded as seen) the daemon is restarted with `--interval` T; then two windows of T seconds
each, in which `--changes` feeds get a new item at random moments: the first with no browser,
the second while Debian's headless Chromium (Playwright through `executable_path`, as
tests/console/browser.py drives it) logged in as a viewer loads a console page every second,
each page in turn. Printed: the latency from an item appearing in its feed to its post reaching
the fake WAHA (median, p95, max) in both windows, against the bound T + 2 s of the spec, and
what the browser loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# tests/ first: its package `console` (the browser, the harness) is not this file.
sys.path[:0] = [str(ROOT / "tests"), str(BENCH)]

import httpx  # noqa: E402
from aiohttp import web  # noqa: E402
from console.browser import BrowserMissingError, chromium  # noqa: E402
from console.harness import FakeClockDaemon, delivery  # noqa: E402
from console_history import fill  # noqa: E402
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from scale import API_KEY, Daemon, match_posts, percentile, wait_all_polled, wait_cycle, write_config  # noqa: E402
from scale_feeds import FarmSpec, FeedFarm  # noqa: E402
from servers.feeds import rss  # noqa: E402
from servers.waha import FakeWaha  # noqa: E402

from bridge.config import load_config  # noqa: E402
from bridge.console.accounts import AccountBook  # noqa: E402
from bridge.console.month_cache import PastMonths  # noqa: E402
from bridge.console.server import ROUTES, Console  # noqa: E402
from bridge.models import FeedState  # noqa: E402
from bridge.store import Store  # noqa: E402

USER, PASSWORD = "bench", "una password lunga per il bench"
MB = 1024 * 1024


def examples(last_month: str) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """The query strings each viewer page is benched with; `last_month` ("YYYY-MM") is the last
    month before the current one, whole in the history. A page without parameters has one bare
    example: a route missing from here is benched bare and flagged."""
    year, month = (int(x) for x in last_month.split("-"))
    first = datetime(year, month, 1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    days = {"dal": f"{first:%Y-%m-%d}", "al": f"{last:%Y-%m-%d}"}
    return {
        "/": [("every feed and channel", {})],
        "/coda": [("every alert waiting", {})],
        "/pubblicati": [
            ("first page", {}),
            ("words in 1 post in 100", {"q": "via roma"}),
            ("words found nowhere, no dates", {"q": "niente"}),
            ("words found nowhere, one month", {"q": "niente", **days}),
            ("one feed, page 3", {"feed": "feed7", "pagina": "3"}),
        ],
        "/pubblicati.csv": [("CSV of one month", days)],
        "/pubblicati/riepilogo": [("this month", {}), ("a past month", {"mese": last_month})],
        "/anteprima": [("the form", {})],
        "/anteprima/feed": [("a configured feed, 5 newest", {"feed": "c00000"}),
                            ("a configured feed, 20 newest", {"feed": "c00000", "quanti": "20"})],
    }


def page_urls(now: datetime) -> list[str]:
    """Every viewer GET route with each of its examples (bare without one), as paths with their
    query strings: what the browser of part 2 goes through, in turn."""
    last = (now.replace(day=1) - timedelta(days=1))
    table = examples(f"{last:%Y-%m}")
    urls = []
    for route in ROUTES:
        if route.method == "GET" and route.access == "viewer":
            for _, params in table.get(route.path, [("bare", {})]):
                urls.append(route.path + (f"?{urlencode(params)}" if params else ""))
    return urls


def machine_facts() -> list[str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        load = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, StopIteration):
        memory, load = "?", ["?"]
    return [f"command: {' '.join([Path(sys.executable).name, *sys.argv])}",
            f"machine: {sys.platform} {platform.release()}, {model}, {__import__('os').cpu_count()} CPUs, "
            f"{int(memory) // 1024 if memory != '?' else '?'} MB RAM, load average {' '.join(load)} at start",
            f"Python {sys.version.split()[0]}; started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def console_section(port: int) -> str:
    return f'\n[console]\nlisten = "127.0.0.1:{port}"\n'


# -- part 1: the pages, server side ---------------------------------------------------------------


ANTEPRIMA_FEED = "anteprima.xml"


def build_state(work: Path, feeds: int, posts: int, queued: int, now: datetime) -> Path:
    """A config of `feeds` feeds and its state: poll states, `queued` alerts waiting, `posts`
    posts of history. Return the config's path."""
    config_path = work / "config.toml"
    urls = [f"http://{FarmSpec(feeds).host(n)}:8080/feed/{n}.xml" for n in range(feeds)]
    # The first feed is a file beside the config, so that *Anteprima* of a configured feed reads
    # and parses a real feed of 20 items in part 1 (no farm runs then).
    urls[0] = ANTEPRIMA_FEED
    (work / ANTEPRIMA_FEED).write_text(rss([{
        "title": f"Avviso {n}: chiusura della strada provinciale {n}", "guid": f"a{n}",
        "link": f"https://www.comune.example.it/notizie/anteprima-{n}",
        "description": "Dalle 8 alle 18 il tratto resta chiuso al traffico per lavori di asfaltatura. "
                       "Il percorso alternativo passa per via Roma.",
        "pubDate": now - timedelta(hours=n)} for n in range(20)]), encoding="utf-8")
    write_config(config_path, urls, 300, "http://127.0.0.1:9")
    with config_path.open("a") as out:
        out.write(console_section(8470))
    state_dir = work / "state"
    state_dir.mkdir()
    fill(state_dir, posts, 24)
    config = load_config(config_path, env={}, resolve_secrets=False)
    store = Store.open(state_dir)
    try:
        chance = random.Random(13)
        for n, feed in enumerate(config.feeds):
            failing = n % 50 == 0
            polled = now - timedelta(seconds=chance.uniform(0, 300))
            store.save_feed(FeedState(
                feed.id, etag=f'"{n}"', primed=("whatsapp",), last_poll=polled,
                last_success=polled - timedelta(hours=6) if failing else polled,
                last_new_item=now - timedelta(days=chance.uniform(0, 20)), failures=5 if failing else 0,
                failing_since=polled - timedelta(hours=6) if failing else None,
                last_error="HTTP 503 Service Unavailable" if failing else None,
                newest_item=now - timedelta(days=chance.uniform(0, 20)), usual_gap=86400.0), now=now)
        store.flush(force=True)
        waiting = [dataclasses.replace(
            delivery(f"bench-{n:05d}", "whatsapp", f"Avviso {n}: *chiusura* della strada provinciale",
                     "Dalle 8 alle 18 il tratto resta chiuso al traffico per lavori.",
                     link=f"https://www.comune.example.it/notizie/coda-{n}", order=float(n)),
            feed_id=config.feeds[n % feeds].id) for n in range(queued)]
        store.add_deliveries(waiting)
    finally:
        store.close()
    AccountBook(state_dir).add(USER, "viewer", PASSWORD)
    return config_path


class TimedConsole:
    """The real `Console` over a real store, on its own loop in a thread, with a middleware in
    front of the console's own that times each request server side."""

    def __init__(self, config_path: Path, now: datetime) -> None:
        config = load_config(config_path, env={}, resolve_secrets=False)
        self.store = Store.open(config.bridge.state_dir)
        self.console = Console(FakeClockDaemon(config, self.store, wall=now))
        self.times: list[float] = []
        self.console.app.middlewares.insert(0, self._timed)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.console.start("127.0.0.1", 0), self.loop).result(60)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.console.port}", timeout=120)
        answer = self.client.post("/login", data={"name": USER, "password": PASSWORD})
        if answer.status_code != 303:
            raise RuntimeError(f"login refused: {answer.status_code}")

    @web.middleware
    async def _timed(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        began = time.perf_counter()
        try:
            return await handler(request)
        finally:
            self.times.append((time.perf_counter() - began) * 1000)

    def get(self, path: str, params: dict[str, str]) -> tuple[int, float]:
        """One request; its status and its server-side milliseconds."""
        answer = self.client.get(path, params=params)
        return answer.status_code, self.times[-1]

    def close(self) -> None:
        self.client.close()
        asyncio.run_coroutine_threadsafe(self.console.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.store.close()


def bench_pages(args: argparse.Namespace, work: Path, now: datetime) -> list[str]:
    began = time.perf_counter()
    config_path = build_state(work, args.feeds, args.posts, args.queued, now)
    lines = [f"part 1: {args.feeds} feeds ({args.feeds // 50} failing), {args.queued} alerts waiting, "
             f"{args.posts} posts over 24 months (state built in {time.perf_counter() - began:.0f} s); "
             f"server-side ms over {args.rounds} requests each; goal p95 < 200 ms",
             f"{'':<65} {'month digests on':^22}  {'off':^15}",
             f"{'example':<30} {'request':<34} {'first':>6} {'median':>7} {'p95':>6}   {'median':>7} {'p95':>6}"]
    print("\n".join(lines), flush=True)
    served = TimedConsole(config_path, now)
    try:
        current = f"{now:%Y-%m}"
        months = served.store.history_months()
        past = [m for m in months if m < current]
        table = examples(past[-1] if past else current)
        routes = [route for route in ROUTES if route.method == "GET" and route.access == "viewer"]
        store, daemon = served.store, served.console.daemon

        def fresh() -> PastMonths:
            """Digests as a start leaves them: none made yet."""
            return PastMonths(store.month_file, lambda month: store.month_posts(month), daemon.now)

        for route in routes:
            chosen = table.get(route.path)
            flag = "" if chosen else "  (no example: bare)"
            for label, params in chosen or [("bare", {})]:
                name = f"{route.path}{'?' + urlencode(params) if params else ''}"
                # Off: no digest at all, every month read from its file (as before the digests);
                # on: the digests as a start leaves them (none), the first request apart. The two
                # alternate request by request, so that a busy machine weighs on both alike.
                statuses: set[int] = set()
                served.console.past_months = lambda month: None
                statuses.add(served.get(route.path, params)[0])  # the templates loaded, the files cached
                digests = fresh()
                served.console.past_months = digests
                status, first = served.get(route.path, params)
                statuses.add(status)
                figures: dict[str, list[float]] = {"on": [], "off": []}
                for _ in range(args.rounds):
                    for mode in ("off", "on"):
                        served.console.past_months = digests if mode == "on" else (lambda month: None)
                        status, ms = served.get(route.path, params)
                        statuses.add(status)
                        figures[mode].append(ms)
                on, off = figures["on"], figures["off"]
                bad = "" if statuses == {200} else f"  status {sorted(statuses)}"
                lines.append(f"{label:<30} {name[:34]:<34} {first:6.1f} {statistics.median(on):7.1f} "
                             f"{percentile(on, 0.95):6.1f}   {statistics.median(off):7.1f} "
                             f"{percentile(off, 0.95):6.1f}{bad}{flag}")
                print(lines[-1], flush=True)
        # The digests' memory at this history: every past month made and kept.
        without = fresh()
        tracemalloc.start()
        for month in past:
            without(month)
        traced, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        lines.append(f"month digests at {args.posts} posts: {len(without.kept())} past months kept, "
                     f"{without.nbytes / MB:.1f} MB counted (budget {without.budget // MB} MB), "
                     f"{traced / MB:.1f} MB allocated (tracemalloc)")
    finally:
        served.close()
    return lines


# -- part 2: item-to-post latency while a browser loads pages -------------------------------------


class BrowserLoad:
    """Headless Chromium, logged in as a viewer, loading one console page a second, each of
    the viewer pages in turn, until stopped (in its own thread: Playwright's sync API)."""

    def __init__(self, base: str, paths: list[str]) -> None:
        self.base, self.paths = base, paths
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.loads: list[tuple[str, float, int]] = []  # path, seconds, status
        self.error: Exception | None = None
        self.version = "?"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with chromium() as browser:
                self.version = browser.version
                page = browser.new_page()
                page.goto(f"{self.base}/login")
                page.fill("input[name=name]", USER)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{self.base}/")
                self.ready.set()
                tick = time.monotonic()
                for n in range(10**9):
                    if self.stopping.is_set():
                        break
                    path = self.paths[n % len(self.paths)]
                    began = time.monotonic()
                    if path.split("?")[0].endswith(".csv"):  # a download, not a page: fetched with the session
                        status = page.context.request.get(f"{self.base}{path}").status
                    else:
                        answer = page.goto(f"{self.base}{path}")
                        status = answer.status if answer else 0
                    self.loads.append((path.split("?")[0], time.monotonic() - began, status))
                    tick += 1.0
                    self.stopping.wait(max(0.0, tick - time.monotonic()))
        except (PlaywrightError, BrowserMissingError) as exc:  # printed by the bench, which goes on
            self.error = exc
            self.ready.set()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(120)


def window(farm: FeedFarm, waha: FakeWaha, feeds: int, changes: int, interval: int,
           chance: random.Random) -> tuple[list[float], int, int, int]:
    """One interval in which `changes` feeds get an item each at a random moment; wait for
    every post (at most another interval and 30 s). Return the latencies, posted, expected,
    duplicates."""
    changed = sorted(chance.sample(range(feeds), changes))
    start = time.time()
    farm.mark()
    moments = [chance.uniform(start + 0.5, start + interval - 0.5) for _ in changed]
    posts_before = len(waha.posts)
    farm.change(changed, moments)
    deadline = start + 2 * interval + 30
    while time.time() < deadline and (time.time() < start + interval or len(waha.posts) - posts_before < changes):
        time.sleep(0.2)
    wanted = set(changed)
    change_times = {(feed, number): at for feed, number, at in farm.changes() if feed in wanted and at >= start}
    matched = match_posts(change_times, waha.posts[posts_before:], farm.stats().ok_answers)
    return matched.latencies, matched.posted, len(change_times), matched.duplicates


def bench_latency(args: argparse.Namespace, work: Path) -> list[str]:
    n, interval = args.live_feeds, args.interval
    port = free_port()
    config = work / "config.toml"
    state = work / "state"
    state.mkdir()
    fill(state, args.posts, 24)
    spec = FarmSpec(feeds=n, hosts=min(250, n), lifetime=3 * 3600)
    lines = [f"part 2: the daemon on {n} loopback feeds, interval {interval} s, {args.posts} posts of history, "
             f"the console on; {args.changes} new items per window"]
    waha = FakeWaha(api_key=API_KEY).start()
    try:
        with FeedFarm(spec) as farm:
            # The first cycle, every item recorded as seen (a day-long interval: no scheduled poll in it).
            write_config(config, farm.urls(), 86400, waha.url)
            with config.open("a") as out:
                out.write(console_section(port))
            subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), "user", "add", USER,
                            "--role", "viewer"], input=f"{PASSWORD}\n", text=True, check=True,
                           capture_output=True, cwd=work)
            farm.mark()
            print(f"  first cycle over {n} feeds ...", flush=True)
            daemon = Daemon(config, work / "daemon.log", None, work / "profile.txt")
            try:
                wait_cycle(farm, daemon, n, args.cycle_timeout)
            finally:
                daemon.stop()
            write_config(config, farm.urls(), interval, waha.url)
            with config.open("a") as out:
                out.write(console_section(port))
            farm.mark()
            print(f"  restarted with interval {interval} s: the start-up pass ...", flush=True)
            daemon = Daemon(config, work / "daemon.log", None, work / "profile.txt")
            try:
                wait_all_polled(farm, daemon, n, args.cycle_timeout)
                if not daemon.alive():
                    raise RuntimeError(f"channel-bridge exited; see {work / 'daemon.log'}")
                chance = random.Random(args.seed)
                print("  window without a browser ...", flush=True)
                quiet = window(farm, waha, n, args.changes, interval, chance)
                base = f"http://127.0.0.1:{port}"
                paths = page_urls(datetime.now(UTC))
                browser = BrowserLoad(base, paths)
                browser.ready.wait(120)
                if browser.error is not None:
                    raise RuntimeError(f"the browser could not start or log in: {browser.error}")
                print("  window with the browser loading a page a second ...", flush=True)
                loaded = window(farm, waha, n, args.changes, interval, chance)
                browser.stop()
                alive = daemon.alive()
            finally:
                daemon.stop()
    finally:
        waha.close()
    bound = interval + 2
    for name, (latencies, posted, expected, duplicates) in (("no browser", quiet), ("browser, 1 page/s", loaded)):
        if latencies:
            lines.append(f"  {name:<20} item to post: median {statistics.median(latencies):5.1f} s  "
                         f"p95 {percentile(latencies, 0.95):5.1f} s  max {max(latencies):5.1f} s "
                         f"(bound {bound} s); posted {posted}/{expected}, duplicates {duplicates}")
        else:
            lines.append(f"  {name:<20} nothing posted ({expected} expected)")
    statuses = sorted({status for _, _, status in browser.loads})
    per_path: dict[str, list[float]] = {}
    for path, seconds, _ in browser.loads:
        per_path.setdefault(path, []).append(seconds)
    lines.append(f"  the browser (Chromium {browser.version}) loaded {len(browser.loads)} pages, statuses {statuses}; "
                 "load seconds, median per page: "
                 + ", ".join(f"{path} {statistics.median(s):.2f}" for path, s in per_path.items() if s))
    if browser.error is not None:
        lines.append(f"  the browser stopped early: {browser.error}")
    lines.append(f"  daemon alive through both windows: {alive}")
    print("\n".join(lines), flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=8000, help="feeds configured (part 1)")
    parser.add_argument("--posts", type=int, default=100_000, help="posts of history over 24 months")
    parser.add_argument("--queued", type=int, default=300, help="alerts waiting in the outbox (part 1)")
    parser.add_argument("--rounds", type=int, default=30, help="requests per page and query (part 1)")
    parser.add_argument("--live-feeds", type=int, default=8000, help="feeds the daemon polls (part 2)")
    parser.add_argument("--interval", type=int, default=60, help="the daemon's poll interval T (part 2)")
    parser.add_argument("--changes", type=int, default=40, help="new items per window (part 2)")
    parser.add_argument("--cycle-timeout", type=float, default=600.0, help="seconds a first cycle may take")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-pages", action="store_true", help="leave out part 1")
    parser.add_argument("--no-latency", action="store_true", help="leave out part 2")
    args = parser.parse_args(argv)
    output = machine_facts()
    print("\n".join(output), flush=True)
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="console-bench-") as scratch:
        if not args.no_pages:
            (Path(scratch) / "pages").mkdir()
            output += bench_pages(args, Path(scratch) / "pages", now)
        if not args.no_latency:
            (Path(scratch) / "live").mkdir()
            output += bench_latency(args, Path(scratch) / "live")
    print("\n" + "=" * 40 + "\n" + "\n".join(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
