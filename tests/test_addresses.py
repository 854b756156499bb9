"""bridge.addresses: which addresses pass, and the transport that connects only to checked ones.

The transport runs for real: httpx over `PublicOnlyTransport`, against page servers on
loopback, with the internet stood in for by `RoutedNetwork` (public address -> loopback
server) and DNS by `FakeDNS`, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio

import httpcore
import httpx
import pytest
from servers.pages import SECRET, FakeDNS, PageServer, RoutedNetwork

from bridge.addresses import (
    AddressRefused,
    PublicOnlyBackend,
    PublicOnlyTransport,
    Resolver,
    is_public_address,
    private_addresses_allowed,
)

PUBLIC = "93.184.216.34"
PUBLIC_PAGE = "<main><p>Il Comune informa che la piazza resta chiusa per lavori fino a venerdì.</p></main>"


def get(url: str, transport: PublicOnlyTransport) -> httpx.Response:
    """GET `url` over `transport` in a fresh loop; the body is read."""

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            return await client.get(url)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2a00:1450:4002:400::200e", True),
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("224.0.0.1", False),
        ("198.18.0.1", False),  # benchmarking
        ("192.0.2.1", False),  # documentation
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),  # unique-local
        ("fc00::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped private
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated), counted global by Python
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::5db8:d822", True),  # NAT64 of 93.184.216.34
        ("64:ff9b:1::a00:1", False),  # local-use NAT64
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:5db8:d822::1", True),  # 6to4 of 93.184.216.34
        ("localhost", False),  # not an address at all
        ("", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(("value", "allowed"), [("1", True), ("0", False), ("true", False), ("", False), (None, False)])
def test_the_test_switch_is_exactly_1(value: str | None, allowed: bool) -> None:
    environ = {} if value is None else {"CHANNEL_BRIDGE_ALLOW_PRIVATE_ADDRESSES": value}
    assert private_addresses_allowed(environ) is allowed


def test_loopback_is_refused_before_anything_leaves(page_server: PageServer) -> None:
    url = page_server.page("/internal")
    with pytest.raises(AddressRefused, match=r"^127\.0\.0\.1 is not a public address$"):
        get(url, PublicOnlyTransport())
    assert page_server.paths == []


def test_a_name_for_loopback_is_refused(page_server: PageServer) -> None:
    # The system resolver: "localhost" is 127.0.0.1 (and ::1) on every machine.
    page_server.page("/internal")
    with pytest.raises(AddressRefused, match=r"^localhost resolves to .*, not a public address$"):
        get(f"http://localhost:{page_server.port}/internal", PublicOnlyTransport())
    assert page_server.paths == []


def test_ipv6_loopback_is_refused(page_server_v6: PageServer) -> None:
    with pytest.raises(AddressRefused, match=r"^::1 is not a public address$"):
        get(page_server_v6.page("/internal"), PublicOnlyTransport())
    assert page_server_v6.paths == []


def test_the_test_switch_lets_loopback_through(page_server: PageServer) -> None:
    response = get(page_server.page("/internal"), PublicOnlyTransport(allow_private=True))
    assert SECRET in response.text


def test_one_private_answer_is_enough_to_refuse(page_server: PageServer) -> None:
    dns = FakeDNS({"www.comune.esempio.it": [[PUBLIC, "10.0.0.7"]]})
    network = RoutedNetwork({(PUBLIC, 80): ("127.0.0.1", page_server.port)})
    with pytest.raises(AddressRefused, match=r"www\.comune\.esempio\.it resolves to 10\.0\.0\.7"):
        get("http://www.comune.esempio.it/", PublicOnlyTransport(resolve=dns, network=network))
    assert network.connects == []


def test_the_connection_goes_to_the_checked_address(page_server: PageServer) -> None:
    # DNS rebinding: the first answer is public, every later one loopback. The guard asks once
    # and connects to what it checked, so the second answer is never used.
    public = PageServer()
    internal = page_server
    internal.page("/", f"<main><p>{SECRET}</p></main>")
    dns = FakeDNS({"www.comune.esempio.it": [[PUBLIC], ["127.0.0.1"]]})
    network = RoutedNetwork({(PUBLIC, 80): ("127.0.0.1", public.port), ("127.0.0.1", 80): ("127.0.0.1", internal.port)})
    with public:
        public.page("/", PUBLIC_PAGE)
        response = get("http://www.comune.esempio.it/", PublicOnlyTransport(resolve=dns, network=network))
        assert "piazza resta chiusa" in response.text
        assert dns.questions == ["www.comune.esempio.it"]
        assert network.connects == [(PUBLIC, 80)]
        # A new connection asks again, and now the answer is refused.
        with pytest.raises(AddressRefused, match=r"resolves to 127\.0\.0\.1"):
            get("http://www.comune.esempio.it/", PublicOnlyTransport(resolve=dns, network=network))
    assert network.connects == [(PUBLIC, 80)]
    assert internal.paths == []


def test_the_next_address_is_tried_when_one_does_not_answer(page_server: PageServer) -> None:
    page_server.page("/", PUBLIC_PAGE)
    dns = FakeDNS({"www.comune.esempio.it": [[PUBLIC, "93.184.216.35"]]})
    network = RoutedNetwork({("93.184.216.35", 80): ("127.0.0.1", page_server.port)})
    response = get("http://www.comune.esempio.it/", PublicOnlyTransport(resolve=dns, network=network))
    assert response.status_code == 200
    assert network.connects == [(PUBLIC, 80), ("93.184.216.35", 80)]


def test_an_unresolvable_name_is_a_connect_error() -> None:
    network = RoutedNetwork({})
    with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.invalid") as caught:
        get("http://nowhere.invalid/", PublicOnlyTransport(resolve=FakeDNS({}), network=network))
    assert not isinstance(caught.value, AddressRefused)
    assert network.connects == []


def test_a_slow_resolver_is_a_connect_timeout() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(60)
        return [PUBLIC]

    async def go(resolve: Resolver) -> None:
        await PublicOnlyBackend(resolve=resolve, network=RoutedNetwork({})).connect_tcp("x.example", 80, timeout=0.05)

    with pytest.raises(httpcore.ConnectTimeout, match=r"resolving x\.example took longer than 0\.05 s"):
        asyncio.run(go(slow))


def test_unix_sockets_are_refused() -> None:
    async def go() -> None:
        await PublicOnlyBackend(allow_private=True).connect_unix_socket("/run/docker.sock")

    with pytest.raises(AddressRefused, match="unix socket"):
        asyncio.run(go())
