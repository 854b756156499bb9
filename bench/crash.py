"""Crash test, the long version: SIGKILL the real daemon N times at random moments (a benchmark,
not a test; tests/test_crash.py runs the same harness with 10 kills).

Usage: .venv/bin/python bench/crash.py [--kills 200] [--seed 1] [--no-webhook] [--delay 0.1]

The daemon (`channel-bridge run`, interval 1 s) polls a loopback feed that gains an item every
0.4 s and posts to a fake WAHA (every answer `--delay` seconds late, so kills land during sends)
and, unless `--no-webhook`, to a webhook receiver that deduplicates by `Idempotency-Key`. It is
killed `--kills` times, each 0.3 to 2.5 s (seeded) after its start, and restarted; a last
daemon drains and stops on SIGTERM. Printed: kills performed, items lost, duplicates per
channel, unreadable states (goal: 200, 0, 0, 0), and what the daemon was doing at each kill.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers.feeds import FeedServer
from servers.waha import FakeWaha
from servers.webhook import FakeWebhook
from test_crash import crash_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds every gateway answer is late")
    parser.add_argument("--no-webhook", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()

    def progress(done: int) -> None:
        if done % 20 == 0 or done == args.kills:
            print(f"  {done} kills, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="crash-bench-") as tmp, FeedServer() as feeds, \
            FakeWaha(delay=args.delay) as waha, FakeWebhook(dedupe=True) as webhook:
        webhook.delay = args.delay
        report = crash_run(Path(tmp), feeds, waha, None if args.no_webhook else webhook, kills=args.kills,
                           seed=args.seed, progress=progress)
        print(f"crash test: {args.kills} kills, seed {args.seed}, gateway delay {args.delay:g} s")
        for line in report.lines():
            print("  " + line)
        for channel, links in sorted(report.lost.items()):
            for link in links[:10]:
                print(f"  lost on {channel}: {link}")
        for problem in report.unreadable[:10]:
            print(f"  state problem: {problem}")
        if report.final_exit != 0:
            print(report.final_stderr[-3000:])
    clean = (report.final_exit == 0 and not any(report.lost.values()) and not any(report.duplicates.values())
             and not report.unreadable and not report.lock_held)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
