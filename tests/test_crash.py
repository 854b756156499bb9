"""Crash at any instant: the real daemon, SIGKILLed at random moments and restarted, loses nothing
and posts nothing twice.

The daemon (`channel-bridge run`, interval 1 s) polls a loopback feed that gains a new item
every fraction of a second, and posts to a fake WAHA that answers slowly, so that kills land
during fetches, parses, state writes and sends. After each kill: no state file is unreadable,
nothing was moved aside as corrupt, the lock is free and the daemon's helper processes are
gone. At the end a last daemon drains everything and stops on SIGTERM; then every item was
posted, none twice.

`crash_run` is the harness; `bench/crash.py` runs it with 200 kills and prints the figures.
`Faults` adds the unlucky world around the kills: the state directory on a small file system
that fills up at random moments and gets its space back (ENOSPC anywhere: feed files, outbox,
history, poll states), a WhatsApp gateway that answers 200 with garbage for a while (a proxy's
login page, with the post sometimes forwarded behind it), and the state directory removed under
a running daemon, which must then stop by itself. `Actor`s act on the bridge meanwhile, each
checked at the end: the editors' actions through the command line (`crash_actors`,
`tests/test_crash_actions.py`).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from daemons import Daemon, bridge_environment, run_bridge
from filesystems import SmallFs
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from servers.webhook import FakeWebhook
from waiting import wait_for

from bridge.store import Store, history_path

API_KEY = "crash-waha-key-8812"
CHAT = "120363000000000099@newsletter"
SITE = "https://www.comune.esempio.it"


@dataclass
class CrashReport:
    """What a crash run found: the figures of issue 6."""

    kills: int = 0
    published: int = 0
    lost: dict[str, list[str]] = field(default_factory=dict)  # channel -> links never posted
    duplicates: dict[str, int] = field(default_factory=dict)  # channel -> extra posts of an item
    resends: dict[str, int] = field(default_factory=dict)  # webhook: requests repeating an Idempotency-Key
    unreadable: list[str] = field(default_factory=list)  # state problems found after a kill or at the end
    lock_held: int = 0  # kills after which the lock could not be taken
    leftover_processes: int = 0  # helper processes still alive 5 s after their daemon was killed
    last_events: Counter[str] = field(default_factory=Counter)  # what the daemon was doing when killed
    final_exit: int | None = None
    final_stderr: str = ""
    seconds: float = 0.0
    disk_full: int = 0  # times the state's file system was filled (space given back after each)
    garbage: int = 0  # times the WhatsApp gateway started answering 200 with garbage
    removals: int = 0  # times the state directory was removed under a running daemon
    stopped_by_itself: list[int | None] = field(default_factory=list)  # exit status after each removal
    forgotten: int = 0  # items not yet posted when their state was removed (gone with it, expected)
    # The actors' figures (see `Actor`): "KIND OUTCOME" -> count, e.g. "approve acknowledged".
    actions: Counter[str] = field(default_factory=Counter)
    action_lines: list[str] = field(default_factory=list)  # each actor's own summary lines
    action_problems: list[str] = field(default_factory=list)  # what an actor's checks found wrong

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{event} {count}" for event, count in self.last_events.most_common(8))
        return [
            f"kills performed:        {self.kills}",
            f"items published:        {self.published}",
            "items lost:             " + ", ".join(f"{c} {len(v)}" for c, v in sorted(self.lost.items())),
            "duplicates per channel: " + ", ".join(f"{c} {n}" for c, n in sorted(self.duplicates.items())),
            "resends deduplicated by the receiver's Idempotency-Key: "
            + (", ".join(f"{c} {n}" for c, n in sorted(self.resends.items())) or "-"),
            f"unreadable states:      {len(self.unreadable)}" + (f" {self.unreadable[:3]}" if self.unreadable else ""),
            f"lock left held:         {self.lock_held}",
            f"leftover processes:     {self.leftover_processes}",
            f"final stop exit code:   {self.final_exit}",
            *([f"faults:                 disk filled {self.disk_full} times, gateway garbage {self.garbage} "
               f"times, state removed {self.removals} times"] if self.disk_full or self.garbage or self.removals
              else []),
            *([f"after each removal:     exit status {self.stopped_by_itself} (the daemon stopped by itself); "
               f"{self.forgotten} unposted items went with the removed state"] if self.removals else []),
            *self.action_lines,
            *([f"action problems:        {len(self.action_problems)}"
               + (f" {self.action_problems[:3]}" if self.action_problems else "")] if self.actions else []),
            f"last log event before each kill: {kinds}",
            f"wall time:              {self.seconds:.0f} s",
        ]


def item(n: int, now: datetime, section: str = "crash") -> dict[str, Any]:
    """Item `n` of the feed whose links are under `section`; another section's items differ in
    their text too (the bridge recognises the same news in two feeds by its text)."""
    if section == "crash":
        title, text = "lavori sulla rete idrica in via Roma", "la strada resta chiusa per lavori alla rete idrica"
    else:
        title, text = f"chiusura di piazza Garibaldi ({section})", "la piazza resta chiusa per il mercato"
    return {
        "title": f"Avviso {n}: {title}",
        "link": f"{SITE}/{section}/{n}/",
        "guid": f"{SITE}/?p={n}" if section == "crash" else f"{SITE}/?{section}={n}",
        "description": f"Cantiere numero {n}: {text}.",
        "pubDate": now - timedelta(minutes=10) + timedelta(seconds=n),
    }


class Stream:
    """A feed (served at `path`, its items' links under `section`) that gains one item every
    `every` seconds from a background thread, up to `limit`."""

    def __init__(self, feeds: FeedServer, *, every: float, limit: int, path: str = "/stream.xml",
                 section: str = "crash") -> None:
        self.feeds = feeds
        self.path = path
        self.section = section
        self.every = every
        self.limit = limit
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.count = 0
        self.first_new = 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.held = threading.Event()  # set: no new item for now
        self._thread: threading.Thread | None = None

    def publish(self, n: int = 1) -> None:
        with self._lock:
            self.count += n
            items = [item(i, self.now, self.section) for i in range(self.count, 0, -1)]
            self.feeds.set_feed(self.path, rss(items))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every) and self.count < self.limit:
            if not self.held.is_set():
                self.publish()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def new_links(self) -> set[str]:
        return {f"{SITE}/{self.section}/{n}/" for n in range(self.first_new, self.count + 1)}


def write_config(tmp: Path, feeds: FeedServer, waha: FakeWaha, webhook: FakeWebhook | None) -> Path:
    channels = ["whatsapp", "hook"] if webhook is not None else ["whatsapp"]
    text = f"""
[bridge]
state_dir = "state"

[defaults]
interval = "1s"
channels = {json.dumps(channels)}
link_domains = ["comune.esempio.it"]
fetch_article = "never"  # loopback only: never fetch article pages from the (fictional) comune site

[[feeds]]
id = "stream"
name = "Avvisi"
url = "{feeds.url('/stream.xml')}"

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
"""
    if webhook is not None:
        text += f'\n[channels.hook]\ntype = "webhook"\nurl = "{webhook.url}/hook"\n'
    config = tmp / "config.toml"
    config.write_text(text, encoding="utf-8")
    return config


def environment() -> dict[str, str]:
    return bridge_environment({"WAHA_API_KEY": API_KEY}, without=("JOURNAL_STREAM",))


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields after it are fixed.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    for _ in range(8):  # a short tree: daemon -> forkserver -> parser workers
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        if not frontier:
            break
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def all_gone(pids: set[int]) -> Callable[[], bool]:
    return lambda: not any(alive(pid) for pid in pids)


def state_problems(state_dir: Path) -> list[str]:
    """Unreadable or quarantined state files; empty when every file reads."""
    problems = [f"moved aside: {p.name}" for p in state_dir.rglob("*.corrupt-*")]
    for path in state_dir.rglob("*.json"):
        try:
            data = json.loads(path.read_bytes() or b"{}")
        except ValueError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path.name}: not an object")
    try:
        Store.open(state_dir, read_only=True).close()
    except Exception as exc:  # any failure to open is the finding itself
        problems.append(f"Store.open: {exc}")
    return problems


def lock_is_free(state_dir: Path) -> bool:
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def last_event(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "no log"
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return str(record.get("event"))
    return "starting"


@dataclass(frozen=True)
class Faults:
    """What goes wrong around the kills (see the module docstring)."""

    disk: SmallFs | None = None  # the state lives on this file system, filled at random moments
    garbage: bool = False  # the WhatsApp gateway answers 200 with garbage at random moments
    removals: int = 0  # kill rounds (spread over the run) that remove the state directory instead


class Chaos:
    """A seeded background thread that fills the disk and garbles the gateway now and then, each
    fault lasting 0.2 to 2 s, until `stop()`, which leaves both healthy."""

    def __init__(self, faults: Faults, waha: FakeWaha, report: CrashReport, seed: int) -> None:
        self.faults = faults
        self.waha = waha
        self.report = report
        self.rng = random.Random(seed)
        self.paused = threading.Event()  # set: no new fault starts (a removal is being handled)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        if self.faults.disk is not None or self.faults.garbage:
            self._thread.start()

    def _run(self) -> None:
        kinds = [kind for kind, on in (("disk", self.faults.disk is not None), ("garbage", self.faults.garbage)) if on]
        while not self._stop.wait(self.rng.uniform(0.3, 2.5)):
            if self.paused.is_set():
                continue
            kind = self.rng.choice(kinds)
            if kind == "disk":
                assert self.faults.disk is not None
                self.faults.disk.fill()
                self.report.disk_full += 1
            else:
                self.waha.garble_next(None, forward=self.rng.random() < 0.5)
                self.report.garbage += 1
            self._stop.wait(self.rng.uniform(0.2, 2.0))
            self.heal()

    def heal(self) -> None:
        if self.faults.disk is not None:
            self.faults.disk.free()
        self.waha.clear_garbage()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.heal()


def posted_links(channel: str, waha: FakeWaha, webhook: FakeWebhook | None) -> list[str]:
    """The item links posted on `channel` so far, once per post."""
    if channel == "whatsapp":
        return [line for post in waha.posts for line in post.text.splitlines() if line.startswith(SITE)]
    assert webhook is not None
    return [str(json.loads(request.body)["link"]) for request in webhook.deliveries]


def remove_state(daemon: subprocess.Popen[bytes], log: Path, state_dir: Path, config_path: str, stream: Stream,
                 chaos: Chaos, report: CrashReport, waha: FakeWaha, webhook: FakeWebhook | None) -> set[str]:
    """Remove the state directory under the running `daemon` (once it has started, holding the
    state), which must stop by itself; then prime a fresh state on the same path, as the
    restart systemd's Restart= makes would. Return the links that went with the removed state
    (published, not yet posted on every channel)."""
    wait_for(lambda: daemon.poll() is not None or "channel-bridge started" in log.read_text(errors="replace"), 60)
    chaos.paused.set()
    stream.held.set()  # no new item until the new state is primed: what it records is known
    try:
        chaos.heal()
        shutil.rmtree(state_dir, ignore_errors=True)
        report.removals += 1
        try:
            report.stopped_by_itself.append(daemon.wait(timeout=15))
        except subprocess.TimeoutExpired:
            report.stopped_by_itself.append(None)  # still running: the finding itself
            daemon.kill()
            daemon.wait(timeout=10)
        channels = ["whatsapp", "hook"] if webhook is not None else ["whatsapp"]
        everywhere = set.intersection(*(set(posted_links(c, waha, webhook)) for c in channels))
        gone = {f"{SITE}/crash/{n}/" for n in range(1, stream.count + 1)} - everywhere
        # A fresh state: its first poll records what the feed lists and posts none of it.
        primed = run_bridge(config_path, "run", "--once", env=environment())
        assert primed.returncode == 0, primed.stderr
        return gone
    finally:
        stream.held.clear()
        chaos.paused.clear()


@dataclass
class World:
    """What the actors of a crash run share: the config of the daemon being killed, its state,
    the loopback feed server and the fake gateway, the environment its commands run in."""

    tmp: Path
    config: Path
    state_dir: Path
    feeds: FeedServer
    waha: FakeWaha
    env: dict[str, str]

    def command(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """`channel-bridge --config CONFIG ARGS...`, run to its end as an editor would."""
        return run_bridge(self.config, *args, env=self.env, timeout=timeout)


class Actor(Protocol):
    """Someone acting on the bridge while its daemon is killed and restarted, checked at the end.

    In turn: `config` adds its part of the daemon's config (a feed of its own...), `prepare`
    runs before the first poll, `start` when the kills begin (its own thread), `stop` when they
    end, `settle` with the last daemon running, before the final drain (release what waits, so
    that everything can drain; return when its part has drained), `check` after that daemon
    stopped: it counts into `report.actions` and adds `report.action_lines` and
    `report.action_problems`. The editors' actions are `crash_actors.Editors`; a composed alert
    (`channel-bridge send`) and a correction of a posted item plug in the same way (see
    `crash_actors.ACTORS`)."""

    def config(self, world: World) -> str: ...
    def prepare(self, world: World) -> None: ...
    def start(self, world: World) -> None: ...
    def stop(self) -> None: ...
    def settle(self, world: World) -> None: ...
    def check(self, world: World, report: CrashReport) -> None: ...


def has_started(daemon: subprocess.Popen[bytes], log: Path) -> bool:
    """True once `daemon` said it started (its signal handlers and control socket in place), or ended."""
    return daemon.poll() is not None or "channel-bridge started" in log.read_text(errors="replace")


def crash_run(tmp: Path, feeds: FeedServer, waha: FakeWaha, webhook: FakeWebhook | None = None, *, kills: int,
              seed: int, every: float = 0.4, up: tuple[float, float] = (0.3, 2.5),
              progress: Callable[[int], None] | None = None, faults: Faults | None = None,
              actors: Sequence[Actor] = (), from_ready: bool = False) -> CrashReport:
    """Kill the daemon `kills` times at seeded random moments `up` seconds after each start
    (with `from_ready`, after it said it started: on a slow host a daemon is otherwise often
    killed in its imports, before it serves anyone), while the feed gains an item every `every`
    seconds, `faults` strike and `actors` act; then drain, stop and count."""
    started = time.monotonic()
    faults = faults or Faults()
    rng = random.Random(seed)
    report = CrashReport()
    waha.api_key = API_KEY
    config = write_config(tmp, feeds, waha, webhook)
    state_dir = tmp / "state"
    if faults.disk is not None:
        state_dir = faults.disk.path / "state"  # the state on the small file system
        config.write_text(config.read_text(encoding="utf-8").replace('state_dir = "state"',
                                                                     f'state_dir = "{state_dir}"'), encoding="utf-8")
    # Removals spread evenly over the run, never the first round (the state must have a history).
    world = World(tmp, config, state_dir, feeds, waha, environment())
    for actor in actors:
        config.write_text(config.read_text(encoding="utf-8") + actor.config(world), encoding="utf-8")
        actor.prepare(world)
    removal_rounds = {max(1, kills * (n + 1) // (faults.removals + 1) // 2) for n in range(faults.removals)}
    chaos = Chaos(faults, waha, report, seed + 1)
    logs = tmp / "logs"
    logs.mkdir(exist_ok=True)
    stream = Stream(feeds, every=every, limit=max(4, int(kills * sum(up) / 2 / every) + 4))
    stream.publish(2)
    prime = run_bridge(config, "run", "--once", env=environment())
    assert prime.returncode == 0, prime.stderr
    stream.first_new = stream.count + 1
    forgotten: set[str] = set()
    stream.start()
    chaos.start()
    for actor in actors:
        actor.start(world)
    try:
        for index in range(kills):
            log = logs / f"run-{index}.log"
            daemon = Daemon(config, log, env=environment())
            if from_ready:
                wait_for(functools.partial(has_started, daemon.process, log), 60)
            time.sleep(rng.uniform(*up))
            helpers = descendants(daemon.pid)
            if index in removal_rounds:
                forgotten |= remove_state(daemon.process, log, state_dir, str(config), stream, chaos, report, waha,
                                          webhook)
                continue
            daemon.kill()
            report.kills += 1
            report.last_events[last_event(log)] += 1
            if not wait_for(all_gone(helpers), 5):
                report.leftover_processes += sum(1 for pid in helpers if alive(pid))
            if not lock_is_free(state_dir):
                report.lock_held += 1
            report.unreadable += [f"after kill {index + 1}: {problem}" for problem in state_problems(state_dir)]
            if progress is not None:
                progress(index + 1)
    finally:
        stream.stop()
        chaos.stop()
        for actor in actors:
            actor.stop()
    report.published = stream.count - stream.first_new + 1
    report.forgotten = len(forgotten)
    wanted = stream.new_links() - forgotten

    def links(channel: str) -> list[str]:
        return posted_links(channel, waha, webhook)

    channels = ["whatsapp", "hook"] if webhook is not None else ["whatsapp"]
    final = Daemon(config, logs / "final.log", env=environment())
    try:
        # Started (signal handlers in place) before anything else: a SIGTERM during the imports
        # would end it by the default action, not by a clean stop.
        assert wait_for(lambda: "channel-bridge started" in (logs / "final.log").read_text(errors="replace"), 60), \
            (logs / "final.log").read_text(errors="replace")[-3000:]
        for actor in actors:
            actor.settle(world)
        # Drain the backlog: wait while posts keep coming, give up after 30 s without progress.
        progress_at, count = time.monotonic(), -1
        for _ in range(20_000):  # bounded: at most ~1000 s even if posts trickle in forever
            done = sum(len(set(links(channel)) & wanted) for channel in channels)
            if done == len(wanted) * len(channels) or time.monotonic() - progress_at > 30:
                break
            if done != count:
                progress_at, count = time.monotonic(), done
            time.sleep(0.05)
    finally:
        report.final_exit = final.terminate(timeout=30)
    report.final_stderr = (logs / "final.log").read_text(encoding="utf-8", errors="replace")
    for channel in channels:
        posted = Counter(links(channel))
        report.lost[channel] = sorted(wanted - set(posted))
        report.duplicates[channel] = sum(count - 1 for count in posted.values() if count > 1)
    if webhook is not None:
        keyed = [request for request in webhook.requests if request.method == "POST"]
        report.resends["hook"] = len(keyed) - len({request.header("Idempotency-Key") for request in keyed})
    report.unreadable += [f"at the end: {problem}" for problem in state_problems(state_dir)]
    for actor in actors:
        actor.check(world, report)
    report.seconds = time.monotonic() - started
    return report


def assert_clean(report: CrashReport) -> None:
    summary = "\n".join(report.lines())
    assert report.kills > 0
    assert report.final_exit == 0, report.final_stderr[-3000:]
    assert all(not lost for lost in report.lost.values()), summary
    assert all(count == 0 for count in report.duplicates.values()), summary
    assert report.unreadable == [], summary
    assert report.lock_held == 0, summary
    assert report.leftover_processes == 0, summary
    assert report.action_problems == [], summary


def test_ten_kills_lose_nothing_and_post_nothing_twice(tmp_path: Path, feed_server: FeedServer) -> None:
    # A slow gateway: a send takes a few tenths of a second, so kills land in the middle of sends.
    with FakeWaha(delay=0.1) as waha:
        report = crash_run(tmp_path, feed_server, waha, kills=10, seed=6)
    assert_clean(report)
    assert report.published >= 5


def test_ten_kills_with_a_webhook_that_deduplicates(tmp_path: Path, feed_server: FeedServer) -> None:
    with FakeWaha(delay=0.1) as waha, FakeWebhook(dedupe=True) as webhook:
        webhook.delay = 0.1
        report = crash_run(tmp_path, feed_server, waha, webhook, kills=10, seed=7)
    assert_clean(report)


def test_kills_with_a_full_disk_a_lying_gateway_and_the_state_removed(tmp_path: Path, feed_server: FeedServer,
                                                                      small_fs: SmallFs) -> None:
    """The unlucky world: ENOSPC at random moments (space back after each), WAHA answering 200
    with a login page (sometimes after posting), and once the state directory removed under the
    daemon, which stops by itself; between them, SIGKILLs. Nothing lost, nothing twice."""
    with FakeWaha(delay=0.05) as waha, FakeWebhook(dedupe=True) as webhook:
        report = crash_run(tmp_path, feed_server, waha, webhook, kills=12, seed=11,
                           faults=Faults(disk=small_fs, garbage=True, removals=1))
    assert_clean(report)
    assert report.disk_full > 0 and report.garbage > 0, "\n".join(report.lines())
    assert report.removals == 1
    assert report.stopped_by_itself == [1], "\n".join(report.lines())


def corrupt(state_dir: Path, which: str) -> None:
    """What a crash on a filesystem without atomic renames, or a disk error, leaves behind."""
    if which == "feed shard truncated":
        shard = state_dir / "feeds" / "stream.json"
        data = shard.read_bytes()
        shard.write_bytes(data[: len(data) // 2])
    elif which == "outbox garbage":
        (state_dir / "outbox.json").write_bytes(b'{"deliveries": {"1": {"id": "x", \x00\x00\x00')
    elif which == "history torn line":
        newest = max(state_dir.glob("history-*.jsonl"), default=history_path(state_dir, datetime.now(UTC)))
        with newest.open("ab") as history:
            history.write(b'{"delivery_id": "torn", "channel": "whatsa')
    else:
        raise ValueError(which)


@pytest.mark.parametrize("which", ["feed shard truncated", "outbox garbage", "history torn line"])
def test_a_damaged_state_file_is_moved_aside_and_nothing_is_posted_again(tmp_path: Path, feed_server: FeedServer,
                                                                         which: str) -> None:
    with FakeWaha(api_key=API_KEY) as waha:
        config = write_config(tmp_path, feed_server, waha, None)
        stream = Stream(feed_server, every=1.0, limit=100)

        def run_once() -> subprocess.CompletedProcess[str]:
            done = run_bridge(config, "run", "--once", env=environment())
            assert done.returncode == 0, done.stderr
            return done

        stream.publish(3)
        run_once()
        stream.publish(2)
        run_once()
        assert len(waha.posts) == 2
        corrupt(tmp_path / "state", which)

        stream.publish(1)  # item 6
        after = run_once()
        texts = [post.text for post in waha.posts]
        assert len(texts) == len(set(texts)), "an item was posted twice"
        assert not any(f"/crash/{n}/" in text for n in (1, 2, 3) for text in texts)
        if which == "history torn line":
            assert not list((tmp_path / "state").rglob("*.corrupt-*"))
        else:
            (aside,) = list((tmp_path / "state").rglob("*.corrupt-*"))
            errors = [r for line in after.stderr.splitlines() if line.startswith("{")
                      for r in [json.loads(line)] if r.get("level") == "error"]
            assert [r["event"] for r in errors] == ["state file unreadable: moved aside, starting it afresh"]
            assert errors[0]["moved_to"] == str(aside)
        # A lost shard means the feed is treated as first-polled: item 6 is recorded, not posted.
        # Otherwise item 6 is simply new.
        assert (f"{SITE}/crash/6/" in "\n".join(texts)) == (which != "feed shard truncated")

        stream.publish(1)  # item 7: the feed is back to normal
        run_once()
        texts = [post.text for post in waha.posts]
        assert f"{SITE}/crash/7/" in "\n".join(texts)
        assert len(texts) == len(set(texts))
        assert [p for p in state_problems(tmp_path / "state") if not p.startswith("moved aside")] == []
        status = run_bridge(config, "status", "--json", env=environment(), timeout=30)
        assert status.returncode == 0, status.stderr


def test_a_kill_soon_after_a_feeds_first_poll_loses_no_later_item(tmp_path: Path, feed_server: FeedServer) -> None:
    with FakeWaha(api_key=API_KEY) as waha:
        config = write_config(tmp_path, feed_server, waha, None)
        stream = Stream(feed_server, every=1.0, limit=100)
        stream.publish(2)
        shard = tmp_path / "state" / "feeds" / "stream.json"
        daemon = Daemon(config, tmp_path / "daemon.log", env=environment())
        try:
            assert wait_for(shard.exists, 15), "the first poll never recorded its items"
        finally:
            daemon.kill()
        stream.publish(1)  # item 3 appears while the daemon is down: new, it must be posted
        done = run_bridge(config, "run", "--once", env=environment())
        assert done.returncode == 0, done.stderr
        assert [line for post in waha.posts for line in post.text.splitlines() if line.startswith(SITE)] == [
            f"{SITE}/crash/3/"]
