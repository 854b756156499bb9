"""How long the command line takes to answer (a benchmark, not a test).

Usage: .venv/bin/python bench/cli_startup.py [--runs N] [--tree PATH ...]

For each tree (default: this repository; more with --tree, e.g. an export of an older
commit, `git archive COMMIT | tar -x -C /tmp/old`), runs `python -m bridge --version`,
`check` and `status` on that tree's shipped config.toml, N times each (after one warm-up run,
so the figures are of a warm disk cache), and prints the median and the range of the wall
time of each command, and which of the heavy dependencies it imported (from
`python -X importtime`). The tree's own `bridge` package is the one imported (the tree is
the working directory and comes first on sys.path); its dependencies come from the Python
running this script. The state directory of the shipped config is the tree's `state/`, left
as it is (`status` on a fresh checkout reads an empty state).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"--version": ["--version"], "check": ["check"], "status": ["status"]}
HEAVY = ("httpx", "httpcore", "feedparser", "apscheduler", "bs4", "tinydb", "publicsuffixlist", "structlog")


def command_line(tree: Path, args: list[str], *, importtime: bool = False) -> list[str]:
    config = ["--config", str(tree / "config.toml")] if args != ["--version"] else []
    return [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "bridge", *config, *args]


def run(tree: Path, args: list[str], *, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("CHANNEL_BRIDGE_CONFIG", "PYTHONPATH")}
    return subprocess.run(command_line(tree, args, importtime=importtime), cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def heavy_imports(tree: Path, args: list[str]) -> list[str]:
    """The heavy top-level packages this command imports, in `-X importtime`'s report."""
    report = run(tree, args, importtime=True).stderr
    names = set()
    for line in report.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return [name for name in HEAVY if name in names]


def measure(tree: Path, args: list[str], runs: int) -> list[float]:
    run(tree, args)  # warm-up: the disk cache and __pycache__
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = run(tree, args)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(args)} in {tree} exited {result.returncode}: {result.stderr.strip()}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command (default 9)")
    parser.add_argument("--tree", type=Path, action="append", help="a tree to measure (repeatable; default: this one)")
    options = parser.parse_args()
    trees = [path.resolve() for path in options.tree] if options.tree else [ROOT]
    print(f"python {sys.version.split()[0]}, {options.runs} runs each, wall time of the whole process")
    for tree in trees:
        print(f"\n{tree}")
        medians = []
        for name, args in COMMANDS.items():
            times = measure(tree, args, options.runs)
            median = statistics.median(times)
            medians.append(median)
            imported = ", ".join(heavy_imports(tree, args)) or "none of them"
            print(f"  {name:<10} median {median * 1000:6.0f} ms  (min {min(times) * 1000:.0f}, "
                  f"max {max(times) * 1000:.0f})  heavy imports: {imported}")
        print(f"  {'all three':<10} median of medians {statistics.median(medians) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
