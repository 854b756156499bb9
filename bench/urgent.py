"""The urgent path under load: how long an urgent alert takes from its feed to the Channel on a
busy instance, beside a routine one measured in the same run (a benchmark, not a test;
tests/test_urgent_polls.py and tests/test_outbox.py assert the order and the retries).

Usage: .venv/bin/python bench/urgent.py [--feeds 400] [--hosts 4] [--slow-share 0.25]
                                       [--interval 30] [--rounds 8] [--backlog 40] [--send-delay 0.5]

The real `channel-bridge run` as a subprocess polls a feed farm (`scale_feeds.py`: `--feeds`
comune feeds on `--hosts` loopback hosts, a `--slow-share` of them answering in 3-6 s, the
others in 50-150 ms), every feed every `--interval` seconds. Feed 0 is `urgent = true` and shares
its host with slow feeds. The WhatsApp channel is a fake WAHA that takes `--send-delay` seconds
per post, and at the start of the measure `--backlog` routine feeds each get a new item, so
the channel has a queue to work through. Then, `--rounds` times, an urgent item (feed 0) and a
routine item (another feed of the same host) appear at the same random moment; each is timed
from the moment it appears in its feed to the moment the fake WAHA accepts its post.

Printed: the publication-to-post latency of the urgent and the routine alerts, p50 and max,
and the goal for the urgent one (within one poll interval of its feed plus 5 s). Bounded:
every wait has a limit, the farm and the fake stop by themselves, the daemon is stopped.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemons import Daemon, bridge_environment
from scale_feeds import FarmSpec, FeedFarm, parse_item_link
from servers.waha import FakeWaha

API_KEY = "urgent-bench-key"
CHAT = "120363000000000077@newsletter"
URGENT_FEED = 0


def write_config(path: Path, farm: FeedFarm, waha: FakeWaha, interval: int) -> None:
    lines = ["[bridge]", 'state_dir = "state"', "",
             "[defaults]", f'interval = "{interval}s"', 'channels = ["whatsapp"]', 'link_domains = ["example.it"]',
             'fetch_article = "never"', ""]
    for index, url in enumerate(farm.urls()):
        lines += ["[[feeds]]", f'id = "c{index:05d}"', f'url = "{url}"']
        if index == URGENT_FEED:
            lines.append("urgent = true")
        lines.append("")
    lines += ["[channels.whatsapp]", 'type = "waha"', f'url = "{waha.url}"', f'chat_id = "{CHAT}"',
              'api_key = "env:WAHA_API_KEY"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def wait(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(condition())  # type: ignore[operator]


def posted_at(waha: FakeWaha) -> dict[tuple[int, int], float]:
    """When each farm item's post was accepted, by (feed, item number)."""
    times: dict[tuple[int, int], float] = {}
    for post in waha.posts:
        for word in post.text.split():
            key = parse_item_link(word.strip("()<>*_"))
            if key is not None:
                times.setdefault(key, post.time)
    return times


def summary(name: str, latencies: list[float]) -> str:
    if not latencies:
        return f"{name:<8} no post"
    return (f"{name:<8} p50 {statistics.median(latencies):5.1f} s   max {max(latencies):5.1f} s   "
            f"({len(latencies)} alerts)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=400)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--slow-share", type=float, default=0.25)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--backlog", type=int, default=40)
    parser.add_argument("--send-delay", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    interval = args.interval
    lifetime = 600 + args.rounds * interval * 3
    spec = FarmSpec(feeds=args.feeds, hosts=args.hosts, slow_share=args.slow_share, slow_latency=(3.0, 6.0),
                    lifetime=lifetime)
    same_host = [i for i in range(1, args.feeds) if spec.host(i) == spec.host(URGENT_FEED)]
    with tempfile.TemporaryDirectory(prefix="urgent-bench-") as tmp, FeedFarm(spec) as farm, \
            FakeWaha(api_key=API_KEY) as waha:
        waha.send_delay = args.send_delay
        work = Path(tmp)
        config = work / "config.toml"
        write_config(config, farm, waha, interval)
        farm.mark()
        daemon = Daemon(config, work / "daemon.log", env=bridge_environment({"WAHA_API_KEY": API_KEY}),
                        cwd=work)
        try:
            if not wait(lambda: len(farm.stats().per_feed) == args.feeds, 120):
                print("the first polls did not complete within 120 s; the daemon's log ends:\n"
                      + daemon.log()[-2000:], file=sys.stderr)
                return 1
            time.sleep(2)
            backlog = rng.sample([i for i in range(1, args.feeds) if i not in same_host[:args.rounds]],
                                 args.backlog)
            farm.change(backlog)
            wait(lambda: len(farm.changes()) >= len(backlog), 10)  # the farm adds them in its own loop
            urgent_lat: list[float] = []
            routine_lat: list[float] = []
            for round_ in range(args.rounds):
                routine_feed = same_host[round_ % len(same_host)]
                moment = time.time() + rng.uniform(0.5, interval - 0.5)
                before = {(f, n) for f, n, _ in farm.changes()}
                farm.change([URGENT_FEED, routine_feed], [moment, moment])
                time.sleep(max(0.0, moment - time.time()) + 0.2)  # the farm adds them at `moment`
                wanted = {(f, n): at for f, n, at in farm.changes()
                          if (f, n) not in before and f in (URGENT_FEED, routine_feed)}
                if len(wanted) != 2:
                    print(f"the farm did not make the round's two items: {wanted}", file=sys.stderr)
                    return 1
                wait(lambda keys=set(wanted): keys <= set(posted_at(waha)), 3 * interval + 60)
                times = posted_at(waha)
                for (feed, number), at in wanted.items():
                    if (feed, number) in times:
                        (urgent_lat if feed == URGENT_FEED else routine_lat).append(times[(feed, number)] - at)
                if not daemon.running():
                    print("the daemon stopped by itself", file=sys.stderr)
                    return 1
        finally:
            code = daemon.stop(timeout=60)
        stats = farm.stats()
        print(f"{args.feeds} feeds on {args.hosts} hosts ({args.slow_share:.0%} answering in 3-6 s), "
              f"interval {interval} s, backlog {args.backlog} posts at {args.send_delay} s each, "
              f"{args.rounds} rounds; {os.cpu_count()} cores")
        print(f"requests answered: {sum(stats.per_feed.values())}, daemon exit {code}")
        print(f"posts accepted by the fake WAHA: {len(waha.posts)}")
        if not urgent_lat:
            print("the daemon's log ends:\n" + daemon.log()[-3000:])
        print("publication-to-post latency:")
        print("  " + summary("urgent", urgent_lat))
        print("  " + summary("routine", routine_lat))
        goal = interval + 5
        met = bool(urgent_lat) and max(urgent_lat) <= goal and len(urgent_lat) == args.rounds
        print(f"  goal for urgent: at most {goal} s (one interval + 5 s): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
