"""A real HTTP feed server on loopback, with fault switches, for unit and end-to-end tests.

    server = FeedServer()
    server.set_feed("/feed.xml", rss([{"title": "Avviso", "link": "https://..."}]))
    url = server.url("/feed.xml")          # give it to the Fetcher or write it to config.toml
    server.set_fault("/feed.xml", "503", retry_after=120)
    server.requests("/feed.xml")           # what the server saw: method, path, headers
    server.close()

Feeds are served with a strong ETag (hash of the body) and a Last-Modified (the server's
`clock` at `set_feed` time), honouring `If-None-Match` / `If-Modified-Since` with 304.
Everything is bounded: threads are daemons, slow answers wake up on `close()`, trickles and
bombs stop after a fixed number of bytes.

The pytest fixture `feed_server` gives a fresh server per test and closes it afterwards.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import pytest

RSS_TYPE = "application/rss+xml; charset=utf-8"
FAULTS = frozenset(
    {
        "404",
        "410",
        "429",
        "500",
        "503",
        "slow",
        "trickle",
        "garbage",
        "html",
        "empty",
        "redirect",
        "redirect_loop",
        "gzip_bomb",
        "huge",
    }
)
_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass(slots=True)
class _Feed:
    body: bytes
    content_type: str
    etag: str
    last_modified: float  # seconds since the epoch, whole seconds like an HTTP date


@dataclass(slots=True)
class _Fault:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


class FeedServer:
    """An HTTP/1.1 server on 127.0.0.1, on a free port, serving feeds from a background thread.

    `clock` (seconds since the epoch) stamps Last-Modified at `set_feed`; replace it to make
    dates deterministic.
    """

    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.time
        self._lock = threading.Lock()
        self._feeds: dict[str, _Feed] = {}
        self._faults: dict[str, _Fault] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        handler = type("_BoundHandler", (_Handler,), {"feeds": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"feed-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server: "http://127.0.0.1:PORT/path"."""
        if not path.startswith("/"):
            path = "/" + path
        return f"http://127.0.0.1:{self.port}{path}"

    def set_feed(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = RSS_TYPE,
        last_modified: datetime | float | None = None,
    ) -> None:
        """Serve `body` at `path` (query string included if given) with ETag and Last-Modified.

        Last-Modified is `last_modified` if given, else the server's `clock()` now.
        """
        data = body.encode("utf-8") if isinstance(body, str) else body
        if last_modified is None:
            stamp = self.clock()
        elif isinstance(last_modified, datetime):
            stamp = last_modified.timestamp()
        else:
            stamp = last_modified
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        with self._lock:
            self._feeds[_normalise(path)] = _Feed(data, content_type, etag, float(int(stamp)))

    def remove_feed(self, path: str) -> None:
        """Stop serving `path` (it answers 404 afterwards)."""
        with self._lock:
            self._feeds.pop(_normalise(path), None)

    def set_fault(self, path: str, fault: str | None, **options: Any) -> None:
        """Make `path` misbehave, or behave again with `fault=None`.

        Faults and their options:
        "404", "410", "429", "500", "503" (retry_after: int or str -> Retry-After header);
        "slow" (delay seconds, default 2, then the feed as usual; with until=threading.Event,
        until the event is set, at most delay seconds, default 60);
        "trickle" (interval seconds between bytes, default 0.2; count bytes, default 200);
        "garbage" (size, default 4096: random bytes, never XML);
        "html" (a web page served as text/html);
        "empty" (200 with an empty body);
        "redirect" (location: a path or URL, required; code: 301/302/303/307/308, default 301);
        "redirect_loop" (code, default 302: the path redirects to itself, forever);
        "gzip_bomb" (size, default 200 MiB: Content-Encoding gzip inflating to size zeros);
        "huge" (size, default 20 MiB; content_length: bool, default True).
        """
        key = _normalise(path)
        if fault is None:
            with self._lock:
                self._faults.pop(key, None)
            return
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        if fault == "redirect" and "location" not in options:
            raise ValueError("the redirect fault needs location=")
        if fault == "gzip_bomb":
            _gzip_bomb(int(options.get("size", 200 * _MiB)))  # build it now, outside timing
        with self._lock:
            self._faults[key] = _Fault(fault, dict(options))

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The requests received so far, oldest first; only those for `path` if given.

        `path` matches the full request target, or its path part when it has no query.
        """
        with self._lock:
            recorded = list(self._requests)
        if path is None:
            return recorded
        key = _normalise(path)
        return [r for r in recorded if r.path == key or ("?" not in key and _bare(r.path) == key)]

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    def close(self) -> None:
        """Stop serving, wake any slow or trickling answer, and release the port."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # Called from handler threads.

    def _record(self, method: str, target: str, headers: Mapping[str, str]) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, target, dict(headers)))

    def _lookup(self, target: str) -> tuple[_Feed | None, _Fault | None]:
        with self._lock:
            feed = self._feeds.get(target) or self._feeds.get(_bare(target))
            fault = self._faults.get(target) or self._faults.get(_bare(target))
        return feed, fault

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False when the server is closing and the answer should end."""
        return not self._stopping.wait(seconds)

    def _wait_for_gate(self, gate: threading.Event, seconds: float) -> bool:
        """Wait until `gate` is set, at most `seconds`; False when the server is closing."""
        deadline = time.monotonic() + seconds
        while not gate.wait(0.05):
            if self._stopping.is_set():
                return False
            if time.monotonic() >= deadline:
                break
        return True


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True  # a trickling answer must never keep the test process alive

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is what deadlines and caps do: not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    feeds: FeedServer  # set on the subclass made for each server
    protocol_version = "HTTP/1.1"  # keep-alive, as real sites; the fetcher reuses connections
    server_version = "FeedServer/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; requests() is the record

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        target = _normalise(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.feeds._record(self.command, target, headers)
        feed, fault = self.feeds._lookup(target)
        try:
            if fault is not None:
                if self._serve_fault(fault, feed, target):
                    return
            if feed is None:
                self._send_simple(404, b"not found\n", "text/plain; charset=utf-8")
                return
            self._serve_feed(feed, headers)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a deadline or a size cap doing its job).
            self.close_connection = True

    def _serve_feed(self, feed: _Feed, headers: Mapping[str, str]) -> None:
        last_modified = email.utils.formatdate(feed.last_modified, usegmt=True)
        if _not_modified(feed, headers):
            self.send_response(304)
            self.send_header("ETag", feed.etag)
            self.send_header("Last-Modified", last_modified)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_simple(
            200,
            feed.body,
            feed.content_type,
            extra={"ETag": feed.etag, "Last-Modified": last_modified},
        )

    def _serve_fault(self, fault: _Fault, feed: _Feed | None, target: str) -> bool:
        """Answer with the fault; False when the normal answer should follow (slow)."""
        options = fault.options
        name = fault.name
        if name.isdigit():
            extra: dict[str, str] = {}
            if "retry_after" in options:
                extra["Retry-After"] = str(options["retry_after"])
            status = int(name)
            phrase = HTTPStatus(status).phrase
            self._send_simple(status, f"{status} {phrase}\n".encode(), "text/plain", extra=extra)
        elif name == "slow":
            gate = options.get("until")
            if gate is not None:
                return not self.feeds._wait_for_gate(gate, float(options.get("delay", 60.0)))
            return not self.feeds._wait(float(options.get("delay", 2.0)))
        elif name == "trickle":
            self._trickle(float(options.get("interval", 0.2)), int(options.get("count", 200)))
        elif name == "garbage":
            size = int(options.get("size", 4096))
            # Seeded, so a failing test sees the same bytes again; 0xFF first is never XML.
            data = b"\xff" + random.Random(size).randbytes(max(0, size - 1))
            self._send_simple(200, data, RSS_TYPE)
        elif name == "html":
            self._send_simple(200, _HTML_PAGE, "text/html; charset=utf-8")
        elif name == "empty":
            self._send_simple(200, b"", RSS_TYPE)
        elif name == "redirect":
            code = int(options.get("code", 301))
            self._send_simple(code, b"", "text/plain", extra={"Location": options["location"]})
        elif name == "redirect_loop":
            code = int(options.get("code", 302))
            self._send_simple(code, b"", "text/plain", extra={"Location": target})
        elif name == "gzip_bomb":
            bomb = _gzip_bomb(int(options.get("size", 200 * _MiB)))
            self._send_simple(200, bomb, RSS_TYPE, extra={"Content-Encoding": "gzip"})
        elif name == "huge":
            self._huge(int(options.get("size", 20 * _MiB)), bool(options.get("content_length", True)))
        return True

    def _send_simple(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _trickle(self, interval: float, count: int) -> None:
        # Headers at once, then a byte at a time: only a total deadline can cut this short.
        self.send_response(200)
        self.send_header("Content-Type", RSS_TYPE)
        self.send_header("Content-Length", str(count))
        self.end_headers()
        self.wfile.flush()
        payload = (b"<rss version='2.0'>" + b" " * count)[:count]
        for index in range(count):
            if not self.feeds._wait(interval):
                break
            self.wfile.write(payload[index : index + 1])
            self.wfile.flush()
        self.close_connection = True

    def _huge(self, size: int, content_length: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", RSS_TYPE)
        if content_length:
            self.send_header("Content-Length", str(size))
        else:
            # Without a length the end of the body is the end of the connection (HTTP/1.0 style),
            # so only a cap counted while reading can stop it.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        block = b"<!-- padding -->" * 4096  # 64 KiB
        sent = 0
        while sent < size and not self.feeds._stopping.is_set():
            piece = block[: size - sent]
            self.wfile.write(piece)
            sent += len(piece)
        self.close_connection = True


def _not_modified(feed: _Feed, headers: Mapping[str, str]) -> bool:
    # RFC 9110 13.1.3: If-None-Match wins; If-Modified-Since only counts without it.
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or feed.etag in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return feed.last_modified <= since.timestamp()
    return False


_bomb_cache: dict[int, bytes] = {}
_bomb_lock = threading.Lock()


def _gzip_bomb(size: int) -> bytes:
    """A gzip body that inflates to `size` zero bytes, built in milliseconds.

    After a full flush deflate forgets its history, so compressing the same 1 MiB block again
    gives the same bytes: the compressed block is repeated instead of compressing `size` bytes.
    """
    with _bomb_lock:
        cached = _bomb_cache.get(size)
        if cached is not None:
            return cached
        block = b"\0" * _MiB
        whole, rest = divmod(size, _MiB)
        deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        compressed_block = deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH)
        crc = 0
        for _ in range(whole):
            crc = zlib.crc32(block, crc)
        tail = deflater.compress(block[:rest]) + deflater.flush(zlib.Z_FINISH)
        crc = zlib.crc32(block[:rest], crc)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        trailer = struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)
        bomb = header + compressed_block * whole + tail + trailer
        _bomb_cache[size] = bomb
        return bomb


def _normalise(path: str) -> str:
    if path.startswith(("http://", "https://")):
        parts = urlsplit(path)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/") else "/" + path


def _bare(target: str) -> str:
    return target.split("?", 1)[0]


_HTML_PAGE = b"""<!DOCTYPE html>
<html lang="it"><head><meta charset="utf-8"><title>Comune di Esempio - Home</title></head>
<body><h1>Comune di Esempio</h1><p>Benvenuti sul sito istituzionale.</p>
<ul><li><a href="/notizie">Notizie</a></li><li><a href="/eventi">Eventi</a></li></ul>
</body></html>
"""


def rss(
    items: list[dict[str, Any]],
    *,
    title: str = "Comune di Esempio",
    link: str = "https://www.comune.esempio.it",
) -> str:
    """Build an RSS 2.0 document from item dicts, for tests.

    Keys (all optional): title, link, guid (a URL is a permalink, anything else is not),
    description, content (content:encoded), pubDate (aware or UTC-naive datetime, or a string
    used verbatim), categories (list of str), enclosure (a URL, or a dict with url, type,
    length), author.
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        "<channel>",
        f"<title>{escape(title)}</title>",
        f"<link>{escape(link)}</link>",
        f"<description>{escape(title)}</description>",
        "<language>it-IT</language>",
    ]
    for item in items:
        lines.append("<item>")
        lines.extend(_rss_item(item))
        lines.append("</item>")
    lines += ["</channel>", "</rss>", ""]
    return "\n".join(lines)


def _rss_item(item: Mapping[str, Any]) -> Iterator[str]:
    for key in ("title", "link", "description", "author"):
        if item.get(key) is not None:
            yield f"<{key}>{escape(str(item[key]))}</{key}>"
    if item.get("content") is not None:
        content = str(item["content"]).replace("]]>", "]]]]><![CDATA[>")
        yield f"<content:encoded><![CDATA[{content}]]></content:encoded>"
    guid = item.get("guid")
    if guid is not None:
        permalink = "true" if str(guid).startswith(("http://", "https://")) else "false"
        yield f'<guid isPermaLink="{permalink}">{escape(str(guid))}</guid>'
    published = item.get("pubDate")
    if isinstance(published, datetime):
        moment = published if published.tzinfo else published.replace(tzinfo=UTC)
        yield f"<pubDate>{email.utils.format_datetime(moment)}</pubDate>"
    elif published is not None:
        yield f"<pubDate>{escape(str(published))}</pubDate>"
    for category in item.get("categories") or ():
        yield f"<category>{escape(str(category))}</category>"
    enclosure = item.get("enclosure")
    if isinstance(enclosure, str):
        enclosure = {"url": enclosure}
    if enclosure:
        attributes = {"url": "", "type": "image/jpeg", "length": "0", **enclosure}
        rendered = " ".join(f"{name}={quoteattr(str(value))}" for name, value in attributes.items())
        yield f"<enclosure {rendered}/>"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A fresh FeedServer for one test, closed afterwards."""
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()
