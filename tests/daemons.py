"""The real `channel-bridge` command as a subprocess, for the e2e tests: one way to build its
command line and environment, start the daemon with its output in a log file, wait for it
(bounded), stop it (SIGTERM, a bounded wait, SIGKILL on timeout) and always reap it.

The output goes to a file, never to a pipe: a pipe nobody reads fills up and blocks the daemon
mid-write, and a file can still be read after the process is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from waiting import wait_for

# What systemd gives a service and a test run under systemd may have inherited: the daemon
# would talk to the test runner's own manager.
SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "RUNTIME_DIRECTORY")

STARTED = "channel-bridge started"


def bridge_command(config: Path | str, *args: str) -> list[str]:
    """`python -m bridge --config CONFIG ARGS...`, with the interpreter running the tests."""
    return [sys.executable, "-m", "bridge", "--config", str(config), *args]


def bridge_environment(extra: Mapping[str, str] | None = None, *, without: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment without the systemd variables (nor the names in `without`),
    with `extra` added."""
    dropped = {*SYSTEMD_VARIABLES, *without}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **(extra or {})}


def run_bridge(config: Path | str, *args: str, env: Mapping[str, str] | None = None,
               timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Runs one command to its end (bounded by `timeout`), its output captured as text; `env`
    defaults to bridge_environment()."""
    return subprocess.run(bridge_command(config, *args), env=bridge_environment() if env is None else dict(env),
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)


class Daemon:
    """`channel-bridge --config CONFIG [OPTIONS...] run`, started at once, its stderr in the file
    `log`; its stdout in `log` too with `stdout_too`, in the file `stdout` if given, else
    discarded. `env` defaults to bridge_environment().

    Use it as a context manager, or call stop() or kill(): either way the process is reaped."""

    def __init__(self, config: Path | str, log: Path, *, env: Mapping[str, str] | None = None,
                 options: Sequence[str] = (), stdout_too: bool = False, stdout: Path | None = None,
                 cwd: Path | None = None) -> None:
        self.log_path = log
        with log.open("ab") as err, (stdout or Path(os.devnull)).open("ab") as out:
            self.process: subprocess.Popen[bytes] = subprocess.Popen(
                bridge_command(config, *options, "run"), env=bridge_environment() if env is None else dict(env),
                stdout=err if stdout_too else out, stderr=err, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        """What the daemon wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> bool:
        """Waits (at most `timeout` seconds) until `text` is in the log; False if it is not, or
        if the daemon ended first without writing it."""
        wait_for(lambda: not self.running() or text in self.log(), timeout)
        return text in self.log()

    def wait_started(self, timeout: float = 30) -> bool:
        """wait_for_log() for the daemon's start line (after its first poll was scheduled)."""
        return self.wait_for_log(STARTED, timeout)

    def send(self, number: signal.Signals) -> None:
        if self.running():
            self.process.send_signal(number)

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM, then the exit status within `timeout` seconds; a daemon still running then is
        killed, reaped, and the test fails (AssertionError) with its log's tail."""
        self.send(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the daemon did not stop within {timeout} s of SIGTERM; its log ends:\n"
                                 f"{self.log()[-3000:]}") from None

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM, then the exit status within `timeout` seconds; a daemon still running then is
        killed and reaped, its status -SIGKILL (for a harness that reports it, not fails)."""
        self.send(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """SIGKILL (if still running) and reap; the exit status."""
        if self.running():
            self.process.kill()
        return self.process.wait(timeout=30)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.kill()
