"""Crash test, the long version: SIGKILL the real daemon N times at random moments (a benchmark,
not a test; tests/test_crash.py runs the same harness with 10 kills).

Usage: .venv/bin/python bench/crash.py [--kills 200] [--seed 1] [--no-webhook] [--delay 0.1]
                                      [--disk-full] [--garbage] [--remove-state N] [--actions]

The daemon (`channel-bridge run`, interval 1 s) polls a loopback feed that gains an item every
0.4 s and posts to a fake WAHA (every answer `--delay` seconds late, so kills land during sends)
and, unless `--no-webhook`, to a webhook receiver that deduplicates by `Idempotency-Key`. It is
killed `--kills` times, each 0.3 to 2.5 s (seeded) after its start, and restarted; a last
daemon drains and stops on SIGTERM. Printed: kills performed, items lost, duplicates per
channel, unreadable states (goal: 200, 0, 0, 0), and what the daemon was doing at each kill.

The faults of `tests/test_crash.py`'s `Faults`, around the kills: `--disk-full` puts the state
on a 4 MiB tmpfs filled at random moments (space back 0.2-2 s later; needs root), `--garbage`
makes the fake WAHA answer 200 with a login page at random moments (half of the time after
posting), `--remove-state N` removes the state directory under a running daemon in N rounds
(which must stop by itself; a second daemon then starts on the same path). Items not yet posted
when their state was removed went with it: they are counted apart, not as lost.

`--actions` adds the actors of `tests/crash_actors.py` (`tests/test_crash_actions.py` runs them
with 10 kills): a second feed in approval mode, whose alerts editors approve, edit, hold and
drop through the real command line; an editor composing alerts (`channel-bridge send`); and a
third feed (`corrections = "edit"`) whose published items change their date at the source,
all while the daemon is killed (each kill then 0.3 to 4 s after the daemon said it started,
so that it serves them); at the end what still waits is approved.
Printed as well: the actions acknowledged, refused and unanswered per kind, and what the checks
found wrong (goal: 0; lost and duplicates count the approval feed too).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from crash_actors import ACTORS
from filesystems import SmallFs
from servers.feeds import FeedServer
from servers.waha import FakeWaha
from servers.webhook import FakeWebhook
from test_crash import Faults, crash_run
from test_crash_actions import UP


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds every gateway answer is late")
    parser.add_argument("--no-webhook", action="store_true")
    parser.add_argument("--disk-full", action="store_true", help="ENOSPC at random moments (root: a small tmpfs)")
    parser.add_argument("--garbage", action="store_true", help="WAHA answers 200 with garbage at random moments")
    parser.add_argument("--remove-state", type=int, default=0, metavar="N",
                        help="rounds that remove the state directory under the running daemon")
    parser.add_argument("--actions", action="store_true",
                        help="editors approve, edit, hold, drop and compose alerts, and posted news is "
                             "corrected at the source, meanwhile")
    args = parser.parse_args()
    if args.actions and args.remove_state:
        parser.error("--actions checks the audit trail to the end: it cannot go with --remove-state")
    started = time.monotonic()
    # With the editors, each kill comes 0.3 to 4 s after the daemon said it started.
    editors: dict[str, Any] = ({"actors": [make(args.seed, args.kills) for make in ACTORS.values()], "up": UP,
                                "from_ready": True} if args.actions else {})

    def progress(done: int) -> None:
        if done % 20 == 0 or done == args.kills:
            print(f"  {done} kills, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="crash-bench-") as tmp, FeedServer() as feeds, \
            FakeWaha(delay=args.delay) as waha, FakeWebhook(dedupe=True) as webhook:
        webhook.delay = args.delay
        disk = SmallFs(Path(tmp) / "fs") if args.disk_full else None
        try:
            report = crash_run(Path(tmp), feeds, waha, None if args.no_webhook else webhook, kills=args.kills,
                               seed=args.seed, progress=progress,
                               faults=Faults(disk=disk, garbage=args.garbage, removals=args.remove_state),
                               **editors)
        finally:
            if disk is not None:
                disk.unmount()
        kinds = [name for name, on in (("disk full", args.disk_full), ("gateway garbage", args.garbage),
                                       (f"state removed x{args.remove_state}", args.remove_state)) if on]
        print(f"crash test: {args.kills} kills, seed {args.seed}, gateway delay {args.delay:g} s"
              + (f", faults: {', '.join(kinds)}" if kinds else "") + (", editors acting" if args.actions else ""))
        for line in report.lines():
            print("  " + line)
        for channel, links in sorted(report.lost.items()):
            for link in links[:10]:
                print(f"  lost on {channel}: {link}")
        for problem in report.unreadable[:10]:
            print(f"  state problem: {problem}")
        for problem in report.action_problems[:20]:
            print(f"  action problem: {problem}")
        if report.final_exit != 0:
            print(report.final_stderr[-3000:])
    clean = (report.final_exit == 0 and not any(report.lost.values()) and not any(report.duplicates.values())
             and not report.unreadable and not report.lock_held and not report.action_problems
             and all(code not in (0, None) for code in report.stopped_by_itself))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
