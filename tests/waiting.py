"""Waiting, bounded, for something a daemon or a server does by itself."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, *, every: float = 0.05) -> bool:
    """Poll `condition` every `every` seconds until it holds or `timeout` seconds pass; return
    its last answer (checked once more at the deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()
