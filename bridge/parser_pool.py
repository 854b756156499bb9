"""Feed parsing in separate processes, each parse under a deadline.

feedparser can hold the GIL for minutes on a hostile feed (6.0.14 has a quadratic regex on
author e-mails), and a thread would not help: the daemon's event loop, its deliveries and its
watchdog pings would all stop. So parsing happens in worker processes; a parse that overruns
its deadline has its worker killed, and the feed gets a ParseError like any other broken feed
(reported, backed off), while everything else goes on.

Workers are plain child processes (`python -m bridge.parser_pool`) speaking pickled messages
over their stdin and stdout: no fork of the daemon with its threads and sockets, no
multiprocessing helper processes. They start when a parse needs one and stop after a while
without work, so an idle daemon is one process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

import structlog

from bridge.alerts.source import SourceRequest, read_request
from bridge.alerts.state import Snapshot
from bridge.parse import ParsedFeed, ParseError, parse_feed

log = structlog.get_logger("bridge.parser_pool")

DEFAULT_DEADLINE = 20.0
IDLE_TIMEOUT = 60.0  # a worker without work this long exits; the next parse starts a new one
# A normal feed parses in milliseconds; a parse running this long is a hostile feed on its way
# to the deadline, and no longer counts against the pool's size (up to `SPARE_FACTOR` times it).
SLOW_PARSE = 2.0
SPARE_FACTOR = 3
# A new worker imports feedparser and BeautifulSoup before it says it is ready: seconds on a
# loaded machine. That time is the pool's, not the feed's: a parse's deadline starts once its
# worker is ready, and a worker that is not ready within this bound is a broken installation.
STARTUP_BOUND = 120.0
READY = ("ready",)


def serve(requests: Connection, replies: Connection) -> None:
    """Worker loop: parse each request from `requests`, answer on `replies`, until EOF."""
    # The daemon decides when workers stop; a Ctrl-C sent to the whole process group must not
    # kill a parse half-way and leave the parent waiting.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            feed_id, body, url, headers, source = requests.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[Any, ...] = ("ok", parse_feed(feed_id, body, url=url, headers=headers) if source is None
                                      else read_request(source, body))
        except ParseError as exc:
            reply = ("error", str(exc), exc.hint)
        except Exception as exc:  # a parser bug must reach the parent as this feed's error
            reply = ("error", f"the parser failed on this feed ({type(exc).__name__}: {exc})", "")
        try:
            replies.send(reply)
        except (OSError, ValueError):
            return


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge.parser_pool"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Its own session: a signal for the daemon's process group is not for it.
            start_new_session=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.replies = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        # Blocking, in the thread that starts the worker: the event loop goes on meanwhile.
        try:
            ready = self.replies.poll(STARTUP_BOUND) and self.replies.recv() == READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            raise ParseError(f"the parser process did not start within {STARTUP_BOUND:.0f} s",
                             hint="run `channel-bridge check`; the installation may be broken")
        self.idle_since = time.monotonic()
        self.busy_since = 0.0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        self.requests.close()
        self.replies.close()


class ParserPool:
    """Up to `workers` parser processes busy at once (two by default: the machine this is
    sized for has two cores); `parse` waits for a free one, at most `deadline` seconds a parse.

    A worker stuck on a hostile feed for over `SLOW_PARSE` seconds stops counting, so hanging
    feeds never hold the others' parses back; at most `SPARE_FACTOR` x `workers` processes.
    """

    def __init__(self, *, workers: int = 2, deadline: float = DEFAULT_DEADLINE,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.deadline = deadline
        self.idle_timeout = idle_timeout
        self._freed: asyncio.Event | None = None
        self._size = workers
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._starting = 0

    @property
    def running(self) -> int:
        """How many worker processes exist now."""
        return len(self._idle) + len(self._busy) + self._starting

    async def parse(
        self, feed_id: str, body: bytes, *, url: str, headers: Mapping[str, str] | None = None
    ) -> ParsedFeed:
        """Parse like `bridge.parse.parse_feed`, in a worker process.

        Raise ParseError for a broken feed, a parse that took longer than the deadline (the
        worker is killed), or a worker that died.
        """
        parsed: ParsedFeed = await self._ask(feed_id, (feed_id, body, url, dict(headers or {}), None))
        return parsed

    async def read_alerts(self, feed_id: str, source: SourceRequest, body: bytes) -> Snapshot:
        """Read an official alert source like `bridge.alerts.source.read_request`, in a worker process, under
        the same deadline and with the same errors as `parse`."""
        snapshot: Snapshot = await self._ask(feed_id, (feed_id, body, "", {}, source))
        return snapshot

    async def _ask(self, feed_id: str, request: tuple[Any, ...]) -> Any:
        worker = await self._checkout()
        healthy = False
        try:
            worker.requests.send(request)
            await asyncio.wait_for(self._readable(worker.replies), self.deadline)
            reply = worker.replies.recv()
            healthy = True
        except TimeoutError:
            log.warning("feed parse overran its deadline; parser process killed", feed=feed_id,
                        deadline=self.deadline)
            raise ParseError(
                f"parsing took longer than {self.deadline:.0f} s and was stopped",
                hint="the feed is pathological (e.g. huge or malformed author fields); tell the site's webmaster",
            ) from None
        except (EOFError, OSError) as exc:
            raise ParseError(f"the parser process died on this feed ({exc or type(exc).__name__})") from None
        finally:
            self._busy.discard(worker)
            assert self._freed is not None
            self._freed.set()
            if healthy:
                worker.idle_since = time.monotonic()
                self._idle.append(worker)
                self._reap_later()
            else:
                await asyncio.to_thread(worker.kill)
        if reply[0] == "ok":
            return reply[1]
        raise ParseError(reply[1], hint=reply[2])

    async def _checkout(self) -> _Worker:
        """An idle worker, or a new one when fewer than `workers` are busy with normal parses."""
        if self._freed is None:
            self._freed = asyncio.Event()
        while True:
            now = time.monotonic()
            normal = sum(1 for w in self._busy if now - w.busy_since < SLOW_PARSE)
            if normal + self._starting < self._size and (self._idle or self.running < self._size * SPARE_FACTOR):
                if self._idle:
                    worker = self._idle.pop()
                else:
                    self._starting += 1  # counted while it starts: no other parse may take its place
                    try:
                        worker = await asyncio.to_thread(_Worker)
                    finally:
                        self._starting -= 1
                worker.busy_since = time.monotonic()
                self._busy.add(worker)
                return worker
            self._freed.clear()
            try:
                # Woken when a worker is freed; otherwise look again as busy parses turn slow.
                await asyncio.wait_for(self._freed.wait(), SLOW_PARSE / 4)
            except TimeoutError:
                pass

    @staticmethod
    async def _readable(conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = conn.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(fd)

    def _reap_later(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap())

    async def _reap(self) -> None:
        """Stop workers that have had no work for `idle_timeout`; end when none is idle."""
        while self._idle:
            await asyncio.sleep(self.idle_timeout / 2)
            now = time.monotonic()
            for worker in [w for w in self._idle if now - w.idle_since >= self.idle_timeout]:
                self._idle.remove(worker)
                await asyncio.to_thread(worker.kill)

    async def aclose(self) -> None:
        """Stop every worker process."""
        if self._reaper is not None:
            self._reaper.cancel()
        for worker in [*self._idle, *self._busy]:
            await asyncio.to_thread(worker.kill)
        self._idle.clear()
        self._busy.clear()


def _worker_main() -> None:
    requests = Connection(os.dup(0), writable=False)
    replies = Connection(os.dup(1), readable=False)
    # Replies own the pipe; anything a library prints goes to stderr, never into the stream.
    os.dup2(2, 1)
    replies.send(READY)  # bridge.parse and its libraries are imported: parses can be timed
    serve(requests, replies)


if __name__ == "__main__":
    _worker_main()
