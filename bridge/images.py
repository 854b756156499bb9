"""Download an item's image for the channels that post images, safely, or give up quietly.

A feed decides which URL an item's image has, so a feed must not be able to make the bridge
(or a gateway acting for it) fetch an internal address: the bridge downloads the image itself
and hands the channel the bytes. `ImageLoader.load` returns an `Image` or None, never raises
for a bad image: a channel that gets None posts the text alert instead, and the reason is
logged. What it refuses:

- any scheme but https, at the first hop and after every redirect (at most `max_redirects`);
- hosts that are, or resolve to, an address that is not globally routable (loopback, private,
  link-local, CGNAT, multicast, reserved), at every hop before its request leaves: the
  connection goes to the checked address itself (`bridge.addresses.PublicOnlyTransport`, no
  proxy), so a DNS answer that changes after the check (rebinding) changes nothing.
  `allow_private=True` lifts this for tests on loopback; `resolve` replaces the DNS lookup
  and `network` the TCP connections, for tests;
- a body over `max_bytes` (from `Content-Length`, and while streaming when it lies);
- a `Content-Type` that is not a raster image (`image/*`, SVG excluded: it is a document that
  can carry scripts, and no channel accepts it as a photo);
- anything taking longer than `timeout` seconds in total (every hop, headers and body).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from ssl import SSLContext
from urllib.parse import unquote, urljoin, urlsplit

import httpcore
import httpx
import structlog

from bridge import __version__
from bridge.addresses import AddressRefused, PublicOnlyTransport, Resolver

__all__ = ["DEFAULT_MAX_BYTES", "Image", "ImageLoader", "url_problem"]

log = structlog.get_logger("bridge.images")

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_READ_CHUNK = 64 * 1024
# What a failed or refused URL is remembered for: the same image is usually asked for by each
# channel of one alert within seconds, and a second download would fail the same way.
_CACHE_SECONDS = 600.0
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/tiff": "tiff",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Image:
    """A downloaded image: its bytes, its MIME type ("image/jpeg") and a file name for uploads."""

    data: bytes
    mimetype: str
    filename: str


class ImageRefused(Exception):
    """Why an image was not used; one line, logged by `ImageLoader.load`."""


class ImageLoader:
    """Downloads images over its own HTTP client, with the limits the module docstring lists.

    One per process, shared by the channels; close it with `aclose`. `verify` is passed to
    httpx (an `ssl.SSLContext` trusting a test certificate, in tests); `allow_private`,
    `resolve` and `network` go to `bridge.addresses.PublicOnlyTransport`. Results (images
    and refusals) of the last `cache_size` URLs are kept for ten minutes, so the channels of
    one alert download its image once. `user_agent` is the bridge's `user_agent`: the comune's
    server sees the same name for its images as for its feeds (`set_user_agent` on reload).
    """

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 20.0,
        max_redirects: int = 3,
        allow_private: bool = False,
        resolve: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
        verify: SSLContext | bool = True,
        cache_size: int = 8,
        clock: Callable[[], float] = time.monotonic,
        user_agent: str = f"channel-bridge/{__version__}",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._max_redirects = max_redirects
        self._cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Image | None]] = OrderedDict()
        self._client = httpx.AsyncClient(
            headers={
                "User-Agent": user_agent,
                "Accept": "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8",
                # Raw bytes only: the size cap then holds for what is kept in memory.
                "Accept-Encoding": "identity",
            },
            follow_redirects=False,  # followed by hand, each hop checked
            transport=PublicOnlyTransport(allow_private=allow_private, resolve=resolve, network=network,
                                          verify=verify),
            trust_env=False,  # no proxy from the environment: it would connect for us, unchecked
        )

    def set_user_agent(self, user_agent: str) -> None:
        """Send `user_agent` with the next downloads (a reload changed `[bridge] user_agent`)."""
        self._client.headers["User-Agent"] = user_agent

    async def aclose(self) -> None:
        """Close the client. The loader is unusable afterwards."""
        await self._client.aclose()

    async def load(self, url: str) -> Image | None:
        """Given an image URL from a feed, return the image, or None when it cannot be used.

        Never raise for a bad URL, a refused address, an HTTP error, a non-image, an oversized
        body or a timeout: log the reason (event "image not used") and return None.
        """
        cached = self._cached(url)
        if cached is not None:
            return cached[1]
        deadline = asyncio.timeout(self.timeout)
        image: Image | None = None
        try:
            async with deadline:
                image = await self._download(url)
        except (ImageRefused, AddressRefused) as exc:
            log.warning("image not used", url=url, reason=str(exc))
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("image not used", url=url, reason=f"took longer than {self.timeout:g} s")
        except httpx.HTTPError as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            log.warning("image not used", url=url, reason=f"download failed: {reason}")
        self._remember(url, image)
        return image

    def _cached(self, url: str) -> tuple[float, Image | None] | None:
        entry = self._cache.get(url)
        if entry is None:
            return None
        if self._clock() - entry[0] > _CACHE_SECONDS:
            del self._cache[url]
            return None
        self._cache.move_to_end(url)
        return entry

    def _remember(self, url: str, image: Image | None) -> None:
        if self._cache_size <= 0:
            return
        self._cache[url] = (self._clock(), image)
        self._cache.move_to_end(url)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _download(self, url: str) -> Image:
        current = url
        for _ in range(self._max_redirects + 1):
            _check_url(current)
            try:
                request = self._client.build_request("GET", current)
            except httpx.InvalidURL as exc:
                raise ImageRefused(f"invalid URL: {exc}") from exc
            response = await self._client.send(request, stream=True)  # AddressRefused before it leaves
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise ImageRefused(f"HTTP {response.status_code} without a Location")
                    current = urljoin(current, location)
                    continue
                return await self._read_image(response, current)
            finally:
                await response.aclose()
        raise ImageRefused(f"more than {self._max_redirects} redirects")

    async def _read_image(self, response: httpx.Response, url: str) -> Image:
        if response.status_code != 200:
            raise ImageRefused(f"HTTP {response.status_code}")
        mimetype = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if not mimetype.startswith("image/") or mimetype.startswith("image/svg"):
            raise ImageRefused(f"not a raster image (Content-Type {mimetype or 'missing'!r})")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise ImageRefused(f"compressed body ({encoding}) although identity was asked for")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise ImageRefused(f"{declared} bytes, over the {self.max_bytes}-byte limit")
        parts: list[bytes] = []
        size = 0
        # Identity only (checked above), so decoded bytes are the bytes on the wire.
        async for chunk in response.aiter_bytes(_READ_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise ImageRefused(f"over the {self.max_bytes}-byte limit")
            parts.append(chunk)
        if size == 0:
            raise ImageRefused("empty body")
        return Image(data=b"".join(parts), mimetype=mimetype, filename=_filename(url, mimetype))


def url_problem(url: str) -> str | None:
    """Why an image at `url` is never fetched (not https, no host), or None (its addresses are
    checked on connecting)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        return f"invalid URL: {exc}"
    if parts.scheme.lower() != "https":
        return f"only https images are fetched, not {parts.scheme or 'a relative'} URLs"
    if not parts.hostname:
        return "URL without a host"
    return None


def _check_url(url: str) -> None:
    """Refuse a URL that is not https or has no host (addresses are checked on connecting)."""
    problem = url_problem(url)
    if problem is not None:
        raise ImageRefused(problem)


def _filename(url: str, mimetype: str) -> str:
    """A tidy file name for uploads: the URL's last path segment, with a fitting extension."""
    extension = _EXTENSIONS.get(mimetype, mimetype.removeprefix("image/") or "img")
    last = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    stem = _SAFE_NAME.sub("-", last.rsplit(".", 1)[0]).strip("-.")[:60] or "image"
    return f"{stem}.{extension}"
