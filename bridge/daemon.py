"""The running bridge: polls on a fixed schedule, one delivery worker per channel, signals.

`Bridge.run()` is the daemon (until SIGTERM/SIGINT; SIGHUP reloads the config);
`Bridge.run_once()` polls every feed once, delivers what is deliverable, and returns.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from bridge import systemd
from bridge.article import ArticleReader
from bridge.channels import Channel, ChannelError, open_channel
from bridge.clock import Clock, JumpWatch
from bridge.config import Config, ConfigError, FeedConfig, load_config
from bridge.fetch import Fetcher
from bridge.images import ImageLoader
from bridge.logs import register_secrets
from bridge.ops import OpsReporter
from bridge.outbox import DrainResult, drain, pacing_for
from bridge.parser_pool import ParserPool
from bridge.poll import PollResult, poll_feed
from bridge.store import StateError, Store

log = structlog.get_logger("bridge.daemon")

MAX_CONCURRENT_POLLS = 64
MAX_POLLS_PER_HOST = 2  # many comuni share one provider's server: be a polite client
STOP_GRACE = 25.0  # seconds in-flight sends (a WAHA send verifies by read-back) get on SIGTERM
STATUS_EVERY = 5.0  # seconds between two computations of the systemd status line
# First polls (at start, or of feeds a reload adds or changes) per second: 8,000 feeds are all
# polled within 40 s of a start, without 8,000 polls waiting for a slot at once.
FIRST_POLLS_PER_SECOND = 200
MAX_PHASES = 600  # scheduler jobs per interval at most: a 5-minute interval has 300 (one a second)
FLUSH_EVERY = 60.0  # seconds between two writes of the feeds' poll states
PROBE_INTERVAL = timedelta(minutes=5)  # how often a paused channel's health is checked
# How often the wall clock is compared with the monotonic one even when nothing reads it: a
# worker waiting for the end of quiet hours must hear of a step within seconds.
CLOCK_CHECK_EVERY = 2.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def config_secrets(config: Config) -> list[str]:
    """Every secret value in `config`, to be masked in logs."""
    return [
        secret.value
        for channel in config.channels.values()
        for secret in (channel.api_key, channel.token, channel.secret)
        if secret is not None
    ]


class Bridge:
    """The daemon's moving parts around one open `Store`."""

    def __init__(self, config: Config, store: Store, *, clock: Clock | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock or Clock()
        self._jumps = JumpWatch(self.clock)
        register_secrets(config_secrets(config))
        self.fetcher = make_fetcher(config)
        self.parser = ParserPool()
        self.articles = ArticleReader(self.fetcher)
        # Channels post images as bytes downloaded here (https only, never a private address),
        # so a feed cannot make a gateway fetch internal URLs.
        self.images = ImageLoader()
        self.http = httpx.AsyncClient(headers={"User-Agent": config.bridge.user_agent})
        self.channels: dict[str, Channel] = {}
        self._poll_slots = asyncio.Semaphore(MAX_CONCURRENT_POLLS)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._polls: dict[str, asyncio.Task[None]] = {}  # feed id -> its poll under way
        self._phases: dict[tuple[float, int], list[str]] = {}  # (interval, phase) -> feed ids
        self._first_polls: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Future[None]] = set()
        self._stopping = asyncio.Event()
        self._scheduler: AsyncIOScheduler | None = None
        self.ops = OpsReporter(None, min_interval=config.ops.min_interval, now=self.now)
        self._last_probe: dict[str, float] = {}  # channel -> monotonic time of its last health probe
        # The wall time the poll phases count from (moved with the wall clock when it steps).
        self._epoch = self.clock.wall()
        self._status = ""
        self._status_at = -STATUS_EVERY
        self._status_call: asyncio.TimerHandle | None = None
        self._reload_rejected: str | None = None

    # -- time -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The wall time, for the rules of the day and for what people read.

        Every reading first compares the wall clock with the monotonic one: when the wall
        clock was stepped since the previous reading, the kept deadlines are moved by the step
        (`_clock_stepped`) before the new time is returned, so a deadline computed from a
        reading is never off by a step made earlier.
        """
        wall, step = self._jumps.read()
        if step:
            self._clock_stepped(step)
        return wall

    def _clock_stepped(self, step: float) -> None:
        """The wall clock moved by `step` seconds more than the monotonic one: move every
        wall-clock deadline kept in memory and in the state by as much, so that each still
        falls due after the same monotonic wait (the poll jobs: `_reschedule`; a delivery's
        next attempt, a failing feed's next try), and wake the delivery workers to plan again
        (quiet hours and `max_per_day` keep following the wall clock, which has moved).

        A channel's last post is a record, not a deadline: see `bridge.outbox` for how
        `min_gap` treats one that a step back has put in the future.
        """
        direction = "back" if step < 0 else "forward"
        log.warning(f"wall clock jumped {direction} by {abs(round(step))} s; schedule rebuilt", step=round(step, 3))
        shift = timedelta(seconds=step)
        self._reschedule(shift)
        try:
            for delivery in self.store.deliveries():
                if delivery.next_attempt is not None:
                    self.store.update_delivery(replace(delivery, next_attempt=delivery.next_attempt + shift))
            for feed in self.config.feeds:
                state = self.store.feed_state(feed.id)
                if state.retry_at is not None or state.failing_since is not None:
                    self.store.save_feed(replace(
                        state,
                        retry_at=state.retry_at + shift if state.retry_at else None,
                        failing_since=state.failing_since + shift if state.failing_since else None,
                    ))
            self.store.flush()
        except (OSError, StateError) as exc:
            # What was moved in memory holds until the next write; the daemon goes on.
            log.error("could not write the moved deadlines to the state", error=str(exc))
        for event in self._wake.values():
            event.set()

    def _reschedule(self, shift: timedelta) -> None:
        """Move every poll job's next run, and the epoch that the phases of jobs added later
        count from, by `shift`.

        apscheduler keeps wall times: after a step back of an hour it would wait the hour for
        the next run, after a step forward it would run every job at once. Moved by the step,
        each job runs after the same wait as before it, and keeps its phase: its interval
        trigger counts every later run from the previous one (previous + interval), and the
        first-poll plan counts from the epoch.
        """
        self._epoch += shift
        scheduler = self._scheduler
        if scheduler is None:
            return
        running = scheduler.state == STATE_RUNNING
        if running:
            scheduler.pause()  # each change would wake the scheduler; resume() wakes it once
        try:
            for job in scheduler.get_jobs():
                next_run = getattr(job, "next_run_time", None)  # unset until the scheduler starts
                if next_run is not None:
                    job.modify(next_run_time=next_run + shift)
        finally:
            if running:
                scheduler.resume()

    async def _watch_clock(self) -> None:
        """Read the wall clock now and then, so that a step is noticed while nothing else
        reads it (every worker waiting, no poll under way)."""
        while True:
            await self.clock.sleep(CLOCK_CHECK_EVERY)
            self.now()

    def _open_channels(self) -> None:
        self.channels = {
            name: open_channel(cfg, http=self.http, images=self.images) for name, cfg in self.config.channels.items()
        }
        ops = self.config.ops
        self.ops.channel = self.channels.get(ops.channel) if ops.channel else None
        self.ops.min_interval = ops.min_interval

    async def aclose(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()
        await self.http.aclose()
        await self.fetcher.aclose()
        await self.parser.aclose()
        await self.images.aclose()

    # -- one cycle --------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Poll every feed once, then try every pending delivery once. Return the exit code:
        0 if all went well, 1 if any feed or delivery failed."""
        self._open_channels()
        try:
            polls = await asyncio.gather(*(self._poll(feed, force=True) for feed in self.config.feeds))
            drains = [await self._drain(name, once=True) for name in self.channels]
        finally:
            await self.aclose()
        failed_feeds = [p for p in polls if not p.ok]
        failed_sends = sum(d.failed for d in drains)
        waiting = sum(d.waiting for d in drains)
        log.info(
            "cycle done",
            feeds=len(polls),
            failed_feeds=len(failed_feeds),
            posted=sum(d.sent for d in drains),
            failed_sends=failed_sends,
            waiting=waiting,
        )
        return 1 if failed_feeds or failed_sends else 0

    def _host_slots(self, feed: FeedConfig) -> asyncio.Semaphore:
        host = "" if feed.is_local else (urlsplit(feed.url).hostname or "")
        if host not in self._per_host:
            self._per_host[host] = asyncio.Semaphore(MAX_POLLS_PER_HOST)
        return self._per_host[host]

    async def _poll(self, feed: FeedConfig, *, force: bool = False) -> PollResult:
        # The host's slot first: waiting for a busy host must not hold one of the global slots.
        async with self._host_slots(feed), self._poll_slots:
            result = await poll_feed(
                feed, config=self.config, fetcher=self.fetcher, store=self.store, now=self.now, force=force,
                parser=self.parser, reader=self.articles,
            )
        for delivery in result.queued:
            if delivery.channel in self._wake:
                self._wake[delivery.channel].set()
        health = self.store.feed_state(feed.id).health(self.now())
        if health.status in ("failing", "stale"):
            await self.ops.report(f"feed {feed.id} {health.status}", health.detail,
                                  hint="check the feed URL in config.toml and the comune's web site")
        else:
            self.ops.clear(f"feed {feed.id} failing")
            self.ops.clear(f"feed {feed.id} stale")
        self._update_status()
        return result

    def status_line(self) -> str:
        """One line for `systemctl status`: "12 feeds, 0 failing, 1 stale, queue 0, last post 10:32"."""
        moment = self.now()
        health = [self.store.feed_state(feed.id).health(moment).status for feed in self.config.feeds]
        queue = len(self.store.deliveries())
        last = max((at for name in self.channels if (at := self.store.last_post(name))), default=None)
        parts = [f"{len(self.config.feeds)} feeds", f"{health.count('failing')} failing"]
        if health.count("stale"):
            parts.append(f"{health.count('stale')} stale")
        parts.append(f"queue {queue}")
        paused = [name for name in self.channels if self.store.channel_pause(name)]
        if paused:
            parts.append(f"paused: {', '.join(paused)}")
        tz = self.config.bridge.timezone
        parts.append(f"last post {last.astimezone(tz):%H:%M}" if last else "no post yet")
        line = ", ".join(parts)
        return f"{line}; {self._reload_rejected}" if self._reload_rejected else line

    def _update_status(self) -> None:
        """Refresh the systemd status line, at most every STATUS_EVERY seconds: it looks at
        every feed, and polls come by the thousand."""
        loop = asyncio.get_running_loop()
        wait = self._status_at + STATUS_EVERY - loop.time()
        if wait > 0:
            if self._status_call is None:
                self._status_call = loop.call_later(wait, self._refresh_status)
            return
        self._refresh_status()

    def _refresh_status(self) -> None:
        if self._status_call is not None:
            self._status_call.cancel()
        self._status_call = None
        self._status_at = asyncio.get_running_loop().time()
        line = self.status_line()
        if line != self._status:
            self._status = line
            systemd.notify(systemd.status_line(line))

    async def _drain(self, name: str, *, once: bool = False) -> DrainResult:
        return await drain(
            self.channels[name],
            store=self.store,
            alerts=self.config.alerts,
            timezone=self.config.bridge.timezone,
            now=self.now,
            pacing=pacing_for(self.config.channels[name], self.config.alerts),
            once=once,
        )

    # -- the daemon -------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; reload on SIGHUP. Return 0 after a clean stop."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._background(self.reload()))
        if os.environ.get("CHANNEL_BRIDGE_TEST_HOOKS") == "1":
            # Test hook for the watchdog: SIGUSR2 blocks the event loop as a real hang would.
            loop.add_signal_handler(signal.SIGUSR2, lambda: time.sleep(3600))
        self._open_channels()
        self._scheduler = _PollScheduler(
            # The scheduler compares its jobs with the wall clock: a step is noticed first.
            self.now,
            timezone=self.config.bridge.timezone,
            # Late is better than never: apscheduler 3 skips a run more than 1 s late by default.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._epoch = self.now()
        self._schedule_feeds()
        self._scheduler.start()
        self._start_workers()
        watchdog = asyncio.ensure_future(self._watchdog())
        flusher = asyncio.ensure_future(self._flusher())
        clock_watch = asyncio.ensure_future(self._watch_clock())
        self._refresh_status()
        systemd.notify("READY=1")
        log.info("channel-bridge started", feeds=len(self.config.feeds), channels=list(self.channels))
        try:
            await self._stopping.wait()
        finally:
            systemd.notify("STOPPING=1")
            log.info("stopping")
            watchdog.cancel()
            flusher.cancel()
            clock_watch.cancel()
            await self._shutdown()
        log.info("stopped")
        return 0

    def _schedule_feeds(self, previous: dict[str, FeedConfig] | None = None) -> None:
        """Schedule every feed's polls; on reload, first-poll only the feeds new or changed.

        A feed is polled every `interval` at a fixed phase of it, drawn from its id: polls are
        spread evenly over the interval (8,000 feeds do not all fire at once), and two polls
        of a feed are never more than one interval apart, whatever the wall clock does (a
        step moves the jobs: `_reschedule`). Feeds sharing an interval and a phase share one
        scheduler job: at most MAX_PHASES jobs per interval, whatever the number of feeds.
        """
        assert self._scheduler is not None
        self.now()  # a step of the wall clock not yet noticed moves the epoch before it is used
        phases: dict[tuple[float, int], list[str]] = {}
        fresh = []
        for feed in self.config.feeds:
            phases.setdefault(_phase(feed), []).append(feed.id)
            if not previous or previous.get(feed.id) != feed:
                fresh.append(feed)
        self._phases = phases
        jobs = {_job_id(key): key for key in phases}
        for job in self._scheduler.get_jobs():
            if job.id not in jobs:
                job.remove()
        for job_id, (interval, phase) in jobs.items():
            if self._scheduler.get_job(job_id) is None:
                self._scheduler.add_job(
                    self._poll_phase,
                    IntervalTrigger(seconds=interval, start_date=self._epoch + timedelta(seconds=phase),
                                    timezone=self.config.bridge.timezone),
                    args=[(interval, phase)],
                    id=job_id,
                    name=job_id,
                )
        if fresh:
            task = asyncio.ensure_future(self._poll_first(fresh))
            self._first_polls.add(task)
            task.add_done_callback(self._first_polls.discard)

    async def _poll_first(self, feeds: list[FeedConfig]) -> None:
        """Poll `feeds` once soon, spread at FIRST_POLLS_PER_SECOND in phase order; a feed
        whose scheduled poll comes within that spread waits for it instead."""
        started = self.clock.monotonic()
        for delay, feed_id in self._first_poll_plan(feeds):
            wait = started + delay - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)
            self._start_poll(feed_id)

    def _first_poll_plan(self, feeds: list[FeedConfig]) -> list[tuple[float, str]]:
        """When to first-poll each of `feeds`, in seconds from now on the monotonic clock, in
        that order; a feed whose scheduled poll comes within the spread is left out.

        A feed takes the place in the spread that its next scheduled poll has in its interval
        (phase order), counted from the epoch of the phases: that is moved with the wall clock
        when it steps, as the jobs are, so the plan is the same after a step.
        """
        spread = len(feeds) / FIRST_POLLS_PER_SECOND
        elapsed = (self.now() - self._epoch).total_seconds()
        plan = []
        for feed in feeds:
            interval, phase = _phase(feed)
            until_scheduled = (phase - elapsed) % interval
            if until_scheduled > spread:
                plan.append((until_scheduled / interval * spread, feed.id))
        return sorted(plan)

    async def _poll_phase(self, key: tuple[float, int]) -> None:
        for feed_id in self._phases.get(key, ()):
            self._start_poll(feed_id)

    def _start_poll(self, feed_id: str) -> None:
        if self._stopping.is_set():
            return
        if feed_id in self._polls:
            # Polls end within the fetch and parse deadlines; one still running (waiting for
            # a busy host) simply takes the place of this one.
            log.debug("previous poll still under way", feed=feed_id)
            return
        task = asyncio.ensure_future(self._poll_job(feed_id))
        self._polls[feed_id] = task
        task.add_done_callback(lambda _: self._polls.pop(feed_id, None))

    async def _poll_job(self, feed_id: str) -> None:
        try:
            await self._poll(self.config.feed(feed_id))
        except KeyError:
            pass  # the feed was removed by a reload while this poll was waiting
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            log.debug("poll cut short by the stop", feed=feed_id)  # nothing was committed
        except Exception:
            # The one boundary that keeps the daemon alive: a bug in one poll must not stop
            # the others. The traceback goes to the log (without local variables).
            log.exception("poll crashed", feed=feed_id)

    def _start_workers(self) -> None:
        for name in self.channels:
            if name not in self._workers:
                self._wake[name] = asyncio.Event()
                self._workers[name] = asyncio.ensure_future(self._worker(name))

    async def _worker(self, name: str) -> None:
        wake = self._wake[name]
        while not self._stopping.is_set():
            wake.clear()
            await self._probe_if_paused(name)
            try:
                result = await self._drain(name)
            except Exception:
                log.exception("delivery crashed", channel=name)
                result = DrainResult(channel=name, next_due=self.now() + timedelta(minutes=1))
            if self._stopping.is_set() or name not in self.channels:
                return
            await self._report(name, result)
            self._update_status()
            timeout = None
            if result.down is not None:
                timeout = PROBE_INTERVAL.total_seconds()
            elif result.next_due is not None:
                # A wall-clock deadline turned into a monotonic wait: if the wall clock is
                # stepped meanwhile, `_clock_stepped` wakes this worker to plan again.
                timeout = max((result.next_due - self.now()).total_seconds(), 0.05)
            await self.clock.sleep(timeout, wake)

    async def _probe_if_paused(self, name: str) -> None:
        """A paused channel resumes by itself once its health probe succeeds (WAHA session
        WORKING again, Telegram bot admin again), checked every PROBE_INTERVAL."""
        reason = self.store.channel_pause(name)
        last = self._last_probe.get(name)
        now = self.clock.monotonic()
        if reason is None or (last is not None and now - last < PROBE_INTERVAL.total_seconds()):
            return
        self._last_probe[name] = now
        try:
            health = await self.channels[name].probe()
        except ChannelError as exc:
            log.info("channel still cannot post", channel=name, error=str(exc))
            return
        self.store.set_channel_pause(name, None)
        self.ops.clear(f"channel {name} paused")
        log.info("channel can post again; its queue resumes", channel=name, health=health)

    async def _report(self, name: str, result: DrainResult) -> None:
        if result.down is not None:
            await self.ops.report(f"channel {name} paused", result.down,
                                  hint="fix the channel or the gateway, then: systemctl reload channel-bridge")
        elif result.unverified:
            await self.ops.report(f"channel {name} posts not visible", "; ".join(result.errors),
                                  hint="check the WhatsApp session in the gateway's dashboard")
        elif result.failed and not result.sent:
            await self.ops.report(f"channel {name} failing", result.errors[-1])
        elif result.sent:
            self.ops.clear(f"channel {name} failing")

    def _background(self, work: Coroutine[object, object, None]) -> None:
        """Run `work` as a task that is kept referenced until it ends."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _close_later(fetcher: Fetcher, delay: float) -> None:
        await asyncio.sleep(delay)
        await fetcher.aclose()

    async def _flusher(self) -> None:
        """Write the feeds' poll states now and then (a 304 changes them in memory only)."""
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self.store.flush()

    async def _watchdog(self) -> None:
        interval = systemd.watchdog_interval()
        if interval is None:
            return
        # Pinged from the event loop itself: a stalled loop stops the pings and systemd acts.
        while True:
            systemd.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def reload(self) -> None:
        """Re-read the config file; keep running the old one if the new one is invalid."""
        systemd.notify(systemd.reloading_message())
        try:
            config = load_config(self.config.path)
        except ConfigError as exc:
            # The status line first: whoever reads the journal line may look at it at once.
            self._reload_rejected = f"reload rejected: {len(exc.errors)} error(s) in config.toml, see the journal"
            self._refresh_status()
            systemd.notify("READY=1")
            log.error("reload rejected; still running the previous config", errors=exc.errors)
            await self.ops.report("reload rejected", "; ".join(exc.errors),
                                  hint="correct config.toml (channel-bridge check), then reload again")
            return
        if config.bridge.state_dir != self.config.bridge.state_dir:
            log.warning("state_dir changes take effect at restart, not reload")
        register_secrets(config_secrets(config))
        if _fetch_settings(config) != _fetch_settings(self.config):
            # Polls under way finish with the old fetcher; it is closed once they are done.
            old_fetcher = self.fetcher
            self.fetcher = make_fetcher(config)
            self.articles = ArticleReader(self.fetcher)
            self._background(self._close_later(old_fetcher, config.bridge.fetch_timeout.total_seconds() + 5))
        old_channels = self.channels
        old_feeds = {feed.id: feed for feed in self.config.feeds}
        self.config = config
        self.channels = {}
        for channel in old_channels.values():
            await channel.aclose()
        self._open_channels()
        for name in self.channels:
            # A reload re-reads secrets: give every paused channel a fresh try.
            self.store.set_channel_pause(name, None)
        for name in list(self._workers):
            if name not in self.channels:
                self._workers.pop(name).cancel()
                self._wake.pop(name, None)
        self._start_workers()
        self._schedule_feeds(old_feeds)
        for event in self._wake.values():
            event.set()
        self._reload_rejected = None
        self._refresh_status()
        systemd.notify("READY=1")
        log.info("config reloaded", feeds=len(config.feeds), channels=list(self.channels))

    async def _shutdown(self) -> None:
        # No new polls. Running polls are cancelled at once: a poll commits nothing before its
        # last, synchronous step, so cutting one short loses nothing (the next start polls
        # again), while a slow feed could otherwise hold the stop for its whole deadline.
        # Sends in flight get STOP_GRACE to finish.
        if self._scheduler is not None:
            self._scheduler.pause()
        for task in [*self._first_polls, *self._polls.values()]:
            task.cancel()
        for event in self._wake.values():
            event.set()
        pending = [*self._workers.values(), *self._polls.values()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self._status_call is not None:
            self._status_call.cancel()
        await self.aclose()


def _phase(feed: FeedConfig) -> tuple[float, int]:
    """The feed's interval (seconds) and the second of it at which it is polled: one of at most
    MAX_PHASES evenly spaced ones, so that a long interval does not take a job per feed."""
    interval = feed.interval.total_seconds()
    step = max(-(-int(interval) // MAX_PHASES), 1)  # seconds between two phases, rounded up
    return interval, zlib.crc32(feed.id.encode()) % max(int(interval) // step, 1) * step


def _job_id(key: tuple[float, int]) -> str:
    interval, phase = key
    return f"poll every {interval:g}s at +{phase}s"


class _PollScheduler(AsyncIOScheduler):  # type: ignore[misc]  # apscheduler 3 has no type hints
    """apscheduler's asyncio scheduler, which calls `before_each_look` before each look at
    its jobs.

    It compares the jobs' next run times with the wall clock, read by itself: the daemon's
    check for a step of that clock (`Bridge.now`) must come first, or a step forward noticed
    just after a look would find the jobs already run and then move them an hour away.
    `_process_jobs` is where apscheduler 3 looks (on every wakeup: its timer on the event
    loop's clock, or a change of a job); `<4` in pyproject.toml pins it.
    """

    def __init__(self, before_each_look: Callable[[], object], **options: Any) -> None:
        super().__init__(**options)
        self._before_each_look = before_each_look

    def _process_jobs(self) -> float | None:
        self._before_each_look()
        wait: float | None = super()._process_jobs()
        return wait


def make_fetcher(config: Config) -> Fetcher:
    """The feed fetcher for `config`'s [bridge] settings."""
    return Fetcher(
        user_agent=config.bridge.user_agent,
        timeout=config.bridge.fetch_timeout.total_seconds(),
        max_bytes=config.bridge.max_feed_bytes,
    )


def _fetch_settings(config: Config) -> tuple[object, ...]:
    bridge = config.bridge
    return (bridge.user_agent, bridge.fetch_timeout, bridge.max_feed_bytes)


def open_bridge(config_path: Path) -> tuple[Config, Store]:
    """Load the config and open its state for writing (raises ConfigError, StateError)."""
    config = load_config(config_path)
    store = Store.open(config.bridge.state_dir)
    return config, store
