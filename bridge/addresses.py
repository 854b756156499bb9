"""Which addresses the bridge may connect to for what a feed says, and the one place that enforces it.

The feed URL is the operator's choice and may be anything, an intranet CMS included. What a
feed *says* is not: the article pages its items link to and the images it names are fetched
only from public addresses, so that a feed (or whoever can edit one page of the comune's site,
or its DNS) cannot make the bridge read an internal page and post it to the public channel.

`PublicOnlyTransport` is the httpx transport for those requests. Its network backend resolves
the host itself, refuses the connection when any answer is not a public address
(`is_public_address`), and connects to the checked address, never to the name: so nothing
leaves for a refused address, and a DNS answer that changes between the check and the
connection (rebinding) cannot change where the connection goes. TLS still verifies the
certificate for the URL's host name (httpcore passes it to `start_tls` separately). Because
the check sits where the connection is made, it holds for every redirect hop before its
request leaves, whatever the port. No proxy is ever used (a proxy would connect for us and
defeat the check).

`private_addresses_allowed()` reads the one switch that lifts the check, for the test suites
that serve pages from loopback: `CHANNEL_BRIDGE_ALLOW_PRIVATE_ADDRESSES=1`. It is test-only
and the daemon says so in a warning at start.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping

import httpcore
import httpx

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "AddressRefused",
    "PublicOnlyBackend",
    "PublicOnlyTransport",
    "Resolver",
    "is_public_address",
    "private_addresses_allowed",
    "system_resolve",
]

#: The environment variable that lets the daemon fetch pages and images from loopback and
#: private addresses. Test-only: it reopens exactly the hole this module closes.
ALLOW_PRIVATE_ENV = "CHANNEL_BRIDGE_ALLOW_PRIVATE_ADDRESSES"

#: Given a host name and a port, return the IP addresses it resolves to.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class AddressRefused(httpx.ConnectError):
    """A connection refused before it was made: the host is, or resolves to, a non-public address.

    A subclass of `httpx.ConnectError`, so that code handling failed connections handles it
    too; callers that want to say why catch it first. `str(error)` is one line.
    """

    hint = "pages and images a feed points to are fetched only from public addresses"


# IPv6 ranges that carry an IPv4 address a gateway may deliver to: judged by that address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# IPv6 ranges nothing public uses, although Python counts them as global: the deprecated
# IPv4-compatible addresses (::a.b.c.d) and the local-use NAT64 prefix (RFC 8215).
_NEVER_PUBLIC = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def is_public_address(address: str) -> bool:
    """Return True when `address` (an IPv4 or IPv6 literal) is globally routable unicast.

    False for loopback, private, link-local, CGNAT (100.64/10), unique-local (fc00::/7),
    multicast, reserved, documentation and unspecified (0.0.0.0, ::) addresses, and for
    anything that is not an IP address. IPv6 addresses that embed an IPv4 one (mapped
    `::ffff:10.0.0.1`, 6to4 `2002:0a00:0001::`, NAT64 `64:ff9b::10.0.0.1`) are public only
    when the IPv4 address is; IPv4-compatible `::a.b.c.d` never is. An IPv6 zone id
    (`fe80::1%eth0`) is ignored.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif any(ip in network for network in _NEVER_PUBLIC):
            return False
        elif ip.sixtofour is not None and not is_public_address(str(ip.sixtofour)):
            return False
    return ip.is_global and not ip.is_multicast


def private_addresses_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Return True when `CHANNEL_BRIDGE_ALLOW_PRIVATE_ADDRESSES` is exactly "1" (test-only)."""
    return (os.environ if environ is None else environ).get(ALLOW_PRIVATE_ENV) == "1"


async def system_resolve(host: str, port: int) -> list[str]:
    """Resolve `host` with the system resolver, off the event loop; IP literals stay as they are."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to public addresses (see the module).

    `resolve` replaces the DNS lookup (tests); `network` is the backend that opens the TCP
    connection to the checked address (default httpcore's AnyIO backend; tests route
    addresses to loopback servers through it). `allow_private=True` lifts the address check,
    for tests on loopback; the connection still goes to a resolved address.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolve: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolve or system_resolve
        self._network = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve `host`, refuse it unless every address is public, connect to a checked one.

        Raise `AddressRefused` before any packet leaves when an address is not public,
        `httpcore.ConnectError` when the name does not resolve or no address accepts the
        connection, `httpcore.ConnectTimeout` when resolving takes longer than `timeout`.
        """
        addresses = await self._checked_addresses(host, port, timeout)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._network.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address may answer, as with a name's usual fallback
        assert failure is not None  # `_checked_addresses` never returns an empty list
        raise failure

    async def _checked_addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            async with asyncio.timeout(timeout):
                answers = await self._resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout:g} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        addresses = list(dict.fromkeys(answers))  # in the resolver's order, once each
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        if not self._allow_private:
            for address in addresses:  # one bad answer is enough: which one is used is not ours to pick
                if not is_public_address(address):
                    if address == host:
                        raise AddressRefused(f"{address} is not a public address")
                    raise AddressRefused(f"{host} resolves to {address}, not a public address")
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refuse: what a feed says never reaches a local socket."""
        raise AddressRefused(f"unix socket {path} is not a public address")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """httpx's own HTTP transport over a connection pool whose network is `PublicOnlyBackend`.

    httpx 0.28 takes no network backend (its transport is a thin adapter over an httpcore
    connection pool, kept in `_pool`); httpcore's pool does, as public API. So the adapter is
    reused as it is (request conversion, exception mapping, streaming) and given a pool built
    here, rather than copied. The layout is checked at construction: if a future httpx moved
    its pool elsewhere this raises instead of silently connecting unchecked, and the tests
    of this module (loopback refused) would fail too. No proxy: none is passed, and the pool
    is a plain connection pool.

    `verify` is what httpx takes (an `ssl.SSLContext` trusting a test certificate, in tests).
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolve: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(verify=verify)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport no longer keeps an httpcore pool in _pool; "
                               "bridge.addresses must be updated before pages can be fetched safely")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify),
            # httpx's own default limits.
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=PublicOnlyBackend(allow_private=allow_private, resolve=resolve, network=network),
        )
