"""The running bridge: polls on a fixed schedule, one delivery worker per channel, signals.

`Bridge.run()` is the daemon (until SIGTERM/SIGINT; SIGHUP reloads the config);
`Bridge.run_once()` polls every feed once, delivers what is deliverable, and returns.

The state directory can fail under it. A write that fails (a full disk, a read-only mount)
is caught where polls and deliveries run, and the daemon says "state directory full or not
writable", with the path and the OS error, in the log, in the systemd status line, to the ops
channel and, for `status`, in its lock file; it keeps running, tries to write again every
STATE_RETRY seconds, and once it can, polls again the feeds whose poll failed and wakes the
delivery workers: it resumes by itself, and the condition clears. A state directory removed
or replaced (its lock path no longer names the lock file held) is checked every
LOCK_CHECK_EVERY seconds, with the watchdog, and before every send: the daemon then stops at
once with an error and a non-zero exit status, pinging the watchdog no more, so that a
second instance on the same path is the only one that posts.

Every change of the state is made in turn with its writes off the event loop
(`Store.acommit`), and awaited: a slow disk (an fsync that takes seconds) delays the poll or
the send that waits for it, never the loop, the other feeds or the watchdog.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import signal
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from bridge import systemd
from bridge.actions import plan_action, plan_timeouts
from bridge.addresses import ALLOW_PRIVATE_ENV, private_addresses_allowed
from bridge.approval import AWAITING, Action, Decision
from bridge.article import ArticleReader
from bridge.channels import Channel, ChannelError, open_channel
from bridge.clock import Clock, JumpWatch
from bridge.compose import Composed, Composition, plan_compose
from bridge.config import Config, ConfigError, FeedConfig, format_duration, load_config
from bridge.engagement import Engagement, keep_reading
from bridge.fetch import Fetcher
from bridge.images import ImageLoader
from bridge.ops import OpsReporter
from bridge.outbox import DrainResult, drain, overdue_urgent, pacing_for
from bridge.parser_pool import ParserPool
from bridge.poll import PollResult, poll_feed
from bridge.slots import Slots
from bridge.store import STATE_PROBLEM, StateError, StateLockLostError, StateWriteError, Store, write_failure

if TYPE_CHECKING:
    from bridge.cards import CardStyle
    from bridge.console.server import Console
    from bridge.control.server import ControlServer

log = structlog.get_logger("bridge.daemon")


# The channel types that post image cards (`bridge.cards`).
CARD_CHANNEL_TYPES = frozenset({"facebook", "bluesky"})


def _card_style(config: Config) -> CardStyle | None:
    """The style the channels draw image cards in: `[cards]` with its crest; a crest that
    cannot be read (`check` names the problem) is left off the cards, logged, not fatal.
    None when no channel posts cards (Pillow is not loaded)."""
    if not any(channel.type in CARD_CHANNEL_TYPES for channel in config.channels.values()):
        return None
    from bridge.cards import CrestError, load_style  # Pillow, loaded once per start or reload

    try:
        return load_style(config.cards)
    except CrestError as exc:
        log.warning("image cards are drawn without the crest", problem=str(exc))
        return load_style(replace(config.cards, crest=None))

MAX_CONCURRENT_POLLS = 64  # polls fetching and parsing at once
MAX_POLLS_PER_HOST = 2  # many comuni share one provider's server: be a polite client
# Polls under way at once, those whose record waits for its turn of the store included: what
# bounds the memory they hold when the disk falls far behind the polls.
MAX_POLLS_UNDER_WAY = 256
STOP_GRACE = 25.0  # seconds in-flight sends (a WAHA send verifies by read-back) get on SIGTERM
STATUS_EVERY = 5.0  # seconds between two computations of the systemd status line
# First polls (at start, or of feeds a reload adds or changes) per second: 8,000 feeds are all
# polled within 40 s of a start, without 8,000 polls waiting for a slot at once.
FIRST_POLLS_PER_SECOND = 200
MAX_PHASES = 600  # scheduler jobs per interval at most: a 5-minute interval has 300 (one a second)
FLUSH_EVERY = 60.0  # seconds between two writes of the feeds' poll states
# ... and how soon they are written after a poll changed a feed's health (its first poll, a
# failure, a recovery): `status`, another process, reads them from disk, and must not say
# "not polled yet" or "ok" for a minute. One write for all the polls of those seconds.
FLUSH_SOON = 2.0
PROBE_INTERVAL = timedelta(minutes=5)  # how often a paused channel's health is checked
STATE_RETRY = 5.0  # seconds between two tries to write the state while it cannot be written
LOCK_CHECK_EVERY = 2.0  # seconds between two checks that the state directory is still ours
# How often the wall clock is compared with the monotonic one even when nothing reads it: a
# worker waiting for the end of quiet hours must hear of a step within seconds.
CLOCK_CHECK_EVERY = 2.0
# How often alerts awaiting approval are looked at (approve_timeout, the ops announcement), on
# the daemon's clock; an editor's action and a poll that queues one look at once.
APPROVAL_CHECK = timedelta(seconds=10)
AWAITING_SUBJECT = "avvisi da approvare"  # the ops alert's subject: one per min_interval


def utcnow() -> datetime:
    return datetime.now(UTC)


def moment_text(moment: datetime, now: datetime, tz: tzinfo) -> str:
    """`moment` for the status line, in `tz`: "10:32" when it is today there, else with its
    date, "2026-11-30 10:32"."""
    local = moment.astimezone(tz)
    return f"{local:%H:%M}" if local.date() == now.astimezone(tz).date() else f"{local:%Y-%m-%d %H:%M}"


class Bridge:
    """The daemon's moving parts around one open `Store`."""

    def __init__(self, config: Config, store: Store, *, clock: Clock | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock or Clock()
        self._jumps = JumpWatch(self.clock)
        if private_addresses_allowed():
            log.warning("test-only switch set: article pages and images may come from loopback and private "
                        "addresses; never set it in service", variable=ALLOW_PRIVATE_ENV)
        self.fetcher = make_fetcher(config)
        self.parser = ParserPool()
        self.articles = ArticleReader(self.fetcher)
        # Channels post images as bytes downloaded here (https only, never a private address),
        # so a feed cannot make a gateway fetch internal URLs.
        self.images = ImageLoader(allow_private=private_addresses_allowed(), user_agent=config.bridge.user_agent)
        self.http = httpx.AsyncClient(headers={"User-Agent": config.bridge.user_agent})
        self.channels: dict[str, Channel] = {}
        # Urgent feeds take every poll slot first (`bridge.slots`); routine ones in turn.
        self._poll_slots = Slots(MAX_CONCURRENT_POLLS)
        self._polls_under_way = Slots(MAX_POLLS_UNDER_WAY)
        self._per_host: dict[str, Slots] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._polls: dict[str, asyncio.Task[None]] = {}  # feed id -> its poll under way
        self._phases: dict[tuple[float, int], list[str]] = {}  # (interval, phase) -> feed ids
        self._first_polls: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Future[None]] = set()
        self._stopping = asyncio.Event()
        self._scheduler: AsyncIOScheduler | None = None
        # Ops alerts are queued in the outbox for the ops channel; its worker is woken for them.
        self.ops = OpsReporter(None, min_interval=config.ops.min_interval, now=self.now, store=store,
                               wake=lambda name: self._wake_channels([name]), timezone=config.bridge.timezone)
        self._last_probe: dict[str, float] = {}  # channel -> monotonic time of its last health probe
        # The wall time the poll phases count from (moved with the wall clock when it steps).
        self._epoch = self.clock.wall()
        self._status = ""
        self._status_at = -STATUS_EVERY
        self._status_call: asyncio.TimerHandle | None = None
        self._reload_rejected: str | None = None
        # Where a state write failed last ("feed X", "channel Y", "flush") -> its error; empty
        # while the state can be written. Each place clears its own entry when it next succeeds.
        self._state_failures: dict[str, StateWriteError] = {}
        self._state_since: datetime | None = None
        self._fatal: StateLockLostError | None = None  # why the daemon must stop at once
        self._state_trouble = asyncio.Event()  # set at the first failed write: the flusher retries
        self._health_changed = asyncio.Event()  # set by a poll that changed its feed's health: flush soon
        self.console: Console | None = None  # the staff console, while it is served
        # Views and reactions of the WAHA posts, for the console: read in the background while
        # it is served (`bridge.engagement.keep_reading`).
        self.engagement = Engagement(self.clock.monotonic)
        self.control: ControlServer | None = None  # the control socket, while it is served
        self._approvals_changed = asyncio.Event()  # an editor acted: look at the approvals again

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
        next attempt, an awaiting alert's `approve_timeout`, a failing feed's next try), and
        wake the delivery workers to plan again (quiet hours and `max_per_day` keep following
        the wall clock, which has moved).

        A channel's last post is a record, not a deadline: see `bridge.outbox` for how
        `min_gap` treats one that a step back has put in the future.
        """
        direction = "back" if step < 0 else "forward"
        log.warning(f"wall clock jumped {direction} by {abs(round(step))} s; schedule rebuilt", step=round(step, 3))
        shift = timedelta(seconds=step)
        self._reschedule(shift)
        # Asked for now, so that it comes after every change asked for before this reading
        # (their deadlines are of the old clock) and before any asked for after it.
        moving = self.store.amove_deadlines(shift)
        self._background(self._deadlines_moved(moving))

    async def _deadlines_moved(self, moving: asyncio.Future[None]) -> None:
        """Once the state's deadlines are moved, write the poll states and wake the workers."""
        try:
            await moving
            await self.store.acommit(self.store.plan_flush())
        except (OSError, StateError) as exc:
            # Poll states moved in memory hold until the next write; the daemon goes on (or
            # stops, if the state directory is no longer its own).
            if not self._state_failed("flush", exc):  # the flusher retries and clears it
                log.exception("moving the deadlines after a step of the wall clock crashed")
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
        cards = _card_style(self.config)
        self.channels = {
            name: open_channel(cfg, http=self.http, images=self.images, cards=cards)
            for name, cfg in self.config.channels.items()
        }
        ops = self.config.ops
        self.ops.channel = self.channels.get(ops.channel) if ops.channel else None
        self.ops.min_interval = ops.min_interval
        self.ops.timezone = self.config.bridge.timezone

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
            polls = await asyncio.gather(*(self._poll_once(feed) for feed in self.config.feeds))
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

    async def _poll_once(self, feed: FeedConfig) -> PollResult:
        """One poll for `run --once`: a state write that fails fails this feed, not the run."""
        try:
            return await self._poll(feed, force=True)
        except StateWriteError as exc:
            log.error(STATE_PROBLEM, feed=feed.id, path=str(exc.path), error=exc.detail, hint=exc.hint)
            return PollResult(feed_id=feed.id, ok=False, error=str(exc))

    def _host_slots(self, feed: FeedConfig) -> Slots:
        host = "" if feed.is_local else (urlsplit(feed.url).hostname or "")
        if host not in self._per_host:
            self._per_host[host] = Slots(MAX_POLLS_PER_HOST)
        return self._per_host[host]

    @contextlib.asynccontextmanager
    async def _fetch_slots(self, feed: FeedConfig) -> AsyncIterator[None]:
        """Held while a poll talks to its feed's host and parses (see `poll_feed`)."""
        # The host's slot first: waiting for a busy host must not hold one of the global slots.
        async with self._host_slots(feed).take(urgent=feed.polls_urgently), \
                self._poll_slots.take(urgent=feed.polls_urgently):
            yield

    async def _poll(self, feed: FeedConfig, *, force: bool = False) -> PollResult:
        # The fetch slots are left before the poll's record waits for the disk: a slow disk
        # holds the polls that wait for it, never the others' fetches (which would then start
        # all at once when the disk catches up).
        health_before = self.store.feed_state(feed.id).health(self.now())
        async with self._polls_under_way.take(urgent=feed.polls_urgently):
            try:
                result = await poll_feed(
                    feed, config=self.config, fetcher=self.fetcher, store=self.store, now=self.now, force=force,
                    parser=self.parser, reader=self.articles, fetching=partial(self._fetch_slots, feed),
                )
            except BaseException:
                # Its deliveries may be in the outbox already (a later write failed): the
                # workers must not wait for a poll that succeeds to send them.
                self._wake_channels(feed.channels)
                raise
        for delivery in result.queued:
            if delivery.state == AWAITING:
                self._approvals_changed.set()  # announced on the ops channel without waiting
            elif delivery.channel in self._wake:
                self._wake[delivery.channel].set()
        health = self.store.feed_state(feed.id).health(self.now())
        if health.status != health_before.status:
            self._health_changed.set()
        if health.status in ("failing", "stale"):
            await self.ops.report(f"feed {feed.id} {health.status}", health.detail,
                                  hint="check the feed URL in config.toml and the comune's web site")
        else:
            self.ops.clear(f"feed {feed.id} failing")
            self.ops.clear(f"feed {feed.id} stale")
        self._update_status()
        return result

    def _wake_channels(self, names: tuple[str, ...] | list[str]) -> None:
        for name in names:
            if name in self._wake:
                self._wake[name].set()

    def status_line(self) -> str:
        """One line for `systemctl status`: "12 feeds, 0 failing, 1 stale, queue 0, last post 10:32",
        after what stops or blocks the daemon (the state directory), if anything does."""
        if self._fatal is not None:
            return f"stopping: {self._fatal}"
        moment = self.now()
        health = [self.store.feed_state(feed.id).health(moment).status for feed in self.config.feeds]
        queue = len(self.store.deliveries())
        last = max((at for name in self.channels if (at := self.store.last_post(name))), default=None)
        count = len(self.config.feeds)
        parts = [f"{count} feed{'' if count == 1 else 's'}", f"{health.count('failing')} failing"]
        if health.count("stale"):
            parts.append(f"{health.count('stale')} stale")
        parts.append(f"queue {queue}")
        paused = [name for name in self.channels if self.store.channel_pause(name)]
        if paused:
            parts.append(f"paused: {', '.join(paused)}")
        parts.append(f"last post {moment_text(last, moment, self.config.bridge.timezone)}" if last else "no post yet")
        line = ", ".join(parts)
        if self._reload_rejected:
            line = f"{line}; {self._reload_rejected}"
        if self._state_failures:
            latest = list(self._state_failures.values())[-1]
            line = f"{STATE_PROBLEM}: {latest.detail}; {line}"
        return line

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

    # -- editors' actions and approval mode (bridge.approval, bridge.actions) ---------------

    async def act(self, action: Action, *, who: str, where: str) -> Decision:
        """Apply an editor's action (the command line's over the control socket, the
        console's): decided at its turn, durable (audit, then outbox) before this returns; its
        channel's worker is woken. Raise approval.ActionRefused, changing nothing."""
        decision = await self.store.acommit(plan_action(self.store, self.config, action, who=who, where=where,
                                                        now=self.now()))
        log.info("editor's action", action=action.action, alert=action.alert_id, user=who, where=where,
                 channel=decision.before.channel, reason=action.reason or None, message=decision.message)
        self._wake_channels([decision.before.channel])
        self._approvals_changed.set()
        return decision

    async def delete_post(self, delivery_id: str, *, who: str, where: str, reason: str) -> str:
        """Delete a post on its platform, as `who` asked from `where` (`bridge.deletion`): the
        audit entry first, then the platform, then the entry that says it is done; return what
        happened. Raise approval.ActionRefused when it is refused or the platform did not
        delete it (then the trail says the deletion did not take effect)."""
        from bridge.approval import NOT_ALLOWED, ActionRefused
        from bridge.audit import AuditEntry, not_applied
        from bridge.channels import DeleteUnsupported
        from bridge.deletion import DELETE, DELETED, check_delete

        post = check_delete(delivery_id, self.store.post(delivery_id), self.store.last_action(delivery_id),
                            reason=reason, timezone=self.config.bridge.timezone)
        assert post.remote_id is not None
        shown = {"state": "posted", "title": post.title, "summary": "", "send_now": False}
        asked = AuditEntry(at=self.now(), who=who, where=where, action=DELETE, alert_id=post.delivery_id,
                           channel=post.channel, feed_id=post.feed_id, title=post.title, before=shown,
                           after=None, reason=reason.strip())
        await self.store.acommit(self.store.plan_act([asked], [], []))
        channel = self.channels.get(post.channel)
        try:
            if channel is None:
                raise DeleteUnsupported(f"channel {post.channel} is no longer in the config")
            gone = await channel.delete(post.remote_id)
        except ChannelError as exc:
            await self.store.acommit(self.store.plan_act([not_applied(asked, self.now(), str(exc))], [], []))
            log.warning("post not deleted", delivery=delivery_id, channel=post.channel, user=who, where=where,
                        error=str(exc), hint=exc.hint)
            raise ActionRefused(NOT_ALLOWED, f"post {delivery_id} not deleted: {exc}", hint=exc.hint) from None
        done = AuditEntry(at=self.now(), who=who, where=where, action=DELETED, alert_id=post.delivery_id,
                          channel=post.channel, feed_id=post.feed_id, title=post.title, before=shown,
                          after=None, reason=reason.strip())
        await self.store.acommit(self.store.plan_act([done], [], []))
        message = (f"post {delivery_id} deleted on {post.channel}" if gone else
                   f"post {delivery_id} was no longer on {post.channel}: recorded as deleted")
        log.warning("post deleted", delivery=delivery_id, channel=post.channel, remote_id=post.remote_id,
                    user=who, where=where, reason=reason.strip(), message=message)
        return message
    async def compose(self, composition: Composition, *, who: str, where: str) -> Composed:
        """Queue an alert an editor wrote, or a test message (`bridge.compose`), for the command
        line (over the control socket) and the console alike: decided at its turn, durable
        (audit, then outbox) before this returns; its channels' workers are woken. Raise
        approval.ActionRefused, changing nothing."""
        composed = await self.store.acommit(plan_compose(self.store, self.config, composition, who=who, where=where,
                                                         now=self.now()))
        log.info("editor's alert queued", action=composition.action, compose=composition.compose_id, user=who,
                 where=where, urgent=composition.urgent, channels=[d.channel for d in composed.deliveries],
                 title=composed.deliveries[0].alert.title if composed.deliveries else None)
        self._wake_channels([d.channel for d in composed.deliveries])
        return composed

    async def _approvals(self) -> None:
        """Every APPROVAL_CHECK: apply `approve_timeout`, then announce the alerts awaiting
        approval on the ops channel (at most once per `[ops] min_interval`, by the ops
        reporter's own limit)."""
        while not self._stopping.is_set():
            try:
                decisions = await self.store.acommit(plan_timeouts(self.store, self.config, self.now()))
                for decision in decisions:
                    log.warning("approve_timeout: " + decision.message, alert=decision.before.id,
                                channel=decision.before.channel, title=decision.before.alert.title)
                self._wake_channels(list(dict.fromkeys(d.before.channel for d in decisions)))
                waiting = len(self.store.deliveries(state=AWAITING))
                if waiting:
                    await self.ops.report(AWAITING_SUBJECT, f"{waiting} avvis{'o' if waiting == 1 else 'i'} "
                                          "da approvare", hint="channel-bridge queue, or the console's In coda page")
                else:
                    self.ops.clear(AWAITING_SUBJECT)
            except Exception as exc:
                if not self._state_failed("approvals", exc):
                    log.exception("approval check crashed")
            else:
                self._state_ok("approvals")
            self._approvals_changed.clear()
            await self.clock.sleep(APPROVAL_CHECK.total_seconds(), self._approvals_changed)

    async def _drain(self, name: str, *, once: bool = False) -> DrainResult:
        return await drain(
            self.channels[name],
            store=self.store,
            alerts=self.config.alerts,
            timezone=self.config.bridge.timezone,
            now=self.now,
            pacing=pacing_for(self.config.channels[name], self.config.alerts),
            once=once,
            max_age=self._max_age,
        )

    def _max_age(self, feed_id: str) -> timedelta:
        """The feed's max_age; for a feed no longer in the config, the longest one configured
        (an alert is then never expired sooner than any feed would have it)."""
        for feed in self.config.feeds:
            if feed.id == feed_id:
                return feed.max_age
        return max((feed.max_age for feed in self.config.feeds), default=timedelta(days=7))

    # -- the state directory failing under the daemon ---------------------------------------

    def _state_failed(self, where: str, exc: BaseException) -> bool:
        """Handle `exc` if it is the state directory failing (True), else leave it (False).

        A removed or replaced state directory stops the daemon. A write that failed marks the
        state as not writable until `where` succeeds again; the first failure is logged as an
        error and reported, the next ones only at debug level.
        """
        if not isinstance(exc, StateLockLostError):
            try:
                self.store.check_lock()  # a directory removed fails writes first: say the real cause
            except StateLockLostError as lost:
                exc = lost
        if isinstance(exc, StateLockLostError):
            self._lost(exc)
            return True
        error = write_failure(exc, self.store.state_dir)
        if error is None:
            return False
        first = not self._state_failures
        self._state_failures.pop(where, None)
        self._state_failures[where] = error  # the latest last: the status line shows it
        if not first:
            log.debug("state still not writable", where=where, error=error.detail)
            return True
        self._state_since = self.now()
        self._state_trouble.set()
        log.error(STATE_PROBLEM, where=where, path=str(error.path), error=error.detail, hint=error.hint)
        self.store.note_problem(str(error), self._state_since, error.hint)
        self._background(self._report_state(error))
        self._refresh_status()
        return True

    async def _report_state(self, error: StateWriteError) -> None:
        await self.ops.report(STATE_PROBLEM, error.detail, hint=error.hint, urgent=True)

    def _state_ok(self, where: str) -> None:
        """`where` wrote the state (or had nothing to write): the condition ends with the last one."""
        if self._state_failures.pop(where, None) is None or self._state_failures:
            return
        log.info("state directory writable again; polls and deliveries resume", since=_iso(self._state_since))
        self._state_since = None
        self.store.note_problem(None)
        self.ops.clear(STATE_PROBLEM)
        self._wake_channels(list(self._wake))
        self._refresh_status()

    def _retry_state_writes(self) -> None:
        """The state could be written again: poll again at once the feeds whose poll failed to
        record, and wake the workers whose delivery did; each clears its part when it succeeds."""
        for where in list(self._state_failures):
            kind, _, name = where.partition(" ")
            if kind == "feed":
                if any(feed.id == name for feed in self.config.feeds):
                    self._start_poll(name)
                else:
                    self._state_ok(where)  # removed by a reload
            elif kind == "channel":
                if name in self._wake:
                    self._wake[name].set()
                else:
                    self._state_ok(where)

    def _lost(self, exc: StateLockLostError) -> None:
        """The state directory is no longer ours: stop now, with `exc` as the exit reason."""
        if self._fatal is not None:
            return
        self._fatal = exc
        log.error("state directory removed or replaced; stopping", error=str(exc), hint=exc.hint)
        self._refresh_status()
        self._stopping.set()

    # -- the daemon -------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; reload on SIGHUP. Return 0 after a clean stop."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._background(self.reload()))
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
        guard = asyncio.ensure_future(self._guard())
        flusher = asyncio.ensure_future(self._flusher())
        clock_watch = asyncio.ensure_future(self._watch_clock())
        approvals = asyncio.ensure_future(self._approvals())
        await self._start_console()
        readings = (asyncio.ensure_future(keep_reading(self.engagement, lambda: self.channels, self.now, self.clock))
                    if self.console is not None else None)
        if readings is not None:
            readings.add_done_callback(_said_if_it_failed)
        await self._start_control()
        self._refresh_status()
        systemd.notify("READY=1")
        log.info("channel-bridge started", feeds=len(self.config.feeds), channels=list(self.channels))
        self._warn_orphans()
        try:
            await self._stopping.wait()
        finally:
            systemd.notify("STOPPING=1")
            log.info("stopping")
            guard.cancel()
            flusher.cancel()
            clock_watch.cancel()
            approvals.cancel()
            if readings is not None:
                readings.cancel()
            await self._shutdown()
        if self._fatal is not None:
            raise self._fatal
        log.info("stopped")
        return 0

    async def _start_console(self) -> None:
        """Serve the staff console on this loop when `[console] listen` is set. One that cannot
        listen (the port taken) is an error in the log; polls and deliveries go on without it."""
        listen = self.config.console.listen
        if listen is None:
            return
        from bridge.console.server import Console  # the web stack is loaded only when it is on

        console = Console(self, monotonic=self.clock.monotonic)
        try:
            await console.start(*listen)
        except OSError as exc:
            log.error("console cannot listen; the bridge runs without it", address=f"{listen[0]}:{listen[1]}",
                      error=exc.strerror or str(exc), hint="choose a free port in [console] listen, then restart")
            return
        self.console = console

    async def _start_control(self) -> None:
        """Serve the control socket (`bridge.control`) on this loop. One that cannot be served
        is an error in the log; polls and deliveries go on, and commands read the state."""
        from bridge.control.server import ControlServer, ControlSocketError

        control = ControlServer(self, self.config.bridge.socket_path)
        try:
            await control.start()
        except ControlSocketError as exc:
            log.error("control socket not served; commands cannot reach the daemon", error=str(exc),
                      hint=exc.hint)
            return
        self.control = control

    def _warn_orphans(self) -> None:
        """Deliveries queued for a channel the config no longer has wait, shown in `status`; say so."""
        orphans: dict[str, int] = {}
        for delivery in self.store.deliveries():
            if delivery.channel not in self.channels:
                orphans[delivery.channel] = orphans.get(delivery.channel, 0) + 1
        for name, count in sorted(orphans.items()):
            log.warning("alerts queued for a channel that is not in the config: they wait for it, and expire "
                        "after max_age", channel=name, queued=count)

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
        except Exception as exc:
            # The one boundary that keeps the daemon alive: a bug in one poll must not stop
            # the others. The traceback goes to the log (without local variables). A state
            # that cannot be written is no bug: it is reported and the poll retried.
            if not self._state_failed(f"feed {feed_id}", exc):
                log.exception("poll crashed", feed=feed_id)
        else:
            self._state_ok(f"feed {feed_id}")

    def _start_workers(self) -> None:
        for name in self.channels:
            if name not in self._workers:
                self._wake[name] = asyncio.Event()
                self._workers[name] = asyncio.ensure_future(self._worker(name))

    async def _worker(self, name: str) -> None:
        wake = self._wake[name]
        while not self._stopping.is_set():
            wake.clear()
            try:
                await self._probe_if_paused(name)
                result = await self._drain(name)
            except Exception as exc:
                if not self._state_failed(f"channel {name}", exc):
                    log.exception("delivery crashed", channel=name)
                # Not writable: woken when it is again, else retried in a minute.
                result = DrainResult(channel=name, next_due=self.now() + timedelta(minutes=1))
            else:
                self._state_ok(f"channel {name}")
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
        await self.store.acommit(self.store.plan_channel_pause(name, None))
        self.ops.clear(f"channel {name} paused")
        log.info("channel can post again; its queue resumes", channel=name, health=health)

    async def _report(self, name: str, result: DrainResult) -> None:
        if result.down is not None:
            await self.ops.report(f"channel {name} paused", result.down,
                                  hint="fix the channel or the gateway, then: systemctl reload channel-bridge",
                                  urgent=True, about_channel=name)
        elif result.unverified:
            await self.ops.report(f"channel {name} posts not visible", "; ".join(result.errors),
                                  hint="check the WhatsApp session in the gateway's dashboard",
                                  urgent=True, about_channel=name)
        elif result.wrong_answer is not None:
            await self.ops.report(f"channel {name} answers are not posts", result.wrong_answer,
                                  hint="nothing is recorded as posted: the alert stays queued and is retried, "
                                  "after checking whether it went out", about_channel=name)
        elif result.failed and not result.sent:
            await self.ops.report(f"channel {name} failing", result.errors[-1], about_channel=name)
        elif result.sent:
            self.ops.clear(f"channel {name} failing")
            self.ops.clear(f"channel {name} answers are not posts")
        late = overdue_urgent(self.store.deliveries(name), self.now())
        if late:
            oldest = min(late, key=lambda d: d.created)
            waited = format_duration(self.now() - oldest.created)
            await self.ops.report(
                f"channel {name} urgent alert late",
                f"{len(late)} urgent alert{'' if len(late) == 1 else 's'} not posted on {name} after {waited}: "
                f"{oldest.alert.title}" + (f" ({oldest.last_error})" if oldest.last_error else ""),
                hint="channel-bridge queue shows why it waits; the alert is retried every few seconds",
                urgent=True, about_channel=name)
        else:
            self.ops.clear(f"channel {name} urgent alert late")

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
        """Write the feeds' poll states now and then (a 304 changes them in memory only).

        While the state cannot be written this is the retry: every STATE_RETRY seconds it
        writes them anyway, and once that works it sets off the polls and deliveries that
        failed to record (see `_retry_state_writes`)."""
        while True:
            if self._state_failures:
                await asyncio.sleep(STATE_RETRY)
            else:
                self._state_trouble.clear()
                self._health_changed.clear()
                trouble = asyncio.ensure_future(self._state_trouble.wait())
                changed = asyncio.ensure_future(self._health_changed.wait())
                try:
                    await asyncio.wait((trouble, changed), timeout=FLUSH_EVERY, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    trouble.cancel()
                    changed.cancel()
                if self._state_trouble.is_set():
                    continue  # a write just failed: the first retry comes STATE_RETRY from now
                if self._health_changed.is_set():
                    await asyncio.sleep(FLUSH_SOON)
            try:
                await self.store.acommit(self.store.plan_flush(force=bool(self._state_failures)))
            except Exception as exc:
                if not self._state_failed("flush", exc):
                    log.exception("writing the poll states crashed")
                continue
            self._state_ok("flush")
            self._retry_state_writes()

    async def _guard(self) -> None:
        """Ping the watchdog, if systemd asked for one, and check that the state directory is
        still ours, from the event loop itself: a stalled loop stops the pings and systemd
        acts; a state directory lost stops the daemon and the pings."""
        interval = systemd.watchdog_interval()
        # Checks every `every` seconds; a ping every `checks` of them, so every `interval`.
        checks = max(math.ceil(interval / LOCK_CHECK_EVERY), 1) if interval is not None else 0
        every = interval / checks if interval is not None else LOCK_CHECK_EVERY
        for count in itertools.count():
            try:
                self.store.check_lock()
            except StateLockLostError as exc:
                self._lost(exc)
                return
            if checks and count % checks == 0:
                systemd.notify("WATCHDOG=1")
            await asyncio.sleep(every)

    async def reload(self) -> None:
        """Re-read the config file; keep running the old one if the new one is invalid."""
        if self._stopping.is_set():
            return  # too late: READY=1 must not follow STOPPING=1
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
        if config.console != self.config.console:
            log.warning("[console] changes take effect at restart, not reload")
        if config.bridge.socket_path != self.config.bridge.socket_path:
            log.warning("control_socket changes take effect at restart, not reload")
        if _fetch_settings(config) != _fetch_settings(self.config):
            # Polls under way finish with the old fetcher; it is closed once they are done.
            old_fetcher = self.fetcher
            self.fetcher = make_fetcher(config)
            self.articles = ArticleReader(self.fetcher)
            self._background(self._close_later(old_fetcher, config.bridge.fetch_timeout.total_seconds() + 5))
            self.images.set_user_agent(config.bridge.user_agent)
        old_channels = self.channels
        old_feeds = {feed.id: feed for feed in self.config.feeds}
        self.config = config
        self.channels = {}
        for channel in old_channels.values():
            await channel.aclose()
        self._open_channels()
        for name in self.channels:
            # A reload re-reads secrets: give every paused channel a fresh try.
            try:
                await self.store.acommit(self.store.plan_channel_pause(name, None))
            except (StateError, OSError) as exc:
                if not self._state_failed(f"channel {name}", exc):
                    raise
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
        if self._stopping.is_set():
            return
        systemd.notify("READY=1")
        log.info("config reloaded", feeds=len(config.feeds), channels=list(self.channels))
        self._warn_orphans()

    async def _shutdown(self) -> None:
        # No new polls. Running polls are cancelled at once: a poll records what it found in
        # one change of the state, its last step, which is either not begun (then nothing is
        # recorded, and the next start polls again) or completed whoever waits for it; a slow
        # feed could otherwise hold the stop for its whole deadline. Sends in flight get
        # STOP_GRACE to finish; then the state changes asked for are let finish.
        if self._scheduler is not None:
            self._scheduler.pause()
        if self.control is not None:
            await self.control.stop()
            self.control = None
        if self.console is not None:
            await self.console.stop()  # open pages get a few seconds; nothing of the state is theirs
            self.console = None
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
        await self.store.settled()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self._status_call is not None:
            self._status_call.cancel()
        await self.aclose()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


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
    """The feed (and article page) fetcher for `config`'s [bridge] settings."""
    return Fetcher(
        user_agent=config.bridge.user_agent,
        timeout=config.bridge.fetch_timeout.total_seconds(),
        max_bytes=config.bridge.max_feed_bytes,
        allow_private_pages=private_addresses_allowed(),
    )


def _fetch_settings(config: Config) -> tuple[object, ...]:
    bridge = config.bridge
    return (bridge.user_agent, bridge.fetch_timeout, bridge.max_feed_bytes)


def open_bridge(config_path: Path) -> tuple[Config, Store]:
    """Load the config and open its state for writing (raises ConfigError, StateError)."""
    config = load_config(config_path)
    store = Store.open(config.bridge.state_dir)
    return config, store


def _said_if_it_failed(task: asyncio.Task[None]) -> None:
    """A background reading that ended by a bug says so once in the log, instead of stopping
    unseen: the console then shows counts that no longer change, and IT sees why."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("views and reactions are no longer read (a bug: please report it)",
                  error=f"{type(exc).__name__}: {exc}", exc_info=exc)
