"""The urgent path's first step: a poll of an urgent feed never waits behind routine polls of
its host. The real daemon in-process, five feeds on one loopback host (the per-host limit is
2): four routine feeds whose answers the test holds back, and one `urgent = true` feed. While
two routine polls hold the host's slots, the urgent poll and two routine ones wait; when the
slots free, the urgent feed is asked first. Order only: the latency figures are bench/urgent.py's.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
from servers.feeds import FeedServer, rss

from bridge.config import load_config
from bridge.daemon import MAX_POLLS_PER_HOST, Bridge
from bridge.store import Store

ROUTINE = [f"/routine-{n}.xml" for n in range(4)]
URGENT = "/protezione-civile.xml"


def _config(tmp: Path, feeds: FeedServer) -> Path:
    tables = "".join(f'[[feeds]]\nid = "routine-{n}"\nurl = "{feeds.url(path)}"\n\n' for n, path in enumerate(ROUTINE))
    tables += f'[[feeds]]\nid = "allerte"\nurl = "{feeds.url(URGENT)}"\nurgent = true\n\n'
    config = tmp / "config.toml"
    config.write_text(f"""[bridge]
state_dir = "state"
fetch_timeout = "60s"

[defaults]
interval = "1h"
channels = ["registro"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"

{tables}
[channels.registro]
type = "console"
""", encoding="utf-8")
    return config


def test_an_urgent_poll_takes_the_first_free_slot_of_its_host(tmp_path: Path, feed_server: FeedServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    item = {"title": "Avviso", "link": "https://www.comune.esempio.it/avviso", "guid": "avviso-1"}
    gate = threading.Event()
    for path in [*ROUTINE, URGENT]:
        feed_server.set_feed(path, rss([item]))
    for path in ROUTINE:
        feed_server.set_fault(path, "slow", until=gate, delay=60)
    config = load_config(_config(tmp_path, feed_server), os.environ)
    store = Store.open(config.bridge.state_dir)
    host = "127.0.0.1"

    async def scenario() -> list[str]:
        bridge = Bridge(config, store)
        # One cycle: the polls start in the config's order, the urgent feed's last.
        cycle = asyncio.ensure_future(bridge.run_once())
        try:
            # Two routine polls hold the host's two slots; the other three polls queue for them.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                slots = bridge._per_host.get(host)
                if slots is not None and slots.waiting() == 3:
                    break
                await asyncio.sleep(0.05)
            slots = bridge._per_host[host]
            assert (slots.held, slots.waiting(urgent=True), slots.waiting(urgent=False)) == (MAX_POLLS_PER_HOST, 1, 2)
            asked = [request.path for request in feed_server.requests()]
            assert sorted(asked) == ROUTINE[:2], asked  # the first two of the config, in either order
        finally:
            gate.set()
        assert await asyncio.wait_for(cycle, 60) == 0
        return [request.path for request in feed_server.requests()]

    try:
        asked = asyncio.run(scenario())
    finally:
        store.close()
    assert len(asked) == 5, asked
    assert asked[2] == URGENT, f"the urgent feed was asked after routine ones that queued with it: {asked}"
