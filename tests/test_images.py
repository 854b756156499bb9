"""The image loader against a real HTTPS host on loopback: what it takes, what it refuses."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from servers.images import PNG, image_loader
from structlog.testing import capture_logs

from bridge.addresses import is_public_address
from bridge.images import Image, ImageLoader

if TYPE_CHECKING:
    from servers.images import FakeImageHost


def load(url: str, loader: ImageLoader | None = None) -> tuple[Image | None, list[dict[str, Any]]]:
    """Load `url` with `loader` (default: the test loader) in a fresh loop; return the image
    and the log events."""

    async def go() -> Image | None:
        used = loader or image_loader()
        try:
            return await used.load(url)
        finally:
            await used.aclose()

    with capture_logs() as logs:
        image = asyncio.run(go())
    return image, logs


def reason(logs: list[dict[str, Any]]) -> str:
    [event] = [entry for entry in logs if entry["event"] == "image not used"]
    return str(event["reason"])


# -- what it takes -------------------------------------------------------------------------


def test_downloads_an_image_over_https(image_host: FakeImageHost) -> None:
    image, logs = load(image_host.serve("/foto/via%20roma.png"))
    assert image == Image(data=PNG, mimetype="image/png", filename="via-roma.png")
    assert logs == []


def test_content_type_parameters_and_case_are_ignored(image_host: FakeImageHost) -> None:
    image, _ = load(image_host.serve("/x", b"\xff\xd8\xff", "Image/JPEG; charset=binary"))
    assert image is not None
    assert (image.mimetype, image.filename) == ("image/jpeg", "x.jpg")


def test_follows_an_https_redirect(image_host: FakeImageHost) -> None:
    target = image_host.serve("/real.png")
    image, _ = load(image_host.redirect("/old.png", target, status=301))
    assert image is not None and image.data == PNG


def test_a_second_load_of_the_same_url_uses_the_cache(image_host: FakeImageHost) -> None:
    url = image_host.serve("/once.png")

    async def go() -> tuple[Image | None, Image | None]:
        loader = image_loader()
        try:
            return await loader.load(url), await loader.load(url)
        finally:
            await loader.aclose()

    first, second = asyncio.run(go())
    assert first is not None and first == second
    assert image_host.hits("/once.png") == 1


# -- what it refuses, without raising --------------------------------------------------------


def test_plain_http_is_refused_without_a_request(image_host: FakeImageHost) -> None:
    image, logs = load(f"http://127.0.0.1:{image_host.port}/a.png")
    assert image is None
    assert "only https" in reason(logs)
    assert image_host.requests == []


def test_a_redirect_to_http_is_refused(image_host: FakeImageHost) -> None:
    image, logs = load(image_host.redirect("/r.png", "http://example.org/a.png"))
    assert image is None
    assert "only https" in reason(logs)


def test_too_many_redirects(image_host: FakeImageHost) -> None:
    image_host.redirect("/loop.png", image_host.url + "/loop.png")
    image, logs = load(image_host.url + "/loop.png")
    assert image is None
    assert "redirects" in reason(logs)


def test_loopback_is_refused_unless_allowed(image_host: FakeImageHost) -> None:
    url = image_host.serve("/a.png")
    image, logs = load(url, image_loader(allow_private=False))
    assert image is None
    assert "127.0.0.1" in reason(logs) and "not a public address" in reason(logs)
    assert image_host.requests == []  # refused before connecting


def test_a_host_resolving_to_a_private_address_is_refused() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]  # one bad address is enough

    image, logs = load("https://intranet.example/a.png", ImageLoader(resolve=resolve))
    assert image is None
    assert "10.0.0.7" in reason(logs)


def test_a_public_address_passes_the_check() -> None:
    # The network is replaced: nothing leaves the machine, only the check is exercised.
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})

    loader = ImageLoader(resolve=resolve, transport=httpx.MockTransport(answer))
    image, _ = load("https://www.comune.example.it/img/a.png", loader)
    assert image is not None and image.data == PNG


def test_dns_rebinding_is_caught_on_the_connected_socket(image_host: FakeImageHost) -> None:
    # The check's own lookup says "public", the connection lands on loopback anyway.
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    image_host.serve("/a.png")
    loader = image_loader(allow_private=False, resolve=resolve)
    image, logs = load(f"https://localhost:{image_host.port}/a.png", loader)
    assert image is None
    assert "connected to 127.0.0.1" in reason(logs)


def test_an_unresolvable_host_is_refused() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    image, logs = load("https://nowhere.invalid/a.png", ImageLoader(resolve=resolve))
    assert image is None
    assert "cannot resolve nowhere.invalid" in reason(logs)


def test_a_declared_size_over_the_cap_is_refused_unread(image_host: FakeImageHost) -> None:
    url = image_host.serve("/big.png", b"\x89PNG" + b"\0" * 5000)
    image, logs = load(url, image_loader(max_bytes=1000))
    assert image is None
    assert "5004 bytes, over the 1000-byte limit" in reason(logs)


def test_an_undeclared_size_over_the_cap_stops_while_streaming(image_host: FakeImageHost) -> None:
    url = image_host.serve("/big.png", b"\0" * 300_000, send_length=False)
    image, logs = load(url, image_loader(max_bytes=100_000))
    assert image is None
    assert "over the 100000-byte limit" in reason(logs)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [("text/html; charset=utf-8", "not a raster image"), ("image/svg+xml", "not a raster image"),
     ("", "not a raster image")],
)
def test_what_is_not_a_raster_image_is_refused(image_host: FakeImageHost, content_type: str, expected: str) -> None:
    image, logs = load(image_host.serve("/page", b"<html></html>", content_type))
    assert image is None
    assert expected in reason(logs)


def test_http_errors_are_refused(image_host: FakeImageHost) -> None:
    image, logs = load(image_host.url + "/missing.png")
    assert image is None
    assert reason(logs) == "HTTP 404"


def test_an_empty_body_is_refused(image_host: FakeImageHost) -> None:
    image, logs = load(image_host.serve("/empty.png", b""))
    assert image is None
    assert reason(logs) == "empty body"


def test_the_total_deadline_holds(image_host: FakeImageHost) -> None:
    url = image_host.serve("/slow.png")
    image_host.delay = 1.0
    image, logs = load(url, image_loader(timeout=0.2))
    assert image is None
    assert "took longer than 0.2 s" in reason(logs)


def test_an_untrusted_certificate_is_refused(image_host: FakeImageHost) -> None:
    # The default trust store does not know the test certificate.
    image, logs = load(image_host.serve("/a.png"), ImageLoader(allow_private=True))
    assert image is None
    assert "download failed" in reason(logs)


@pytest.mark.parametrize("url", ["not a url", "https://", "https://[::1/a.png", "ftp://example.org/a.png"])
def test_malformed_urls_are_refused(url: str) -> None:
    image, logs = load(url)
    assert image is None
    assert reason(logs)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2a00:1450:4002:400::200e", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped private
        ("::ffff:93.184.216.34", True),
        ("localhost", False),  # not an address at all
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public
