"""A farm of comune feeds on many loopback hosts, for `bench/scale.py` and `tests/test_scale_small.py`.

`FeedFarm` runs in its own process (so that its CPU is its own and measurable) an asyncio
HTTP/1.1 server bound to each of `hosts` loopback addresses 127.0.1.1, 127.0.1.2, ... (all of
127.0.0.0/8 is loopback on Linux; nothing else is ever bound), one port for all. It serves
`feeds` realistic Design Comuni (WordPress) RSS feeds of 20 items, about 15 KB each, with a
strong ETag and a Last-Modified, answering 304 to a matching conditional GET. Every answer
(200 or 304) waits the feed's latency first, without blocking the server (`call_later`):
by default 50-150 ms, and 1-2 s for a share of "slow" feeds.

    with FeedFarm(FarmSpec(feeds=500)) as farm:
        urls = farm.urls()
        farm.change([3, 17], at=[time.time() + 5, time.time() + 9])  # one new item each
        farm.stats(since=mark)   # requests, 200/304, max concurrent per host, server CPU

Bounded: the server process exits by itself after `lifetime` seconds or as soon as its
parent goes away (the control pipe closes); `close()` stops it and kills it if it lingers.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import multiprocessing
import os
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from xml.sax.saxutils import escape

ITEMS_PER_FEED = 20
FIRST_HOST = "127.0.1.1"
MAX_HOSTS = 250
ITEM_SPACING = 36 * 3600  # seconds between the farm's old items: 20 items span a month


@dataclass(frozen=True, slots=True)
class FarmSpec:
    """What the farm serves: `feeds` feeds over `hosts` loopback addresses.

    Feed `i` lives on host `i % hosts`. Each answer waits a latency drawn uniformly from
    `latency` (seconds), or from `slow_latency` for the `slow_share` of feeds chosen as slow
    (a fixed, seeded choice). `lifetime` bounds the server process in seconds.
    """

    feeds: int
    hosts: int = MAX_HOSTS
    latency: tuple[float, float] = (0.05, 0.15)
    slow_share: float = 0.05
    slow_latency: tuple[float, float] = (1.0, 2.0)
    seed: int = 7
    lifetime: float = 3600.0

    def host(self, index: int) -> str:
        """The loopback address serving feed `index`: 127.0.1.(1 + index % hosts)."""
        return f"127.0.1.{1 + index % self.hosts}"


@dataclass(frozen=True, slots=True)
class FarmStats:
    """What the server saw since a mark (`FeedFarm.mark()`); times are `time.time()`."""

    requests: int
    ok: int  # 200 with a body
    not_modified: int  # 304
    first_request: float | None
    last_answer: float | None
    max_in_flight: int  # concurrent requests over all hosts
    max_per_host: int  # the highest concurrency any one host saw
    server_cpu: float  # CPU seconds of the server process since the mark
    per_feed: dict[int, int] = field(default_factory=dict)  # feed index -> requests
    ok_answers: dict[int, float] = field(default_factory=dict)  # feed index -> time of its last 200


# -- feed content ------------------------------------------------------------------------------

_TOPICS = (
    ("Avviso di chiusura temporanea di via {via} per lavori alla rete idrica",
     "Da lunedì {giorno} la via {via} resta chiusa al traffico per i lavori di rifacimento della rete idrica "
     "comunale. Le deviazioni sono indicate sul posto e il servizio di trasporto pubblico segue un percorso "
     "alternativo."),
    ("Bando per l'assegnazione di contributi alle associazioni sportive {anno}",
     "È pubblicato il bando per i contributi alle associazioni sportive del territorio per l'anno {anno}. "
     "Le domande si presentano entro il {giorno} tramite lo sportello telematico del Comune."),
    ("Iscrizioni al servizio di mensa scolastica a.s. {anno}",
     "Sono aperte le iscrizioni al servizio di mensa scolastica per le scuole dell'infanzia e primarie. "
     "Le famiglie possono presentare la domanda online fino al {giorno}, allegando l'attestazione ISEE."),
    ("Allerta meteo gialla per temporali: indicazioni della protezione civile",
     "Il Centro funzionale regionale ha emesso un'allerta gialla per temporali valida fino alle ore 24 di "
     "{giorno}. Si raccomanda di evitare i sottopassi e di seguire gli aggiornamenti sul sito del Comune."),
    ("Nuovi orari di apertura dell'ufficio anagrafe dal {giorno}",
     "Dal {giorno} l'ufficio anagrafe riceve il pubblico dal lunedì al venerdì dalle 8.30 alle 12.30 e il "
     "giovedì pomeriggio dalle 15 alle 17.30, solo su appuntamento per la carta d'identità elettronica."),
    ("Consiglio comunale convocato per il {giorno}",
     "Il Consiglio comunale è convocato in seduta ordinaria per il {giorno} alle ore 20.30 nella sala "
     "consiliare di piazza {via}. All'ordine del giorno il rendiconto e le variazioni di bilancio {anno}."),
)
_VIE = ("Roma", "Garibaldi", "Mazzini", "Dante", "Verdi", "Cavour", "Marconi", "Matteotti", "XX Settembre")
_GIORNI = ("3 marzo", "12 aprile", "21 maggio", "8 giugno", "15 settembre", "2 ottobre", "19 novembre")


def _item_xml(feed: int, number: int, published: float) -> str:
    rng = random.Random(feed * 100_003 + number)
    title_t, lead_t = _TOPICS[rng.randrange(len(_TOPICS))]
    words = {"via": rng.choice(_VIE), "giorno": rng.choice(_GIORNI), "anno": str(2025 + rng.randrange(3))}
    # The comune's name in the title: two comuni with the same title would rightly be posted once.
    title = f"Comune {feed:05d}: {title_t.format(**words)} (n. {number})"
    lead = lead_t.format(**words)
    site = f"https://www.comune-{feed:05d}.example.it"
    link = f"{site}/novita/avviso-{number}/"
    body = f"<p>{escape(lead)}</p>"
    return (
        "\t<item>\n"
        f"\t\t<title>{escape(title)}</title>\n"
        f"\t\t<link>{link}</link>\n"
        "\t\t<dc:creator><![CDATA[redazione]]></dc:creator>\n"
        f"\t\t<pubDate>{email.utils.formatdate(published, usegmt=True)}</pubDate>\n"
        "\t\t<category><![CDATA[Notizie]]></category>\n"
        f'\t\t<guid isPermaLink="false">{site}/?post_type=notizia&amp;p={number}</guid>\n'
        f"\t\t<description><![CDATA[{lead[:100]} [&#8230;]]]></description>\n"
        f"\t\t<content:encoded><![CDATA[{body}]]></content:encoded>\n"
        "\t</item>\n"
    )


def feed_xml(feed: int, items: Sequence[tuple[int, float]]) -> bytes:
    """Feed `feed` as RSS 2.0 bytes listing `items` (number, published epoch), newest first."""
    site = f"https://www.comune-{feed:05d}.example.it"
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"\n'
        '\txmlns:content="http://purl.org/rss/1.0/modules/content/"\n'
        '\txmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '\txmlns:atom="http://www.w3.org/2005/Atom"\n\t>\n<channel>\n'
        f"\t<title>Comune {feed:05d}</title>\n"
        f'\t<atom:link href="{site}/feed/?post_type=notizia" rel="self" type="application/rss+xml" />\n'
        f"\t<link>{site}</link>\n"
        f"\t<description>Sito istituzionale del Comune {feed:05d}</description>\n"
        f"\t<lastBuildDate>{email.utils.formatdate(items[0][1], usegmt=True)}</lastBuildDate>\n"
        "\t<language>it-IT</language>\n"
        "\t<generator>https://wordpress.org/?v=6.8.2</generator>\n"
    )
    return (head + "".join(_item_xml(feed, n, at) for n, at in items) + "</channel>\n</rss>\n").encode()


def item_link(feed: int, number: int) -> str:
    """The link of item `number` of feed `feed`, as posted (it names both)."""
    return f"https://www.comune-{feed:05d}.example.it/novita/avviso-{number}/"


def parse_item_link(link: str) -> tuple[int, int] | None:
    """(feed, number) from a link made by `item_link`, None for anything else."""
    try:
        host, _, rest = link.removeprefix("https://www.comune-").partition(".example.it/novita/avviso-")
        return int(host), int(rest.strip("/"))
    except ValueError:
        return None


# -- the server (runs in the farm's process) --------------------------------------------------


class _Feed:
    __slots__ = ("body", "etag", "index", "items", "last_modified", "latency")

    def __init__(self, index: int, latency: tuple[float, float], created: float) -> None:
        self.index = index
        self.latency = latency
        # Items 1..20, the newest dated a few hours ago; changes add 21, 22, ...
        newest = created - 3 * 3600
        self.items = [(n, newest - (ITEMS_PER_FEED - n) * ITEM_SPACING) for n in range(ITEMS_PER_FEED, 0, -1)]
        self.body = b""
        self.etag = ""
        self.last_modified = ""
        self._render(newest)

    def _render(self, modified: float) -> None:
        self.body = feed_xml(self.index, self.items)
        self.etag = '"' + hashlib.sha1(self.body).hexdigest()[:20] + '"'
        self.last_modified = email.utils.formatdate(modified, usegmt=True)

    def add_item(self, at: float) -> int:
        number = self.items[0][0] + 1
        self.items = [(number, at), *self.items[: ITEMS_PER_FEED - 1]]
        self._render(at)
        return number


class _Server:
    def __init__(self, spec: FarmSpec) -> None:
        self.spec = spec
        rng = random.Random(spec.seed)
        slow = set(rng.sample(range(spec.feeds), round(spec.feeds * spec.slow_share)))
        created = time.time()
        self.feeds = [_Feed(i, spec.slow_latency if i in slow else spec.latency, created) for i in range(spec.feeds)]
        self.rng = random.Random(spec.seed + 1)
        self.changes: list[tuple[int, int, float]] = []  # feed, item number, time
        self.in_flight = 0
        self.host_in_flight: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Counters from now; requests in flight stay counted as in flight."""
        self.requests = 0
        self.ok = 0
        self.not_modified = 0
        self.first_request: float | None = None
        self.last_answer: float | None = None
        self.max_in_flight = self.in_flight
        self.max_per_host = max(self.host_in_flight.values(), default=0)
        self.per_feed: dict[int, int] = {}
        self.ok_answers: dict[int, float] = {}
        self.cpu_mark = time.process_time()

    def stats(self) -> FarmStats:
        return FarmStats(
            requests=self.requests, ok=self.ok, not_modified=self.not_modified, first_request=self.first_request,
            last_answer=self.last_answer, max_in_flight=self.max_in_flight, max_per_host=self.max_per_host,
            server_cpu=time.process_time() - self.cpu_mark, per_feed=dict(self.per_feed),
            ok_answers=dict(self.ok_answers),
        )

    def change(self, feed: int) -> None:
        at = time.time()
        number = self.feeds[feed].add_item(at)
        self.changes.append((feed, number, at))

    def begin(self, host: str, target: str) -> _Feed | None:
        now = time.time()
        self.requests += 1
        if self.first_request is None:
            self.first_request = now
        self.in_flight += 1
        count = self.host_in_flight.get(host, 0) + 1
        self.host_in_flight[host] = count
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.max_per_host = max(self.max_per_host, count)
        # /comune-00042/feed/
        try:
            index = int(target.split("/")[1].removeprefix("comune-"))
        except (IndexError, ValueError):
            return None
        if not 0 <= index < len(self.feeds):
            return None
        self.per_feed[index] = self.per_feed.get(index, 0) + 1
        return self.feeds[index]

    def end(self, host: str, feed: _Feed | None, status: int) -> None:
        now = time.time()
        self.in_flight -= 1
        self.host_in_flight[host] -= 1
        self.last_answer = now
        if status == 200:
            self.ok += 1
            if feed is not None:
                self.ok_answers[feed.index] = now
        elif status == 304:
            self.not_modified += 1


class _Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, one request at a time per connection (no client here pipelines)."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.buffer = b""
        self.busy = False
        self.transport: asyncio.Transport | None = None
        self.host = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.host = transport.get_extra_info("sockname")[0]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > 64 * 1024:
            self._close()
            return
        self._next()

    def _next(self) -> None:
        if self.busy or b"\r\n\r\n" not in self.buffer:
            return
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        target = parts[1] if len(parts) > 1 else "/"
        feed = self.server.begin(self.host, target)
        self.busy = True
        if feed is None:
            asyncio.get_running_loop().call_soon(self._answer, None, 404, headers)
            return
        delay = self.server.rng.uniform(*feed.latency)
        asyncio.get_running_loop().call_later(delay, self._answer, feed, 200, headers)

    def _answer(self, feed: _Feed | None, status: int, headers: dict[str, str]) -> None:
        body = b""
        extra = ""
        if feed is not None:
            match = headers.get("if-none-match")
            if match is not None:
                fresh = feed.etag in {tag.strip().removeprefix("W/") for tag in match.split(",")}
            else:
                fresh = headers.get("if-modified-since") == feed.last_modified
            status = 304 if fresh else 200
            body = b"" if fresh else feed.body
            extra = f"ETag: {feed.etag}\r\nLast-Modified: {feed.last_modified}\r\n"
            if not fresh:
                extra += "Content-Type: application/rss+xml; charset=UTF-8\r\n"
        reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
        close = headers.get("connection", "").lower() == "close"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nServer: farm\r\nContent-Length: {len(body)}\r\n{extra}"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        )
        self.server.end(self.host, feed, status)
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(head.encode("latin-1") + body)
        self.busy = False
        if close:
            self._close()
        else:
            self._next()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _bind_all(spec: FarmSpec) -> tuple[int, list[socket.socket]]:
    """Sockets listening on 127.0.1.1..N, one common port (a few tries if a port is taken)."""
    for _ in range(10):
        sockets: list[socket.socket] = []
        try:
            port = 0
            for host_index in range(spec.hosts):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sockets.append(sock)
                sock.bind((spec.host(host_index), port))
                sock.listen(512)
                sock.setblocking(False)
                port = sock.getsockname()[1]
            return port, sockets
        except OSError:
            for sock in sockets:
                sock.close()
    raise RuntimeError("could not bind one port on every 127.0.1.x address")


async def _serve(spec: FarmSpec, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    server = _Server(spec)
    port, sockets = _bind_all(spec)
    servers = [await loop.create_server(lambda: _Connection(server), sock=sock) for sock in sockets]
    done = loop.create_future()
    handles: list[asyncio.TimerHandle] = []

    def on_command() -> None:
        try:
            command, args = conn.recv()
        except (EOFError, OSError):
            if not done.done():
                done.set_result(None)
            return
        reply: Any = None
        if command == "mark":
            server.reset()
        elif command == "stats":
            reply = server.stats()
        elif command == "change":
            feeds, moments = args
            now = time.time()
            for feed, at in zip(feeds, moments, strict=True):
                handles.append(loop.call_later(max(0.0, at - now), server.change, feed))
        elif command == "changes":
            reply = list(server.changes)
        elif command == "stop":
            if not done.done():
                done.set_result(None)
        conn.send(reply)

    loop.add_reader(conn.fileno(), on_command)
    conn.send(("ready", port))
    try:
        await asyncio.wait_for(done, spec.lifetime)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(conn.fileno())
        for handle in handles:
            handle.cancel()
        for srv in servers:
            srv.close()


def _main(spec: FarmSpec, conn: Connection) -> None:
    asyncio.run(_serve(spec, conn))
    conn.close()


class FeedFarm:
    """The feed server process and its control pipe; see the module docstring."""

    def __init__(self, spec: FarmSpec) -> None:
        if not 1 <= spec.hosts <= MAX_HOSTS:
            raise ValueError(f"hosts must be 1..{MAX_HOSTS}")
        self.spec = spec
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_main, args=(spec, child), daemon=True, name="feed-farm")
        self._process.start()
        child.close()
        if not self._conn.poll(120):
            self.close()
            raise RuntimeError("the feed farm did not start within 120 s")
        _, self.port = self._conn.recv()

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def url(self, index: int) -> str:
        """The URL of feed `index`."""
        return f"http://{self.spec.host(index)}:{self.port}/comune-{index:05d}/feed/"

    def urls(self) -> list[str]:
        return [self.url(i) for i in range(self.spec.feeds)]

    def _call(self, command: str, args: Any = None) -> Any:
        self._conn.send((command, args))
        if not self._conn.poll(60):
            raise RuntimeError(f"the feed farm did not answer {command!r}")
        return self._conn.recv()

    def mark(self) -> None:
        """Start counting afresh (requests, concurrency, CPU) from now."""
        self._call("mark")

    def stats(self) -> FarmStats:
        """What the server saw since the last `mark()`."""
        result: FarmStats = self._call("stats")
        return result

    def change(self, feeds: Sequence[int], at: Sequence[float] | None = None) -> None:
        """Add one new item (dated when it appears) to each of `feeds`, at the `time.time()`
        moments `at` (at once when None)."""
        moments = list(at) if at is not None else [time.time()] * len(feeds)
        self._call("change", (list(feeds), moments))

    def changes(self) -> list[tuple[int, int, float]]:
        """Every change made so far: (feed, new item number, time it appeared)."""
        result: list[tuple[int, int, float]] = self._call("changes")
        return result

    def close(self) -> None:
        """Stop the server process (killed if it does not stop within 5 s)."""
        try:
            self._conn.send(("stop", None))
        except (OSError, ValueError):
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._conn.close()

    def __enter__(self) -> FeedFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` (Linux /proc)."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
