"""A real browser for the console's tests: Debian's headless Chromium (`apt-get install
chromium`), driven by Playwright through `executable_path`. Playwright's own browser downloads
are never used: the browser is the system's, installed by `.ci/run` when it is missing.

    with chromium() as browser:
        page = browser.new_page()
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

# Where the browser is looked for: this variable (a path), else these names on PATH.
BROWSER_VARIABLE = "CHANNEL_BRIDGE_CHROMIUM"
BROWSER_NAMES = ("chromium", "chromium-browser")
TIMEOUT_MS = 30_000  # Playwright's bound on every navigation and lookup (default, not a measure)


class BrowserMissingError(RuntimeError):
    """No Chromium on this machine: the browser tests cannot run (they fail, they never skip)."""

    hint = "install Debian's browser: apt-get install chromium (bash .ci/run does it when it is missing)"


def chromium_path() -> str:
    """The Chromium to drive: $CHANNEL_BRIDGE_CHROMIUM, else the first of BROWSER_NAMES on PATH."""
    chosen = os.environ.get(BROWSER_VARIABLE)
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise BrowserMissingError(f"{BROWSER_VARIABLE}={chosen} is not an executable; "
                                      f"{BrowserMissingError.hint}")
        return chosen
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissingError(f"no {' or '.join(BROWSER_NAMES)} on PATH; {BrowserMissingError.hint}")


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, closed on exit. Playwright passes --no-sandbox (its default without
    `chromium_sandbox`), which Chromium needs when run as root, as CI runs."""
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()
