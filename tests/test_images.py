"""The image loader against a real HTTPS host on loopback: what it takes, what it refuses."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from servers.images import PNG, image_loader
from servers.pages import FakeDNS, PageServer, RoutedNetwork
from structlog.testing import capture_logs

from bridge.images import Image, ImageLoader

if TYPE_CHECKING:
    from servers.images import FakeImageHost

PUBLIC = "93.184.216.34"


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


def test_a_public_address_is_fetched_from_that_address_with_tls_for_the_name(image_host: FakeImageHost) -> None:
    # "localhost" answers public here (a routed stand-in for the internet): the connection goes
    # to that checked address, and the certificate is still verified for the name.
    dns = FakeDNS({"localhost": [[PUBLIC]]})
    network = RoutedNetwork({(PUBLIC, image_host.port): ("127.0.0.1", image_host.port)})
    url = image_host.serve("/a.png").replace("127.0.0.1", "localhost")
    image, _ = load(url, image_loader(allow_private=False, resolve=dns, network=network))
    assert image is not None and image.data == PNG
    assert network.connects == [(PUBLIC, image_host.port)]


def test_the_certificate_must_match_the_name_not_the_address(image_host: FakeImageHost) -> None:
    # The test certificate is for localhost and 127.0.0.1, not for www.comune.esempio.it.
    dns = FakeDNS({"www.comune.esempio.it": [[PUBLIC]]})
    network = RoutedNetwork({(PUBLIC, image_host.port): ("127.0.0.1", image_host.port)})
    image_host.serve("/a.png")
    url = f"https://www.comune.esempio.it:{image_host.port}/a.png"
    image, logs = load(url, image_loader(allow_private=False, resolve=dns, network=network))
    assert image is None
    assert "download failed" in reason(logs) and "certificate" in reason(logs).lower()


def test_dns_rebinding_cannot_move_the_connection(image_host: FakeImageHost) -> None:
    # Public when asked first, loopback afterwards: the guard asks once and connects to the
    # answer it checked, so the loopback answer is never used.
    dns = FakeDNS({"localhost": [[PUBLIC], ["127.0.0.1"]]})
    network = RoutedNetwork({(PUBLIC, image_host.port): ("127.0.0.1", image_host.port)})
    url = image_host.serve("/a.png").replace("127.0.0.1", "localhost")
    image, _ = load(url, image_loader(allow_private=False, resolve=dns, network=network))
    assert image is not None
    assert dns.questions == ["localhost"]
    assert network.connects == [(PUBLIC, image_host.port)]


def test_a_redirect_to_loopback_is_refused_before_it_is_followed(image_host: FakeImageHost) -> None:
    dns = FakeDNS({"localhost": [[PUBLIC]]})
    network = RoutedNetwork({(PUBLIC, image_host.port): ("127.0.0.1", image_host.port)})
    image_host.serve("/internal.png")
    start = image_host.redirect("/a.png", image_host.url + "/internal.png").replace("127.0.0.1", "localhost")
    image, logs = load(start, image_loader(allow_private=False, resolve=dns, network=network))
    assert image is None
    assert reason(logs) == "127.0.0.1 is not a public address"
    assert image_host.hits("/a.png") == 1 and image_host.hits("/internal.png") == 0


def test_no_proxy_from_the_environment(image_host: FakeImageHost, page_server: PageServer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, page_server.url(""))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    image, _ = load(image_host.serve("/a.png"))
    assert image is not None
    assert page_server.paths == []


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
