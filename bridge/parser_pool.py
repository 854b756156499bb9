"""Feed parsing in separate processes, each parse under a deadline.

feedparser can hold the GIL for minutes on a hostile feed (6.0.14 has a quadratic regex on
author e-mails), and a thread would not help: the daemon's event loop, its deliveries and its
watchdog pings would all stop. So parsing happens in worker processes; a parse that overruns
its deadline has its worker killed and replaced, and the feed gets a ParseError like any other
broken feed (reported, backed off), while everything else goes on.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

from bridge.parse import ParsedFeed, ParseError, parse_feed

log = structlog.get_logger("bridge.parser_pool")

DEFAULT_DEADLINE = 20.0


def _serve(conn: Connection) -> None:
    """Worker process: parse requests from `conn` until it closes."""
    # The daemon decides when workers stop; a Ctrl-C or SIGTERM sent to the whole process
    # group must not kill a parse half-way and leave the parent waiting.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        feed_id, body, url, headers = request
        try:
            reply: tuple[Any, ...] = ("ok", parse_feed(feed_id, body, url=url, headers=headers))
        except ParseError as exc:
            reply = ("error", str(exc), exc.hint)
        except Exception as exc:  # a parser bug must reach the parent as this feed's error, not kill the worker
            reply = ("error", f"the parser failed on this feed ({type(exc).__name__}: {exc})", "")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


class _Worker:
    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        parent, child = context.Pipe()
        self.conn: Connection = parent
        self.process: BaseProcess = context.Process(target=_serve, args=(child,), daemon=True,  # type: ignore[attr-defined]
                                                    name="channel-bridge-parser")
        self.process.start()
        child.close()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class ParserPool:
    """`workers` parser processes; `parse` waits for a free one, at most `deadline` seconds per parse.

    Two by default: one hostile feed running to its deadline must not hold every other feed's
    parse back (and the machine this is sized for has two cores).
    """

    def __init__(self, *, workers: int = 2, deadline: float = DEFAULT_DEADLINE) -> None:
        self.deadline = deadline
        self._size = workers
        # forkserver: workers start from a clean, single-threaded server process, never as a
        # fork of the daemon with its threads and sockets.
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["bridge.parse"])
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()

    def _spawn(self) -> _Worker:
        worker = _Worker(self._context)
        self._all.add(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)

    async def parse(
        self, feed_id: str, body: bytes, *, url: str, headers: Mapping[str, str] | None = None
    ) -> ParsedFeed:
        """Parse like `bridge.parse.parse_feed`, in a worker process.

        Raise ParseError for a broken feed, a parse that took longer than the deadline (the
        worker is killed and replaced), or a worker that died.
        """
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._size):
                self._idle.put_nowait(await asyncio.to_thread(self._spawn))
        worker = await self._idle.get()
        healthy = False
        try:
            worker.conn.send((feed_id, body, url, dict(headers or {})))
            await asyncio.wait_for(self._readable(worker.conn), self.deadline)
            reply = worker.conn.recv()
            healthy = True
        except TimeoutError:
            log.warning("feed parse overran its deadline; parser process killed", feed=feed_id,
                        deadline=self.deadline)
            raise ParseError(
                f"parsing took longer than {self.deadline:.0f} s and was stopped",
                hint="the feed is pathological (e.g. huge or malformed author fields); tell the site's webmaster",
            ) from None
        except (EOFError, OSError, BrokenPipeError) as exc:
            raise ParseError(f"the parser process died on this feed ({exc or type(exc).__name__})") from None
        finally:
            if healthy:
                self._idle.put_nowait(worker)
            else:
                self._retire(worker)
                self._idle.put_nowait(await asyncio.to_thread(self._spawn))
        if reply[0] == "ok":
            parsed: ParsedFeed = reply[1]
            return parsed
        raise ParseError(reply[1], hint=reply[2])

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

    async def aclose(self) -> None:
        """Stop every worker process."""
        for worker in list(self._all):
            self._retire(worker)
        self._idle = None
