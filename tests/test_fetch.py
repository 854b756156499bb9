"""The feed fetcher against a real HTTP server on loopback: what the server sees, what we get."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers.feeds import FeedServer, rss
from servers.pages import PageServer

from bridge.fetch import Fetcher, FetchError, FetchResult, Validators, parse_retry_after

UA = "channel-bridge/test (+https://www.comune.esempio.it)"
FEED = rss([{"title": "Chiusura scuole", "link": "https://www.comune.esempio.it/n/1", "guid": "1"}])
MiB = 1024 * 1024


def fetch(
    url: str,
    validators: Validators | None = None,
    *,
    timeout: float = 30.0,
    max_bytes: int = 10 * MiB,
) -> FetchResult:
    """One fetch with a fresh Fetcher, closed afterwards."""

    async def go() -> FetchResult:
        async with Fetcher(user_agent=UA, timeout=timeout, max_bytes=max_bytes) as fetcher:
            return await fetcher.fetch(url, validators)

    return asyncio.run(go())


def fetch_error(
    url: str,
    validators: Validators | None = None,
    *,
    timeout: float = 30.0,
    max_bytes: int = 10 * MiB,
) -> FetchError:
    """The FetchError that one fetch raises (the test fails if it succeeds)."""
    with pytest.raises(FetchError) as caught:
        fetch(url, validators, timeout=timeout, max_bytes=max_bytes)
    return caught.value


# Conditional GET


def test_200_then_304_sends_the_stored_validators(feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed/?post_type=notizia", FEED)
    url = feed_server.url("/feed/?post_type=notizia")

    async def two_polls() -> tuple[FetchResult, FetchResult]:
        async with Fetcher(user_agent=UA) as fetcher:
            first = await fetcher.fetch(url)
            second = await fetcher.fetch(url, first.validators)
            return first, second

    first, second = asyncio.run(two_polls())

    assert not first.not_modified
    assert first.status == 200
    assert first.body == FEED.encode()
    assert first.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert first.final_url == url
    assert first.permanent_redirect is None
    assert first.validators.etag and first.validators.last_modified

    assert second.not_modified
    assert second.status == 304
    assert second.body == b""
    assert second.validators == first.validators

    seen = feed_server.requests("/feed/?post_type=notizia")
    assert len(seen) == 2
    assert "if-none-match" not in seen[0].headers
    assert "if-modified-since" not in seen[0].headers
    assert seen[1].headers["if-none-match"] == first.validators.etag
    assert seen[1].headers["if-modified-since"] == first.validators.last_modified


def test_if_modified_since_alone_gives_304(feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED, last_modified=datetime(2024, 5, 1, tzinfo=UTC))
    result = fetch(feed_server.url("/feed.xml"), Validators(last_modified="Thu, 02 May 2024 00:00:00 GMT"))
    assert result.not_modified
    assert result.validators.last_modified == "Wed, 01 May 2024 00:00:00 GMT"
    assert result.validators.etag  # the server's ETag, learned from the 304


def test_changed_feed_is_fetched_again_with_new_validators(feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)
    old = fetch(feed_server.url("/feed.xml")).validators
    newer = rss([{"title": "Nuovo avviso", "link": "https://www.comune.esempio.it/n/2"}])
    feed_server.set_feed("/feed.xml", newer)
    result = fetch(feed_server.url("/feed.xml"), old)
    assert not result.not_modified
    assert result.body == newer.encode()
    assert result.validators.etag != old.etag


def test_empty_200_counts_as_not_modified_and_keeps_validators(feed_server: FeedServer) -> None:
    feed_server.set_fault("/feed.xml", "empty")
    old = Validators(etag='"abc"', last_modified="Wed, 01 May 2024 00:00:00 GMT")
    result = fetch(feed_server.url("/feed.xml"), old)
    assert result.not_modified
    assert result.status == 200
    assert result.body == b""
    assert result.validators == old


def test_honest_user_agent_and_feed_accept_header(feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)
    fetch(feed_server.url("/feed.xml"))
    (request,) = feed_server.requests("/feed.xml")
    assert request.method == "GET"
    assert request.headers["user-agent"] == UA
    assert "application/rss+xml" in request.headers["accept"]
    assert "application/atom+xml" in request.headers["accept"]
    assert "gzip" in request.headers["accept-encoding"]


# HTTP errors


@pytest.mark.parametrize(
    ("fault", "message", "hint_part"),
    [
        ("404", "HTTP 404 Not Found", "check the feed URL in config.toml"),
        ("410", "HTTP 410 Gone", "config.toml"),
        ("500", "HTTP 500 Internal Server Error", "retried"),
    ],
)
def test_http_errors_are_one_line_with_a_hint(
    feed_server: FeedServer, fault: str, message: str, hint_part: str
) -> None:
    feed_server.set_fault("/feed.xml", fault)
    error = fetch_error(feed_server.url("/feed.xml"))
    assert str(error) == message
    assert hint_part in error.hint
    assert error.status == int(fault)
    assert error.retry_after is None


def test_unknown_path_is_404(feed_server: FeedServer) -> None:
    error = fetch_error(feed_server.url("/nothing-here.xml"))
    assert error.status == 404


def test_503_retry_after_seconds(feed_server: FeedServer) -> None:
    feed_server.set_fault("/feed.xml", "503", retry_after=120)
    error = fetch_error(feed_server.url("/feed.xml"))
    assert str(error) == "HTTP 503 Service Unavailable"
    assert error.status == 503
    assert error.retry_after == 120.0


def test_429_retry_after_http_date(feed_server: FeedServer) -> None:
    later = datetime.now(UTC) + timedelta(minutes=10)
    feed_server.set_fault("/feed.xml", "429", retry_after=format_datetime(later, usegmt=True))
    error = fetch_error(feed_server.url("/feed.xml"))
    assert error.status == 429
    assert error.retry_after is not None
    assert 590 <= error.retry_after <= 600


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("  0 ", 0.0),
        ("Wed, 01 May 2024 00:01:40 GMT", 100.0),
        ("Wed, 01 May 2024 00:00:00 GMT", 0.0),
        ("Tue, 30 Apr 2024 00:00:00 GMT", 0.0),  # past dates never give a negative delay
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    assert parse_retry_after(value, now=now) == expected


# Deadlines and size caps


def test_trickling_server_is_cut_off_at_the_total_deadline(feed_server: FeedServer) -> None:
    # 200 bytes at 0.2 s each would take 40 s; every single read is quick, so only a total
    # deadline stops it.
    feed_server.set_fault("/feed.xml", "trickle", interval=0.2, count=200)
    error = fetch_error(feed_server.url("/feed.xml"), timeout=1.0)
    # The total deadline, not a per-read one, ended it (no wall-clock bound: see bench/).
    assert "timed out after 1 s" in str(error)
    assert error.hint


def test_slow_server_times_out(feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)
    feed_server.set_fault("/feed.xml", "slow", delay=5)
    error = fetch_error(feed_server.url("/feed.xml"), timeout=0.5)
    assert "timed out" in str(error)


def test_slow_but_in_time_is_fine(feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)
    feed_server.set_fault("/feed.xml", "slow", delay=0.1)
    assert fetch(feed_server.url("/feed.xml"), timeout=2.0).body == FEED.encode()


def test_huge_body_rejected_from_content_length(feed_server: FeedServer) -> None:
    feed_server.set_fault("/feed.xml", "huge", size=50 * MiB)
    error = fetch_error(feed_server.url("/feed.xml"), max_bytes=MiB)
    # Refused from the header, before reading the body.
    assert str(error) == (
        "feed larger than the limit of 1 MiB (Content-Length: 52428800)"
    )
    assert "max_feed_bytes" in error.hint


def test_huge_body_without_length_is_capped_while_reading(feed_server: FeedServer) -> None:
    feed_server.set_fault("/feed.xml", "huge", size=50 * MiB, content_length=False)
    tracemalloc.start()
    try:
        error = fetch_error(feed_server.url("/feed.xml"), max_bytes=MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(error) == "feed larger than the limit of 1 MiB"
    assert peak < 8 * MiB  # stopped at the cap, not after reading 50 MiB


def test_body_exactly_at_the_cap_is_accepted(feed_server: FeedServer) -> None:
    body = b"<rss>" + b" " * (64 * 1024 - 11) + b"</rss>"
    feed_server.set_feed("/feed.xml", body)
    assert fetch(feed_server.url("/feed.xml"), max_bytes=64 * 1024).body == body


def test_gzip_bomb_stops_at_the_cap_without_inflating(feed_server: FeedServer) -> None:
    feed_server.set_fault("/feed.xml", "gzip_bomb", size=200 * MiB)
    tracemalloc.start()
    try:
        error = fetch_error(feed_server.url("/feed.xml"), max_bytes=MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(error) == "feed larger than the limit of 1 MiB"
    # The cap plus a read buffer and the server's compressed copy, nowhere near 200 MiB.
    assert peak < 8 * MiB


def test_gzip_body_is_decoded(feed_server: FeedServer) -> None:
    # A small bomb is just a gzip body: it must come out inflated, without the wire headers.
    feed_server.set_fault("/feed.xml", "gzip_bomb", size=100_000)
    result = fetch(feed_server.url("/feed.xml"), max_bytes=100_000)
    assert result.body == b"\0" * 100_000
    assert "content-encoding" not in result.headers


class _Body(httpx.AsyncByteStream):
    """A streamed body, as a real transport gives (`content=` would arrive already read)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data


def _mock_fetch(handler: httpx.MockTransport, url: str = "https://www.comune.esempio.it/feed") -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(user_agent=UA, transport=handler) as fetcher:
            return await fetcher.fetch(url)

    return asyncio.run(go())


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_bodies_in_both_flavours_are_decoded(wbits: int) -> None:
    deflater = zlib.compressobj(6, zlib.DEFLATED, wbits)
    wire = deflater.compress(FEED.encode()) + deflater.flush()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Encoding": "deflate"}, stream=_Body(wire))
    )
    assert _mock_fetch(transport).body == FEED.encode()


def test_unrequested_content_encoding_is_an_error() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Encoding": "br"}, stream=_Body(b"xx"))
    )
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
        _mock_fetch(transport)


def test_cookie_set_by_a_redirect_is_sent_back_within_the_fetch() -> None:
    # Some hosting front-ends set a cookie and redirect to the same URL to weed out bots.
    def site(request: httpx.Request) -> httpx.Response:
        if "visited=1" in request.headers.get("cookie", ""):
            return httpx.Response(200, stream=_Body(FEED.encode()))
        return httpx.Response(
            302, headers={"Set-Cookie": "visited=1; Path=/", "Location": str(request.url)}
        )

    assert _mock_fetch(httpx.MockTransport(site)).body == FEED.encode()


@pytest.mark.parametrize(
    ("fault", "content_type"),
    [("garbage", "application/rss+xml"), ("html", "text/html")],
)
def test_non_feed_answers_are_passed_on_for_the_parser_to_judge(
    feed_server: FeedServer, fault: str, content_type: str
) -> None:
    feed_server.set_fault("/feed.xml", fault)
    result = fetch(feed_server.url("/feed.xml"))
    assert not result.not_modified
    assert result.body and not result.body.startswith(b"<?xml")
    assert result.headers["content-type"].startswith(content_type)


# Redirects


def test_permanent_redirect_is_followed_and_reported(feed_server: FeedServer) -> None:
    feed_server.set_feed("/new/feed.xml", FEED)
    feed_server.set_fault("/old/feed.xml", "redirect", location="/new/feed.xml", code=301)
    result = fetch(feed_server.url("/old/feed.xml"))
    assert result.body == FEED.encode()
    assert result.final_url == feed_server.url("/new/feed.xml")
    assert result.permanent_redirect == feed_server.url("/new/feed.xml")


def test_temporary_redirect_is_followed_not_reported(feed_server: FeedServer) -> None:
    feed_server.set_feed("/new/feed.xml", FEED)
    feed_server.set_fault("/old/feed.xml", "redirect", location="/new/feed.xml", code=302)
    result = fetch(feed_server.url("/old/feed.xml"))
    assert result.final_url == feed_server.url("/new/feed.xml")
    assert result.permanent_redirect is None


def test_permanent_move_after_a_temporary_hop_is_not_reported(feed_server: FeedServer) -> None:
    # The configured URL still works (it only redirects for now): nothing to update.
    feed_server.set_feed("/c.xml", FEED)
    feed_server.set_fault("/a.xml", "redirect", location="/b.xml", code=307)
    feed_server.set_fault("/b.xml", "redirect", location=feed_server.url("/c.xml"), code=308)
    result = fetch(feed_server.url("/a.xml"))
    assert result.final_url == feed_server.url("/c.xml")
    assert result.permanent_redirect is None


def test_redirect_keeps_conditional_headers(feed_server: FeedServer) -> None:
    feed_server.set_feed("/new.xml", FEED)
    feed_server.set_fault("/old.xml", "redirect", location="/new.xml", code=308)
    first = fetch(feed_server.url("/old.xml"))
    second = fetch(feed_server.url("/old.xml"), first.validators)
    assert second.not_modified
    assert second.permanent_redirect == feed_server.url("/new.xml")


def test_redirect_loop_is_an_error(feed_server: FeedServer) -> None:
    feed_server.set_fault("/loop.xml", "redirect_loop")
    error = fetch_error(feed_server.url("/loop.xml"))
    assert str(error).startswith("too many redirects")
    assert len(feed_server.requests("/loop.xml")) == 6  # the first request + 5 redirects


def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer) -> None:
    feed_server.set_fault("/feed.xml", "redirect", location="ftp://example.org/feed.xml")
    error = fetch_error(feed_server.url("/feed.xml"))
    assert "redirect to unsupported URL" in str(error)


# Connection failures and odd URLs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_connection_refused_is_a_one_line_error() -> None:
    error = fetch_error(f"http://127.0.0.1:{_free_port()}/feed.xml", timeout=5.0)
    assert str(error).startswith("cannot fetch from 127.0.0.1: ")
    assert "Connection refused" in str(error)
    assert "\n" not in str(error)
    assert error.status is None
    assert error.hint


@pytest.mark.parametrize("url", ["ftp://example.org/feed.xml", "gopher://example.org/1"])
def test_other_schemes_are_refused(url: str) -> None:
    error = fetch_error(url)
    assert "unsupported URL scheme" in str(error)
    assert "config.toml" in error.hint


# Local files


def test_local_file_read_then_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(FEED, encoding="utf-8")
    first = fetch(str(path))
    assert not first.not_modified
    assert first.body == FEED.encode()
    assert first.status == 200
    assert first.final_url == str(path)
    assert first.validators.last_modified
    assert first.validators.last_modified.endswith(" GMT")

    second = fetch(str(path), first.validators)
    assert second.not_modified
    assert second.body == b""

    # Only Last-Modified stored (e.g. from an older state): the mtime alone decides.
    only_date = Validators(last_modified=first.validators.last_modified)
    assert fetch(str(path), only_date).not_modified


def test_local_file_rewritten_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(FEED, encoding="utf-8")
    first = fetch(str(path))
    newer = rss([{"title": "Altro avviso"}])
    path.write_text(newer, encoding="utf-8")
    later = time.time() + 5  # an mtime surely different, whatever the filesystem's resolution
    os.utime(path, (later, later))
    second = fetch(str(path), first.validators)
    assert not second.not_modified
    assert second.body == newer.encode()


def test_local_file_url(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(FEED, encoding="utf-8")
    assert fetch(path.as_uri()).body == FEED.encode()


def test_missing_local_file(tmp_path: Path) -> None:
    error = fetch_error(str(tmp_path / "missing.xml"))
    assert str(error) == f"feed file not found: {tmp_path / 'missing.xml'}"
    assert "config.toml" in error.hint


def test_local_file_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(b" " * 5000)
    error = fetch_error(str(path), max_bytes=4096)
    assert str(error).startswith("feed larger than the limit of 4 KiB")


# Pages a feed points to (`fetch_page`): same limits, public addresses only, every hop asked


def fetch_page(url: str, guard: Callable[[str], str | None] = lambda url: None, *, allow_private: bool = True,
               max_bytes: int = 10 * MiB) -> FetchResult:
    """One `fetch_page` with a fresh Fetcher (loopback allowed unless `allow_private=False`)."""

    async def go() -> FetchResult:
        async with Fetcher(user_agent=UA, timeout=5, max_bytes=max_bytes, allow_private_pages=allow_private) as fetcher:
            return await fetcher.fetch_page(url, guard=guard)

    return asyncio.run(go())


def fetch_page_error(url: str, guard: Callable[[str], str | None] = lambda url: None, **options: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch_page(url, guard, **options)
    return caught.value


def test_the_guard_is_asked_about_every_hop_before_its_request(feed_server: FeedServer) -> None:
    feed_server.set_fault("/a", "redirect", location=feed_server.url("/b"), code=302)
    feed_server.set_fault("/b", "redirect", location=feed_server.url("/c"), code=302)
    feed_server.set_feed("/c", "<p>x</p>", content_type="text/html")
    asked: list[str] = []

    def guard(url: str) -> str | None:
        asked.append(url)
        return "not this one" if url.endswith("/c") else None

    error = fetch_page_error(feed_server.url("/a"), guard)
    assert str(error) == f"redirect to {feed_server.url('/c')} refused: not this one"
    assert asked == [feed_server.url("/a"), feed_server.url("/b"), feed_server.url("/c")]
    assert [r.path for r in feed_server.requests()] == ["/a", "/b"]  # /c never asked for


def test_a_refused_first_hop_sends_nothing(feed_server: FeedServer) -> None:
    error = fetch_page_error(feed_server.url("/a"), lambda url: "off-site")
    assert str(error) == f"{feed_server.url('/a')} refused: off-site"
    assert feed_server.requests() == []


def test_pages_from_loopback_are_refused_feeds_are_not(feed_server: FeedServer) -> None:
    # The feed URL is the operator's choice (an intranet CMS, a loopback test server); a page
    # the feed points to is not.
    feed_server.set_feed("/feed.xml", FEED)
    assert fetch(feed_server.url("/feed.xml")).body == FEED.encode()
    error = fetch_page_error(feed_server.url("/feed.xml"), allow_private=False)
    assert str(error) == "127.0.0.1 is not a public address"
    assert "public addresses" in error.hint
    assert len(feed_server.requests("/feed.xml")) == 1


@pytest.mark.parametrize("url", ["/etc/passwd", "file:///etc/passwd", "ftp://example.org/x"])
def test_pages_are_http_only(url: str) -> None:
    assert "not an http(s) address" in str(fetch_page_error(url))


def test_pages_have_the_feeds_limits(feed_server: FeedServer) -> None:
    feed_server.set_fault("/big", "huge", size=2 * MiB, content_length=False)
    assert str(fetch_page_error(feed_server.url("/big"), max_bytes=MiB)) == "feed larger than the limit of 1 MiB"
    feed_server.set_fault("/bomb", "gzip_bomb", size=50 * MiB)
    assert str(fetch_page_error(feed_server.url("/bomb"), max_bytes=MiB)) == "feed larger than the limit of 1 MiB"
    feed_server.set_fault("/loop", "redirect_loop")
    assert str(fetch_page_error(feed_server.url("/loop"))).startswith("too many redirects")


def test_pages_never_go_through_a_proxy_from_the_environment(
    feed_server: FeedServer, page_server: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would make the connection for us, to wherever the page's name points.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, page_server.url(""))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    feed_server.set_feed("/pagina", "<p>x</p>", content_type="text/html")
    assert fetch_page(feed_server.url("/pagina")).body == b"<p>x</p>"
    assert page_server.paths == []
    assert len(feed_server.requests("/pagina")) == 1
