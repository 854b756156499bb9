"""The *Pubblicati* page's search and CSV export over a large history (a benchmark, not a test).

Usage: .venv/bin/python bench/console_history.py [--posts 100000] [--months 24] [--dir DIR]

A state directory is given `--posts` posts spread evenly over `--months` months (monthly files
written by `History.append`, as the daemon writes them), opened read-only as `Store`. Then,
each 20 times, server side, what a request of the page or the export costs: the first page
(no filter), the first page of a search for words that match a post in a hundred (the search
reads month after month until its page is full), the first page of a search for words found
nowhere without dates (the worst case: every month is read), the same with the digests of the
past months made (`bridge.console.month_cache`: only the current month is read), the same restricted to one month
by its days, and the whole CSV export of one month. Printed: median and p95 in milliseconds,
and the months read per request.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bridge.console import published
from bridge.console.month_cache import PastMonths
from bridge.console.published import HistoryQuery
from bridge.models import Post
from bridge.store import History, Store

ROME = ZoneInfo("Europe/Rome")


def fill(state_dir: Path, posts: int, months: int) -> datetime:
    """Write the posts, a month's file at a time; return the moment after the last."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(days=30.4 * months) / posts
    history = History(state_dir, read_only=False)
    by_month: dict[str, list[Post]] = {}
    for n in range(posts):
        at = start + step * n
        title = f"Avviso {n}: " + ("lavori stradali in via Roma" if n % 100 == 0 else "chiusura scuole per neve")
        by_month.setdefault(f"{at:%Y-%m}", []).append(Post(
            f"{n:016x}", "whatsapp" if n % 3 else "telegram", f"feed{n % 40}", title,
            f"https://www.comune.example.it/notizie/{n}", at, f"true_120363@newsletter_{n}"))
    for chosen in by_month.values():
        history.append(chosen)
    return start + step * posts


def measure(name: str, work: Callable[[], object], reads: list[str], rounds: int = 20) -> None:
    times = []
    for _ in range(rounds):
        reads.clear()
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{name:<44} median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  months read {len(reads)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        state_dir = args.dir or Path(scratch)
        state_dir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        end = fill(state_dir, args.posts, args.months)
        print(f"{args.posts} posts over {args.months} months written in {time.perf_counter() - began:.1f} s")
        store = Store.open(state_dir, read_only=True)
        reads: list[str] = []

        def read_month(month: str, keep: Callable[[bytes], bool] | None) -> list[Post]:
            reads.append(month)
            return store.month_posts(month, keep)

        last = (end - timedelta(days=1)).astimezone(ROME).date()
        one_month = HistoryQuery(text="niente", first_day=last.replace(day=1), last_day=last)
        months = store.history_months()
        measure("page 1, no filter", lambda: published.search(HistoryQuery(), months, read_month, ROME), reads)
        measure("page 1, 'via roma' (1 post in 100)",
                lambda: published.search(HistoryQuery(text="via roma"), months, read_month, ROME), reads)
        measure("page 1, words found nowhere, no dates",
                lambda: published.search(HistoryQuery(text="niente"), months, read_month, ROME), reads, rounds=5)
        digests = PastMonths(store.month_file, lambda month: store.month_posts(month), lambda: end)
        began = time.perf_counter()
        for month in months:
            digests(month)
        print(f"month digests made in {(time.perf_counter() - began) * 1000:.0f} ms: "
              f"{len(digests.kept())} past months, {digests.nbytes / 1024 / 1024:.1f} MB")
        measure("page 1, words found nowhere, no dates, digests",
                lambda: published.search(HistoryQuery(text="niente"), months, read_month, ROME, digests=digests),
                reads)
        measure("page 1, words found nowhere, one month",
                lambda: published.search(one_month, months, read_month, ROME), reads)
        month = HistoryQuery(first_day=last.replace(day=1), last_day=last)
        measure("CSV of one month", lambda: published.csv_rows(
            published.matching(month, months, read_month, ROME), ROME, {}), reads)
        store.close()



if __name__ == "__main__":
    main()
