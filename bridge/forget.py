"""`channel-bridge forget FEED`: re-prime one feed instead of deleting the whole state.

The feed's seen keys and poll state are forgotten (`Store.forget_feed`); its next poll is a
first poll again: it records what the feed lists and posts only its `backfill`. Alerts already
queued or posted stay as they are, and an item posted before is never posted again (its
delivery is in the history). It takes the state's lock, so it refuses while the daemon runs.
"""

from __future__ import annotations

import sys
from typing import TextIO

from bridge.config import Config
from bridge.store import StateLockedError, Store

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def cmd_forget(config: Config, out: TextIO, feed_id: str) -> int:
    """Forget `feed_id`'s seen keys and poll state. Exit 0 when done (or nothing was known),
    1 while another channel-bridge holds the state, 2 for a feed neither in the config nor in
    the state. A write that fails raises `StateError` (one line from the CLI, exit 1)."""
    state_dir = config.bridge.state_dir
    try:
        store = Store.open(state_dir)
    except StateLockedError as exc:
        print(f"channel-bridge: cannot forget \"{feed_id}\" while the daemon runs: {exc}; "
              "stop it (systemctl stop channel-bridge), run forget, then start it again", file=sys.stderr)
        return EXIT_FAILED
    try:
        in_config = any(feed.id == feed_id for feed in config.feeds)
        if not store.knows_feed(feed_id):
            if not in_config:
                print(f"channel-bridge: no feed \"{feed_id}\" in {config.path} nor in the state {state_dir}",
                      file=sys.stderr)
                return EXIT_INVALID
            print(f"{feed_id}: nothing to forget (never polled); its first poll records what it lists", file=out)
            return EXIT_OK
        forgotten = store.forget_feed(feed_id)
    finally:
        store.close()
    backfill = next((feed.backfill for feed in config.feeds if feed.id == feed_id), 0)
    print(f"{feed_id}: forgot {forgotten} seen keys and its poll state; its next poll records what it lists "
          f"and posts the newest {backfill} (backfill)", file=out)
    return EXIT_OK
