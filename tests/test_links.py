"""bridge.links: the link guard (own registrable domain or link_domains) and UTM parameters."""

from __future__ import annotations

import socket

import pytest

from bridge.links import OffDomainLinkError, check_link, link_problem, registrable_domain, with_utm

FEED = "https://www.comune.esempio.it/feed/"
IP_FEED = "http://127.0.0.1:8000/feed.xml"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("www.comune.vicenza.it", "comune.vicenza.it"),  # "vicenza.it" is a public suffix
        ("comune.altavillavicentina.vi.it", "altavillavicentina.vi.it"),  # so is "vi.it"
        ("www.regione.veneto.it", "regione.veneto.it"),
        ("www.comune.esempio.it", "esempio.it"),
        ("comune.esempio.it.evil.com", "evil.com"),
        ("WWW.Comune.Esempio.IT.", "esempio.it"),
        ("127.0.0.1", "127.0.0.1"),
        ("vi.it", None),
        ("localhost", None),
        ("", None),
    ],
)
def test_registrable_domain(host: str, expected: str | None) -> None:
    assert registrable_domain(host) == expected


@pytest.mark.parametrize(
    ("link", "domains", "allowed"),
    [
        pytest.param("https://www.comune.esempio.it/novita/avviso", (), True, id="own-site"),
        pytest.param("http://comune.esempio.it/x", (), True, id="http-bare-domain"),
        pytest.param("https://servizi.comune.esempio.it/pratica", (), True, id="subdomain"),
        pytest.param("https://www.regione.veneto.it/web/guest/article", (), False, id="off-domain"),
        pytest.param(
            "https://www.regione.veneto.it/web/guest/article", ("regione.veneto.it",), True, id="link-domains"
        ),
        pytest.param("https://comune.esempio.it.evil.com/novita", (), False, id="look-alike-suffix"),
        pytest.param("https://comune-esempio.it/novita", (), False, id="look-alike-hyphen"),
        pytest.param("https://esempio.it.evil.com/", ("esempio.it",), False, id="look-alike-vs-link-domains"),
        pytest.param("https://notesempio.it/", ("esempio.it",), False, id="suffix-without-dot"),
        pytest.param("https://www.comune.esempio.it@evil.com/", (), False, id="user-info-disguise"),
        pytest.param("javascript:alert(1)", (), False, id="javascript"),
        pytest.param("data:text/html,<b>x</b>", (), False, id="data"),
        pytest.param("ftp://www.comune.esempio.it/file", (), False, id="ftp"),
        pytest.param("/novita/avviso", (), False, id="relative"),
        pytest.param("https://www.comune.esempio.it:99999/", (), False, id="bad-port"),
        pytest.param(None, (), False, id="none"),
    ],
)
def test_link_guard(link: str | None, domains: tuple[str, ...], allowed: bool) -> None:
    problem = link_problem(link, feed_url=FEED, link_domains=domains)
    assert (problem is None) is allowed
    if allowed:
        assert check_link(link, feed_url=FEED, link_domains=domains) == link
    else:
        assert problem  # a reason for the log and `status`
        with pytest.raises(OffDomainLinkError):
            check_link(link, feed_url=FEED, link_domains=domains)


def test_local_feed_needs_link_domains() -> None:
    link = "https://www.comune.esempio.it/a"
    assert link_problem(link, feed_url="/srv/feeds/notizie.xml") is not None
    assert link_problem(link, feed_url="/srv/feeds/notizie.xml", link_domains=["comune.esempio.it"]) is None


def test_reason_names_the_host() -> None:
    problem = link_problem("https://comune-esempio.it/x", feed_url=FEED)
    assert problem == "the link points to comune-esempio.it, outside the feed's domains (esempio.it)"


@pytest.mark.parametrize(
    ("link", "feed_url", "allowed"),
    [
        pytest.param("https://www.comune.esempio.it:443/x", FEED, True, id="https-default-port-written"),
        pytest.param("http://www.comune.esempio.it:80/x", FEED, True, id="http-default-port-written"),
        pytest.param("https://www.comune.esempio.it:8443/x", FEED, False, id="other-port-of-the-feeds-host"),
        pytest.param("https://servizi.comune.esempio.it:8080/x", FEED, False, id="other-port-on-a-subdomain"),
        pytest.param("http://servizi.comune.esempio.it:443/x", FEED, False, id="https-port-under-http"),
        pytest.param("https://www.comune.esempio.it:80/x", FEED, False, id="http-port-under-https"),
        pytest.param("http://www.comune.esempio.it:443/x", FEED, True, id="the-feeds-own-host-and-port"),
        # The probe: a feed on an IP address, an item link to the same address, another port.
        pytest.param("http://127.0.0.1:9000/internal", IP_FEED, False, id="feed-ip-other-port"),
        pytest.param("http://127.0.0.1:8000/news/1", IP_FEED, True, id="feed-ip-same-port"),
        pytest.param("https://127.0.0.1:8000/news/1", IP_FEED, True, id="feed-port-any-scheme"),
        pytest.param("http://127.0.0.1/news/1", IP_FEED, True, id="feed-ip-default-port"),
        pytest.param("http://cms.comune.esempio.it:8080/n/1", "http://cms.comune.esempio.it:8080/rss", True,
                     id="feed-host-own-port"),
        pytest.param("http://www.comune.esempio.it:8080/n/1", "http://cms.comune.esempio.it:8080/rss", False,
                     id="feed-port-on-another-host"),
        pytest.param("http://CMS.Comune.Esempio.IT.:8080/n/1", "http://cms.comune.esempio.it:8080/rss", True,
                     id="feed-host-case-and-dot"),
        pytest.param("http://[::1]:9000/x", "http://[::1]:8000/feed.xml", False, id="ipv6-other-port"),
        pytest.param("http://[::1]:8000/x", "http://[::1]:8000/feed.xml", True, id="ipv6-same-port"),
    ],
)
def test_ports_count(link: str, feed_url: str, allowed: bool) -> None:
    assert (link_problem(link, feed_url=feed_url) is None) is allowed


def test_a_local_feed_has_no_own_port() -> None:
    problem = link_problem("http://www.comune.esempio.it:8080/x", feed_url="/srv/feeds/notizie.xml",
                           link_domains=["comune.esempio.it"])
    assert problem == ("the link points to port 8080 of www.comune.esempio.it: only the default port of http (80) "
                       "is allowed, or the feed's own port on the feed's own host")


def test_no_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the link guard must not touch the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    registrable_domain.cache_clear()
    assert registrable_domain("www.comune.padova.it") == "comune.padova.it"


@pytest.mark.parametrize(
    ("link", "utm", "expected"),
    [
        ("https://a.it/x", {}, "https://a.it/x"),
        (
            "https://a.it/x",
            {"utm_source": "whatsapp", "utm_medium": "social"},
            "https://a.it/x?utm_medium=social&utm_source=whatsapp",
        ),
        (
            "https://a.it/x?id=3&UTM_SOURCE=old#sezione",
            {"utm_source": "telegram"},
            "https://a.it/x?id=3&utm_source=telegram#sezione",
        ),
        ("https://a.it/x?1234", {"utm_campaign": "allerta meteo"}, "https://a.it/x?1234&utm_campaign=allerta%20meteo"),
    ],
)
def test_with_utm(link: str, utm: dict[str, str], expected: str) -> None:
    assert with_utm(link, utm) == expected


@pytest.mark.parametrize(
    "separator",
    [
        pytest.param(" ", id="space"),
        pytest.param("\u00a0", id="no-break-space"),
        pytest.param("\u2028", id="line-separator"),
        pytest.param("\u2029", id="paragraph-separator"),
        pytest.param("\u3000", id="ideographic-space"),
        pytest.param("\u202f", id="narrow-no-break-space"),
        pytest.param("\u200b", id="zero-width-space"),
        pytest.param("\u202e", id="right-to-left-override"),
        pytest.param("\t", id="tab"),
        pytest.param("\x85", id="next-line"),
    ],
)
def test_a_link_with_a_break_inside_never_passes_whole(separator: str) -> None:
    # Each half is on the comune's site or not: the reader sees two addresses either way.
    for second in ("https://evil.example/x", "altro"):
        link = f"https://www.comune.esempio.it/a{separator}{second}"
        problem = link_problem(link, feed_url=FEED)
        assert problem is not None and f"U+{ord(separator):04X}" in problem


def test_whitespace_around_a_link_is_not_inside_it() -> None:
    assert link_problem("  https://www.comune.esempio.it/a\n", feed_url=FEED) is None
    assert link_problem("https://www.comune.esempio.it/a%20b", feed_url=FEED) is None
