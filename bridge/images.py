"""Download an item's image for the channels that post images, safely, or give up quietly.

A feed decides which URL an item's image has, so a feed must not be able to make the bridge
(or a gateway acting for it) fetch an internal address: the bridge downloads the image itself
and hands the channel the bytes. `ImageLoader.load` returns an `Image` or None, never raises
for a bad image: a channel that gets None posts the text alert instead, and the reason is
logged. What it refuses:

- any scheme but https, at the first hop and after every redirect (at most `max_redirects`);
- hosts that resolve to an address that is not globally routable (loopback, private, link-local,
  CGNAT, multicast, reserved), checked before connecting and again on the connected socket, so
  a DNS answer that changes between the two (rebinding) is caught too. `allow_private=True`
  lifts this for tests on loopback; `resolve` replaces the DNS lookup for tests;
- a body over `max_bytes` (from `Content-Length`, and while streaming when it lies);
- a `Content-Type` that is not a raster image (`image/*`, SVG excluded: it is a document that
  can carry scripts, and no channel accepts it as a photo);
- anything taking longer than `timeout` seconds in total (every hop, headers and body).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ssl import SSLContext
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import structlog

from bridge import __version__

__all__ = ["DEFAULT_MAX_BYTES", "Image", "ImageLoader", "Resolver", "is_public_address"]

log = structlog.get_logger("bridge.images")

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

#: Given a host name and a port, return the IP addresses it resolves to.
Resolver = Callable[[str, int], Awaitable[list[str]]]

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


def is_public_address(address: str) -> bool:
    """Return True when `address` (an IPv4 or IPv6 literal) is globally routable unicast.

    IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are judged by the IPv4 address they carry.
    Return False for anything that is not an IP address.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _system_resolve(host: str, port: int) -> list[str]:
    """Resolve `host` with the system resolver, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class ImageLoader:
    """Downloads images over its own HTTP client, with the limits the module docstring lists.

    One per process, shared by the channels; close it with `aclose`. `verify` is passed to
    httpx (an `ssl.SSLContext` trusting a test certificate, in tests); `transport` replaces
    the network. Results (images and refusals) of the last `cache_size` URLs are kept for
    ten minutes, so the channels of one alert download its image once.
    """

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 20.0,
        max_redirects: int = 3,
        allow_private: bool = False,
        resolve: Resolver | None = None,
        verify: SSLContext | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        cache_size: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._max_redirects = max_redirects
        self._allow_private = allow_private
        self._resolve = resolve or _system_resolve
        self._cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Image | None]] = OrderedDict()
        self._client = httpx.AsyncClient(
            headers={
                "User-Agent": f"channel-bridge/{__version__}",
                "Accept": "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8",
                # Raw bytes only: the size cap then holds for what is kept in memory.
                "Accept-Encoding": "identity",
            },
            follow_redirects=False,  # followed by hand, each hop checked
            verify=verify,
            transport=transport,
            trust_env=False,  # a proxy would defeat the address check
        )

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
        except ImageRefused as exc:
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
            await self._check_url(current)
            try:
                request = self._client.build_request("GET", current)
            except httpx.InvalidURL as exc:
                raise ImageRefused(f"invalid URL: {exc}") from exc
            response = await self._client.send(request, stream=True)
            try:
                self._check_peer(response)
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

    async def _check_url(self, url: str) -> None:
        """Refuse a URL that is not https or whose host resolves to a non-public address."""
        try:
            parts = urlsplit(url)
            port = parts.port or 443
        except ValueError as exc:
            raise ImageRefused(f"invalid URL: {exc}") from exc
        if parts.scheme.lower() != "https":
            raise ImageRefused(f"only https images are fetched, not {parts.scheme or 'a relative'} URLs")
        host = parts.hostname
        if not host:
            raise ImageRefused("URL without a host")
        if self._allow_private:
            return
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise ImageRefused(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise ImageRefused(f"{host} resolves to no address")
        for address in addresses:
            if not is_public_address(address):
                raise ImageRefused(f"{host} resolves to {address}, not a public address")

    def _check_peer(self, response: httpx.Response) -> None:
        """Refuse a connection that ended up at a non-public address (DNS rebinding)."""
        if self._allow_private:
            return
        stream = response.extensions.get("network_stream")
        if stream is None:  # a test transport: there is no socket to look at
            return
        peer = stream.get_extra_info("server_addr")
        if isinstance(peer, tuple) and peer and not is_public_address(str(peer[0])):
            raise ImageRefused(f"connected to {peer[0]}, not a public address")

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


def _filename(url: str, mimetype: str) -> str:
    """A tidy file name for uploads: the URL's last path segment, with a fitting extension."""
    extension = _EXTENSIONS.get(mimetype, mimetype.removeprefix("image/") or "img")
    last = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    stem = _SAFE_NAME.sub("-", last.rsplit(".", 1)[0]).strip("-.")[:60] or "image"
    return f"{stem}.{extension}"
