"""Fetch a feed's bytes: conditional GET, limits, redirects. Nothing else speaks HTTP to feeds.

Given a feed URL (http, https, a local file path or a `file:` URL) and the validators stored
after the previous poll, `Fetcher.fetch` returns a `FetchResult` or raises `FetchError`, whose
message is one line for people and whose `hint` says what to check.

Limits that hold whatever the server does:

- one total deadline per fetch (connect, every redirect hop, headers and the whole body), so a
  server trickling a byte at a time cannot hold a poll for longer than `timeout`;
- a cap on the *decoded* body, enforced while reading: gzip/deflate are inflated here, in
  bounded steps, so a compression bomb stops at `max_bytes` instead of filling memory;
- at most `max_redirects` redirects; a permanent one (301/308) is reported so the operator can
  update `config.toml`.

`Fetcher.fetch_page` fetches what a feed *points to* (an item's article page) with the same
limits, over a second client that connects only to public addresses
(`bridge.addresses.PublicOnlyTransport`, no proxy) and asks the caller's guard about every hop,
redirects included, before its request leaves. The feed URL itself is the operator's choice
and is fetched as it is, private addresses and environment proxies included.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import os
import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpcore
import httpx

from bridge import __version__
from bridge.addresses import AddressRefused, PublicOnlyTransport, Resolver

# Feeds first, generic XML next, anything else last: some CMSs serve feeds as text/html and a
# strict Accept would earn a 406 from them.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
# An article page: HTML first, anything else still answered (the caller checks the type).
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
# Only the encodings decoded (with a bound) by `_BoundedBody`; br/zstd would need extra packages.
ACCEPT_ENCODING = "gzip, deflate"

_PERMANENT_REDIRECTS = frozenset({301, 308})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A scheme is at least two characters, so that a Windows drive letter is never taken for one.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_READ_CHUNK = 64 * 1024

#: Given the URL of the next hop (the first one or a redirect's target), return why it may not
#: be fetched, or None when it may.
HopGuard = Callable[[str], str | None]


class FetchError(Exception):
    """A fetch that failed.

    `str(error)` is one line for humans ("HTTP 404 Not Found"); `hint` says what to check;
    `status` is the HTTP status when the server answered; `retry_after` is the server's own
    `Retry-After`, in seconds from now, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.hint = hint
        self.status = status
        self.retry_after = retry_after


class FetchTimeoutError(FetchError):
    """A fetch that ran out of time: the total deadline, or a read or connect that stalled."""


class FetchTooLargeError(FetchError):
    """A body over the size cap (declared, decoded, or a local file's)."""


class FetchRefusedError(FetchError):
    """A connection refused before it was made: not a public address (`bridge.addresses`)."""


@dataclass(frozen=True, slots=True)
class Validators:
    """What to send next time for a conditional GET (`If-None-Match`, `If-Modified-Since`)."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one successful fetch.

    `not_modified` is true on a 304, on an empty 200 and on an unchanged local file; `body` is
    then `b""`. `headers` has lower-case names and describes the decoded `body` (the wire's
    `content-encoding` and `content-length` are dropped). `validators` are the ones to store
    for the next poll. `permanent_redirect` is the URL the feed has moved to for good, when a
    301/308 was followed.
    """

    not_modified: bool
    body: bytes
    headers: Mapping[str, str]
    final_url: str
    validators: Validators
    permanent_redirect: str | None
    status: int


class Fetcher:
    """Fetches feeds, and the pages their items link to, over two shared HTTP clients.

    Use one per process; close it with `aclose`. `timeout` is the total time for one fetch, in
    seconds, including redirects and the body; `max_bytes` caps the decoded body;
    `transport` replaces the network of feed fetches (tests). Pages (`fetch_page`) go through
    `bridge.addresses.PublicOnlyTransport`: `allow_private_pages=True` lets them come from
    loopback and private addresses (tests only), `resolve` replaces its DNS lookup and
    `network` its TCP connections (tests).
    """

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float = 30.0,
        max_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        allow_private_pages: bool = False,
        resolve: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        agent = user_agent or f"channel-bridge/{__version__}"
        # Redirects are followed by hand (see `_fetch_http`) to tell permanent from temporary
        # ones and to check every hop's scheme. The shared cookie jar refuses everything: with
        # thousands of feeds it would grow without bound and leak one site's cookies into
        # the next poll; cookies live for one fetch only.
        self._client = httpx.AsyncClient(
            headers={"User-Agent": agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            cookies=_no_cookies(),
            transport=transport,
        )
        self._page_client = httpx.AsyncClient(
            headers={"User-Agent": agent, "Accept": PAGE_ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            cookies=_no_cookies(),
            transport=PublicOnlyTransport(allow_private=allow_private_pages, resolve=resolve, network=network),
            trust_env=False,  # no proxy from the environment: it would connect for us, unchecked
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the shared clients and their connections. The Fetcher is unusable afterwards."""
        await self._client.aclose()
        await self._page_client.aclose()

    async def fetch(self, url: str, validators: Validators | None = None) -> FetchResult:
        """Given a feed URL and the validators of the previous poll, return its current body.

        `url` is http(s), a `file:` URL, or a filesystem path (anything without a scheme).
        Return a result with `not_modified=True` when the feed has not changed (304, an empty
        200, a local file with the same modification time). Raise `FetchError` for anything
        else: other schemes, HTTP errors (with `status` and, for 429/503, `retry_after`),
        connection failures, the total deadline, a body over `max_bytes`, too many redirects,
        a missing or unreadable local file.
        """
        validators = validators or Validators()
        local_path = _local_path(url)
        deadline = asyncio.timeout(self._timeout)
        try:
            async with deadline:
                if local_path is not None:
                    # A file on a slow or hung network mount must not block the event loop.
                    return await asyncio.to_thread(
                        _read_local, local_path, validators, self._max_bytes
                    )
                return await self._fetch_http(self._client, url, validators)
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise self._timed_out() from exc

    async def fetch_page(self, url: str, *, guard: HopGuard, accept: str = PAGE_ACCEPT) -> FetchResult:
        """Given the URL of a page a feed points to, return its body; raise `FetchError` if not.

        Only http(s). `guard` is asked about `url` and about every redirect target before its
        request leaves; a reason from it stops the fetch. The connection goes only to a
        public address (`bridge.addresses`), checked on the address connected to, never
        through a proxy. Same limits and errors as `fetch`, no conditional request. `accept`
        is the Accept header (`ACCEPT` for a feed whose address a person gave).
        """
        if urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
            raise FetchError(f"not an http(s) address: {url[:100]}", hint="only http(s) pages are fetched")
        deadline = asyncio.timeout(self._timeout)
        try:
            async with deadline:
                return await self._fetch_http(self._page_client, url, Validators(), guard, accept=accept)
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise self._timed_out() from exc

    def _timed_out(self) -> FetchError:
        return FetchTimeoutError(
            f"timed out after {self._timeout:g} s (total time limit for one fetch)",
            hint="the site is slow or unreachable; the feed will be retried with backoff",
        )

    async def _fetch_http(
        self, client: httpx.AsyncClient, url: str, validators: Validators, guard: HopGuard | None = None,
        *, accept: str | None = None,
    ) -> FetchResult:
        headers: dict[str, str] = {"Accept": accept} if accept is not None else {}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        cookies = httpx.Cookies()
        permanent_redirect: str | None = None
        still_permanent = True  # every hop so far was permanent: the feed itself has moved
        current = url
        for hop in range(self._max_redirects + 1):
            problem = guard(current) if guard is not None else None
            if problem is not None:
                where = f"redirect to {current}" if hop else current
                raise FetchError(f"{where} refused: {problem}", hint="only pages the feed may link to are fetched")
            request = self._build_request(client, current, headers)
            # The jar's work (about 0.1 ms a request) only when there is a cookie to give or take:
            # nearly every feed sets none.
            if cookies:
                cookies.set_cookie_header(request)
            response = await self._send(client, request)
            try:
                if "set-cookie" in response.headers or "set-cookie2" in response.headers:
                    cookies.extract_cookies(response)
                if response.status_code in _REDIRECTS:
                    target = _redirect_target(response)
                    if still_permanent and response.status_code in _PERMANENT_REDIRECTS:
                        permanent_redirect = target
                    else:
                        still_permanent = False
                    current = target
                    continue
                return await self._result(response, validators, permanent_redirect)
            finally:
                await response.aclose()
        raise FetchError(
            f"too many redirects (more than {self._max_redirects}), last to {current}",
            hint="the site redirects in a loop or through too many hops; "
            "open the feed URL in a browser and put the final address in config.toml",
        )

    @staticmethod
    def _build_request(client: httpx.AsyncClient, url: str, headers: Mapping[str, str]) -> httpx.Request:
        try:
            return client.build_request("GET", url, headers=headers)
        except httpx.InvalidURL as exc:
            raise FetchError(
                f"invalid feed URL {url!r}: {exc}", hint="check the feed URL in config.toml"
            ) from exc

    @staticmethod
    async def _send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            return await client.send(request, stream=True)
        except AddressRefused as exc:
            raise FetchRefusedError(str(exc), hint=AddressRefused.hint) from exc
        except httpx.TimeoutException as exc:
            raise FetchTimeoutError(
                f"timed out talking to {host} ({type(exc).__name__})",
                hint="the site is slow or unreachable; the feed will be retried with backoff",
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(
                f"unsupported URL {request.url}: {_one_line(exc)}",
                hint="feed URLs must be http://, https:// or a local file path",
            ) from exc
        except httpx.TransportError as exc:
            raise FetchError(
                f"cannot fetch from {host}: {_one_line(exc)}", hint=_connection_hint(exc)
            ) from exc

    async def _result(
        self, response: httpx.Response, old: Validators, permanent_redirect: str | None
    ) -> FetchResult:
        status = response.status_code
        final_url = str(response.url)
        headers = {
            name.lower(): value
            for name, value in response.headers.items()
            if name.lower() not in ("content-encoding", "content-length")
        }
        if status == 304:
            return FetchResult(
                not_modified=True,
                body=b"",
                headers=headers,
                final_url=final_url,
                validators=_merge_validators(response.headers, old),
                permanent_redirect=permanent_redirect,
                status=status,
            )
        if not 200 <= status < 300:
            raise _status_error(response)
        body = await self._read_body(response)
        # An empty (or blank) 200 is what some CMSs answer while regenerating their cache:
        # treat it as "no news", not as a feed with zero items that would look like an error.
        if not body.strip():
            return FetchResult(
                not_modified=True,
                body=b"",
                headers=headers,
                final_url=final_url,
                validators=_merge_validators(response.headers, old),
                permanent_redirect=permanent_redirect,
                status=status,
            )
        return FetchResult(
            not_modified=False,
            body=body,
            headers=headers,
            final_url=final_url,
            validators=Validators(
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            ),
            permanent_redirect=permanent_redirect,
            status=status,
        )

    async def _read_body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _too_large(self._max_bytes, f" (Content-Length: {declared})")
        body = _BoundedBody(response.headers.get("content-encoding", ""), self._max_bytes)
        try:
            # Raw bytes, decoded here: httpx's own decoder inflates each network chunk in full
            # (a 64 KiB chunk of a bomb is ~64 MiB), ours stops at the cap.
            async for chunk in response.aiter_raw(_READ_CHUNK):
                body.feed(chunk)
        except httpx.TimeoutException as exc:
            raise FetchTimeoutError(
                f"timed out reading the feed from {response.url.host}",
                hint="the site is slow or unreachable; the feed will be retried with backoff",
            ) from exc
        except httpx.TransportError as exc:
            raise FetchError(
                f"connection to {response.url.host} broke while reading: {_one_line(exc)}",
                hint="the site dropped the connection; the feed will be retried with backoff",
            ) from exc
        return body.finish()


class _BoundedBody:
    """Accumulates a response body, inflating gzip/deflate, never past `limit` decoded bytes."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        encoding = content_encoding.strip().lower()
        self._deflate_fallback = False
        self._inflater: zlib._Decompress | None
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            # "deflate" should be zlib-wrapped, but some servers send raw deflate: try the
            # wrapper on the first chunk and fall back, as browsers and httpx do.
            self._inflater = zlib.decompressobj()
            self._deflate_fallback = True
        else:
            raise FetchError(
                f"unsupported Content-Encoding {content_encoding!r}",
                hint="the server ignored our Accept-Encoding: gzip, deflate; report it to the site",
            )

    def feed(self, data: bytes) -> None:
        """Add raw bytes from the wire. Raise `FetchError` once the decoded total passes the cap."""
        if self._inflater is None:
            self._append(data)
            return
        if not data:
            return  # nothing to judge the deflate flavour by yet
        try:
            self._inflate(data)
        except zlib.error as exc:
            if not self._deflate_fallback:
                raise FetchError(
                    f"corrupt compressed body: {exc}",
                    hint="the server sent a broken gzip/deflate stream; it will be retried",
                ) from exc
            self._deflate_fallback = False
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            self.feed(data)
            return
        self._deflate_fallback = False

    def _inflate(self, data: bytes) -> None:
        assert self._inflater is not None
        while data and not self._inflater.eof:
            # Ask for one byte more than still fits: getting it proves the body is too large
            # without ever holding more than limit + 1 bytes.
            out = self._inflater.decompress(data, self._limit - self._size + 1)
            self._append(out)
            data = self._inflater.unconsumed_tail
        # Bytes after the end of the compressed stream (a second gzip member, padding) are
        # ignored, as browsers do.

    def _append(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise _too_large(self._limit, "")
        if data:
            self._parts.append(data)

    def finish(self) -> bytes:
        """Return the decoded body. A truncated compressed stream yields what was decoded."""
        if self._inflater is not None and not self._inflater.eof:
            try:
                self._append(self._inflater.flush())
            except zlib.error:
                pass  # a truncated stream: keep what was inflated, the parser copes with it
        return b"".join(self._parts)


def _no_cookies() -> http.cookiejar.CookieJar:
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _too_large(limit: int, detail: str) -> FetchError:
    return FetchTooLargeError(
        f"feed larger than the limit of {_size_text(limit)}{detail}",
        hint="check that the URL points to a feed; if it really is that large, "
        "raise bridge.max_feed_bytes in config.toml",
    )


def _size_text(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def _redirect_target(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise FetchError(
            f"HTTP {response.status_code} redirect without a Location header",
            hint="the site answers with a broken redirect; report it to the site",
            status=response.status_code,
        )
    try:
        target = response.url.join(location)
    except httpx.InvalidURL as exc:
        raise FetchError(
            f"redirect to an invalid URL {location!r}",
            hint="the site answers with a broken redirect; report it to the site",
            status=response.status_code,
        ) from exc
    if target.scheme not in ("http", "https"):
        raise FetchError(
            f"redirect to unsupported URL {location!r}",
            hint="only http and https redirects are followed; check the feed URL in config.toml",
            status=response.status_code,
        )
    return str(target)


def _merge_validators(headers: httpx.Headers, old: Validators) -> Validators:
    # A 304 may repeat, update or omit the validators; omitted ones stay as they were.
    return Validators(
        etag=headers.get("etag") or old.etag,
        last_modified=headers.get("last-modified") or old.last_modified,
    )


_STATUS_HINTS = {
    401: "the site asks for credentials; check the feed URL in config.toml",
    403: "the site refuses us; check the feed URL in config.toml and whether the site "
    "blocks this User-Agent or address",
    404: "check the feed URL in config.toml",
    410: "the site says the feed is gone for good; find its new address and update config.toml",
    429: "the site limits how often it may be polled; polls will back off "
    "(a longer interval in config.toml helps)",
}


def _status_error(response: httpx.Response) -> FetchError:
    status = response.status_code
    reason = httpx.codes.get_reason_phrase(status) or response.reason_phrase
    message = f"HTTP {status} {reason}".rstrip()
    if status in _STATUS_HINTS:
        hint = _STATUS_HINTS[status]
    elif status >= 500:
        hint = "the site has a problem of its own; the feed will be retried with backoff"
    else:
        hint = "check the feed URL in config.toml"
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    return FetchError(message, hint=hint, status=status, retry_after=retry_after)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Given a `Retry-After` value (delay seconds or an HTTP date), return seconds from now.

    Return None when absent or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT by definition
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _connection_hint(exc: httpx.TransportError) -> str:
    text = str(exc)
    if "CERTIFICATE" in text or "SSL" in text or "TLS" in text:
        return "the site's TLS certificate is not trusted here; check the site and the clock"
    name_errors = ("Name or service not known", "nodename nor servname", "name resolution")
    if any(marker in text for marker in name_errors):
        return "check the host name in the feed URL and this machine's DNS"
    return "check the feed URL and this machine's network; the feed will be retried with backoff"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # anyio sums up a refused connection as "All connection attempts failed"; the errno
    # ("Connection refused", "No route to host") further down the chain says more.
    cause: BaseException | None = exc
    for _ in range(8):  # the chain is short; the bound guards against cycles
        if cause is None:
            break
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            reason = os.strerror(cause.errno)
            if reason not in text:
                text = f"{text} ({reason})" if text else reason
            break
        cause = cause.__cause__ or cause.__context__
    return text or type(exc).__name__


def _local_path(url: str) -> Path | None:
    """The filesystem path `url` names, None for http(s); FetchError for other schemes."""
    match = _SCHEME.match(url)
    if match is None:
        return Path(url)
    scheme = match.group(1).lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise FetchError(
                f"file URL on another host: {url}",
                hint="use a local path or an http(s) URL in config.toml",
            )
        return Path(url2pathname(unquote(parts.path)))
    raise FetchError(
        f"unsupported URL scheme {scheme!r} in {url}",
        hint="feed URLs must be http://, https:// or a local file path; check config.toml",
    )


def _read_local(path: Path, validators: Validators, max_bytes: int) -> FetchResult:
    """Read a feed from a local file, with its mtime standing in for Last-Modified."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            last_modified = email.utils.formatdate(info.st_mtime, usegmt=True)
            # HTTP dates have one-second resolution: a file rewritten within the same second
            # would look unchanged, so the nanosecond mtime and the size make a finer ETag.
            etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
            if validators.etag:
                unchanged = validators.etag == etag
            else:
                unchanged = validators.last_modified == last_modified
            fresh = Validators(etag=etag, last_modified=last_modified)
            headers = {"content-type": "application/xml", "last-modified": last_modified}
            if unchanged:
                return FetchResult(True, b"", headers, str(path), fresh, None, 200)
            if info.st_size > max_bytes:
                raise _too_large(max_bytes, f" ({info.st_size} bytes in {path})")
            body = handle.read(max_bytes + 1)  # the file may have grown since fstat
    except FileNotFoundError as exc:
        raise FetchError(
            f"feed file not found: {path}",
            hint="check the feed url in config.toml (a local path must exist and be readable)",
        ) from exc
    except IsADirectoryError as exc:
        raise FetchError(
            f"feed path is a directory: {path}", hint="check the feed url in config.toml"
        ) from exc
    except PermissionError as exc:
        raise FetchError(
            f"no permission to read feed file {path}",
            hint="make the file readable by the service user",
        ) from exc
    except OSError as exc:
        raise FetchError(
            f"cannot read feed file {path}: {exc.strerror or exc}",
            hint="check the feed url in config.toml and the file",
        ) from exc
    if len(body) > max_bytes:
        raise _too_large(max_bytes, f" ({path})")
    if not body.strip():
        return FetchResult(True, b"", headers, str(path), fresh, None, 200)
    return FetchResult(False, body, headers, str(path), fresh, None, 200)

