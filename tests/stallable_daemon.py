"""`channel-bridge` whose event loop SIGUSR2 stalls, as a real hang would: for the watchdog test.

    python tests/stallable_daemon.py --config config.toml run

The product has no such switch: this wrapper installs, before the bridge starts, a Python signal
handler that sleeps. Python runs signal handlers in the main thread, which runs the event loop,
so the loop stops there while every other thread (the state writer, the parser pool) goes on:
the watchdog must stop being pinged all the same.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

from bridge.cli import main


def _stall(signum: int, frame: FrameType | None) -> None:
    time.sleep(3600)


if __name__ == "__main__":
    signal.signal(signal.SIGUSR2, _stall)
    raise SystemExit(main())
