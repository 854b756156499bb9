"""A full disk, then space back: nothing is lost, nothing is posted twice.

The state directory is a small tmpfs filled with a ballast file until writes fail with ENOSPC,
and emptied to give the space back: a real full filesystem, not an injected error. Mounting
needs root (CI runs as root); elsewhere these tests are skipped and say why.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemons import Daemon, run_bridge
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from test_crash import API_KEY, SITE, Stream, environment, write_config
from waiting import wait_for

from bridge.config import parse_config
from bridge.fetch import Fetcher
from bridge.item import Alert
from bridge.poll import poll_feed
from bridge.store import Delivery, FeedState, Plan, Store

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
# More than a page: a write of it needs new space, whatever room the last page of a file has.
LONG = "Testo dell'avviso. " * 300


class FullDisk:
    """A tmpfs of `size` bytes mounted on `path`, which `fill` fills and `free` empties."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / "ballast"

    def fill(self) -> None:
        """Write the ballast until the filesystem has no byte left."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        chunk = b"\0" * 65536
        try:
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return
                    chunk = chunk[: len(chunk) // 2]
        finally:
            os.close(fd)

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)


def mount_tmpfs(path: Path, size: str) -> FullDisk:
    if os.geteuid() != 0:
        pytest.skip("a real full filesystem needs a tmpfs mount, and mounting needs root (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk test: {done.stderr.strip() or done.returncode}")
    return FullDisk(path)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[FullDisk]:
    """The daemon's state directory (`tmp_path/state`, as test_crash's config says) on a small tmpfs."""
    disk = mount_tmpfs(tmp_path / "state", "4m")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk.path)], check=False)


def delivery(n: int) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=f"Avviso {n}", summary=LONG,
                  link=f"https://www.comune.esempio.it/n/{n}")
    return Delivery(id=f"d{n}", channel="wa", feed_id="notizie", alert=alert, created=NOW, order=float(n))


def view(store: Store) -> dict[str, Any]:
    """What a store holds of the outbox, the history and one feed's seen keys."""
    return {
        "deliveries": [d.to_dict() for d in store.deliveries(state=None)],
        "paused": store.channel_pause("wa"),
        "last_post": store.last_post("wa"),
        "posts": [p.to_dict() for p in store.posts()],
        "seen": [dict(store.seen_by(channel, key)) for channel in ("wa", "tg") for key in ("l:old", "l:new")],
        "primed": store.feed_state("notizie").primed,
    }


def on_disk(state_dir: Path) -> dict[str, Any]:
    reader = Store.open(state_dir, read_only=True)
    try:
        return view(reader)
    finally:
        reader.close()


def in_turn(store: Store, plan: Plan[Any]) -> Any:
    """`plan` made as the daemon makes it: in turn, its writes in the store's writer thread."""
    async def made() -> Any:
        return await store.acommit(plan)

    return asyncio.run(made())


@pytest.mark.parametrize("make", [Store.commit, in_turn], ids=["at once", "in turn off the loop"])
def test_every_store_call_that_meets_a_full_disk_leaves_memory_as_the_disk_is(
        tmp_path: Path, full_disk: FullDisk, make: Callable[[Store, Plan[Any]], Any]) -> None:
    store = Store.open(full_disk.path)
    store.save_feed(FeedState("notizie", primed=("wa",)), {"wa": {"l:old"}}, now=NOW)
    store.add_deliveries([delivery(1), delivery(2)])
    store.update_delivery(replace(delivery(2), attempts=1, last_error="timeout"))
    store.flush()
    before = view(store)
    assert before == on_disk(full_disk.path)
    head = store.deliveries("wa")[0]
    calls: dict[str, Callable[[], Plan[Any]]] = {
        "add_deliveries": lambda: store.plan_add_deliveries([delivery(3)]),
        "update_delivery": lambda: store.plan_update_deliveries(
            [replace(head, in_flight=True, token="t", last_error=LONG)]),
        "record_posts": lambda: store.plan_record_posts([replace(head, alert=replace(head.alert, title=LONG))],
                                                        "wamid-1", NOW),
        "set_channel_pause": lambda: store.plan_channel_pause("wa", f"token rejected: {LONG}"),
        "save_feed": lambda: store.plan_save_feed(FeedState("notizie", primed=("tg", "wa")),
                                                  {"wa": {"l:old", "l:new"}, "tg": {"l:new"}}, now=NOW),
    }
    full_disk.fill()
    for name, plan in calls.items():
        with pytest.raises(OSError) as caught:
            make(store, plan())
        assert caught.value.errno == errno.ENOSPC, name
        assert view(store) == before, f"{name}: memory changed although the write failed"
        assert on_disk(full_disk.path) == before, name
    full_disk.free()
    # Space is back: what failed is simply done now, nothing taken as already done.
    assert [d.id for d in store.add_deliveries([delivery(3)])] == ["d3"]
    store.update_delivery(replace(head, in_flight=True, token="t"))
    store.record_posts([store.deliveries("wa")[0]], "wamid-1", NOW)
    store.set_channel_pause("wa", "token rejected")
    store.save_feed(FeedState("notizie", primed=("tg", "wa")), {"wa": {"l:old", "l:new"}, "tg": {"l:new"}}, now=NOW)
    after = view(store)
    assert after != before and after == on_disk(full_disk.path)
    store.close()
    reopened = Store.open(full_disk.path)
    assert view(reopened) == after
    reopened.close()


def test_a_poll_whose_deliveries_cannot_be_written_marks_nothing_seen(
        tmp_path: Path, full_disk: FullDisk, feed_server: FeedServer) -> None:
    def news(n: int) -> dict[str, Any]:
        return {"title": f"Avviso numero {n}: lavori in via Roma", "link": f"https://www.comune.esempio.it/n/{n}",
                "description": f"Cantiere {n}. {LONG[:400]}", "pubDate": NOW - timedelta(minutes=n)}

    feed_server.set_feed("/feed.xml", rss([news(n) for n in (101, 102)]))
    config = parse_config(
        {"bridge": {"state_dir": str(full_disk.path)},
         "feeds": [{"id": "notizie", "url": feed_server.url("/feed.xml"), "channels": ["wa"],
                    "link_domains": ["comune.esempio.it"], "fetch_article": "never"}],
         "channels": {"wa": {"type": "console"}}},
        path=tmp_path / "config.toml", env={},
    )
    store = Store.open(full_disk.path)

    async def poll() -> list[str]:
        async with Fetcher(user_agent="test") as fetcher:
            result = await poll_feed(config.feeds[0], config=config, fetcher=fetcher, store=store, now=lambda: NOW)
            assert result.ok, result.error
            return sorted(d.alert.link for d in result.queued)

    assert asyncio.run(poll()) == []  # the first poll records what the feed lists
    seen_file = (full_disk.path / "feeds" / "notizie.json").read_bytes()
    fresh = [news(n) for n in range(1, 13)]
    feed_server.set_feed("/feed.xml", rss([*fresh, news(101), news(102)]))
    full_disk.fill()
    with pytest.raises(OSError, match="No space left"):
        asyncio.run(poll())
    assert (full_disk.path / "feeds" / "notizie.json").read_bytes() == seen_file
    full_disk.free()
    # The items are found again and queued, not taken as known: their deliveries were never written.
    assert asyncio.run(poll()) == sorted(item["link"] for item in fresh)
    assert asyncio.run(poll()) == []
    store.close()


def log_events(path: Path) -> list[dict[str, object]]:
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def seen_keys(state_dir: Path) -> int:
    """How many keys the stream feed's file records (they are digests: only their number tells)."""
    shard = state_dir / "feeds" / "stream.json"
    return len(json.loads(shard.read_bytes())["seen"]) if shard.exists() else 0


def posted_links(waha: FakeWaha) -> Counter[str]:
    return Counter(line for post in waha.posts for line in post.text.splitlines() if line.startswith(SITE))


def test_disk_full_during_a_poll_then_space_back_then_a_crash_loses_no_alert(
        tmp_path: Path, feed_server: FeedServer, full_disk: FullDisk) -> None:
    with FakeWaha(api_key=API_KEY) as waha:
        config = write_config(tmp_path, feed_server, waha, None)
        stream = Stream(feed_server, every=1.0, limit=100)
        stream.publish(2)
        prime = run_bridge(config, "run", "--once", env=environment())
        assert prime.returncode == 0, prime.stderr
        stream.first_new = stream.count + 1
        log = tmp_path / "daemon.log"
        daemon = Daemon(config, log, env=environment())
        try:
            assert wait_for(lambda: any(r.get("event") == "channel-bridge started" for r in log_events(log)), 30)
            primed = seen_keys(full_disk.path)
            full_disk.fill()
            # Enough new items that their deliveries need more than the slack of a page.
            stream.publish(12)

            def poll_failed_for_space() -> bool:
                return any("No space left on device" in json.dumps(record) for record in log_events(log))

            assert wait_for(poll_failed_for_space, 30), log.read_text()[-3000:]
            full_disk.free()
            # The next poll, with space back, records the new items as seen: the crash comes after.
            assert wait_for(lambda: seen_keys(full_disk.path) > primed, 30), log.read_text()[-3000:]
        finally:
            daemon.kill()

        again = Daemon(config, tmp_path / "restart.log", env=environment())
        try:
            wanted = stream.new_links()
            assert wait_for(lambda: wanted <= set(posted_links(waha)), 30), (
                sorted(wanted - set(posted_links(waha))), (tmp_path / "restart.log").read_text()[-3000:])
        finally:
            again.stop(timeout=30)
    posted = posted_links(waha)
    assert set(posted) == wanted
    assert [link for link, count in posted.items() if count > 1] == []
