"""The peers of `bench/scale.py`, each in its own venv, run on the bench's feed farm.

`ensure_peers_venv` makes `bench/.scale/peers-venv` (git-ignored) with rss2email 3.14,
feed2exec 0.23 and py-spy from PyPI, once. `PeerRunner` writes each peer's configuration for a
list of feed URLs and runs one cycle of it as a subprocess, bounded in time, measured from
outside like the daemon (CPU of the process tree, peak RSS):

- rss2email: `r2e -c CONFIG -d DATA run --no-send` (sequential; ETag and If-Modified-Since);
- feed2exec: `feed2exec --config INI --database DB fetch --parallel` with the `null` output
  (fetches sequentially, parses in a process pool; without the optional cachecontrol package
  it sends no conditional GET);
- naive: `bench/scale_naive.py`, a sequential `feedparser.parse(url, etag, modified)` loop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scale_proc import TreeSampler, peak_rss

PEER_PACKAGES = ("rss2email==3.14", "feed2exec==0.23", "py-spy")
PEERS = ("rss2email", "feed2exec", "naive")


@dataclass(frozen=True, slots=True)
class PeerCycle:
    """One measured run of a peer."""

    peer: str
    feeds: int
    wall: float
    cpu: float
    peak_rss: int
    exit_code: int | None  # None: killed at the time limit
    note: str = ""


def ensure_peers_venv(venv: Path, log: Path) -> tuple[Path | None, str]:
    """Create `venv` with the peers if it is not there yet; return (bin dir, problem).

    The bin dir is None when the install failed; the problem then says why (pip's last lines,
    the whole output in `log`).
    """
    marker = venv / ".installed"
    wanted = " ".join(PEER_PACKAGES)
    if marker.exists() and marker.read_text() == wanted:
        return venv / "bin", ""
    with log.open("w") as out:
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *PEER_PACKAGES],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=600, check=False)
            except subprocess.TimeoutExpired:
                return None, f"{' '.join(step[:3])}... took longer than 600 s"
            if done.returncode != 0:
                out.flush()
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                return None, f"exit {done.returncode}: " + " | ".join(tail)
    marker.write_text(wanted)
    return venv / "bin", ""


class PeerRunner:
    """Runs one peer over `urls` with its state in `workdir`; `bindir` is the peers' venv."""

    def __init__(self, peer: str, urls: list[str], workdir: Path, bindir: Path, *, timeout: float) -> None:
        self.peer = peer
        self.urls = urls
        self.workdir = workdir
        self.bindir = bindir
        self.timeout = timeout
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "XDG_CONFIG_HOME": str(workdir / "config"),
            "XDG_DATA_HOME": str(workdir / "data"),
            "XDG_CACHE_HOME": str(workdir / "cache"),
            "LANG": "C.UTF-8",
        }
        self.command = self._prepare()

    def _prepare(self) -> list[str]:
        work = self.workdir
        if self.peer == "rss2email":
            lines = ["[DEFAULT]", "to = bench@example.invalid", ""]
            for index, url in enumerate(self.urls):
                lines += [f"[feed.c{index:05d}]", f"url = {url}", ""]
            (work / "r2e.cfg").write_text("\n".join(lines))
            return [str(self.bindir / "r2e"), "-c", str(work / "r2e.cfg"), "-d", str(work / "r2e.json"),
                    "run", "--no-send"]
        if self.peer == "feed2exec":
            lines = []
            for index, url in enumerate(self.urls):
                lines += [f"[c{index:05d}]", f"url = {url}", "output = feed2exec.plugins.null", ""]
            (work / "feed2exec.ini").write_text("\n".join(lines))
            return [str(self.bindir / "feed2exec"), "--config", str(work / "feed2exec.ini"),
                    "--database", str(work / "feed2exec.db"), "fetch", "--parallel"]
        if self.peer == "naive":
            (work / "urls.txt").write_text("\n".join(self.urls) + "\n")
            script = Path(__file__).resolve().parent / "scale_naive.py"
            return [str(self.bindir / "python"), str(script), str(work / "urls.txt"), str(work / "naive.json")]
        raise ValueError(f"unknown peer {self.peer!r}")

    def cycle(self) -> PeerCycle:
        """Run one cycle; kill it at the time limit (see `run_measured`)."""
        wall, cpu, rss, exit_code = run_measured(self.command, env=self.env, cwd=self.workdir,
                                                 log=self.workdir / "output.log", timeout=self.timeout)
        return PeerCycle(self.peer, len(self.urls), wall, cpu, rss, exit_code)


def run_measured(command: list[str], *, env: dict[str, str], cwd: Path, log: Path,
                 timeout: float) -> tuple[float, float, int, int | None]:
    """Run `command` to its end, killed at `timeout` seconds; return wall seconds, CPU seconds,
    peak RSS (bytes, the process tree) and the exit code (None: killed).

    CPU seconds come from the kernel's accounting of the finished process (`wait4`), which
    includes every descendant it waited for (feed2exec's pool workers, the bridge's parsers).
    """
    with log.open("a") as out:
        started = time.time()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                   start_new_session=True)
        sampler = TreeSampler(process.pid, period=0.1, limit=timeout + 30)
        exit_code: int | None = None
        cpu = 0.0
        hwm = 0
        try:
            deadline = started + timeout
            while time.time() < deadline:
                hwm = max(hwm, peak_rss(process.pid))
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    exit_code = os.waitstatus_to_exitcode(status)
                    cpu = usage.ru_utime + usage.ru_stime
                    process.returncode = exit_code
                    break
                time.sleep(0.05)
        finally:
            sampler.stop()
            if exit_code is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
                cpu = sampler.last().cpu
        wall = time.time() - started
    _, rss_tree = sampler.peak(started, time.time())
    return wall, cpu, max(hwm, rss_tree), exit_code
