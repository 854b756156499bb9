"""The link guard and per-channel UTM parameters. Pure.

An alert points citizens to the comune's own site and nowhere else (SPEC 5): the posted link
must be http(s) on the registrable domain of the feed's own URL ("www.comune.vicenza.it" ->
"comune.vicenza.it"), or on a domain the operator listed in the feed's `link_domains`.
A look-alike ("comune.vicenza.it.evil.com", "comune-vicenza.it") is a different registrable
domain and is rejected.

Ports count too: a port is another service, not another page of the site. A link may use the
default port of its own scheme (80 for http, 443 for https, written or not), or else exactly
the port of the feed URL on exactly the feed URL's host (the feed's own server: a feed at
`http://cms.comune.it:8080/rss` may link to `http://cms.comune.it:8080/news/1`). Any other
port is off-site, on the feed's own host as anywhere: `http://203.0.113.5:8443/` for a feed at
`http://203.0.113.5/rss`, `https://www.comune.it:8080/` for a feed at `https://www.comune.it/`.

A link with a space or an invisible character inside (a space, a no-break space, U+2028 and
the other Unicode separators, a control or formatting character such as a zero-width space or
a direction override) is never posted, not even in part: "https://www.comune.it/a
https://evil.example/x" is one string to the guard but two addresses to the reader, and
WhatsApp makes the second one a link of its own. Which part the feed meant cannot be told, so
the item is held with the reason; the feed must write the space percent-encoded (%20).

Registrable domains come from the Public Suffix List as shipped inside the
`publicsuffixlist` package: it is read from the installed package, never downloaded, so the
guard makes no network call. A hand-written rule for ".it" would not do: the list has
hundreds of Italian second-level suffixes ("vi.it", "vicenza.it", "veneto.it"), and a
comune's site lives under them ("comune.altavillavicentina.vi.it").
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from publicsuffixlist import PublicSuffixList

from bridge.item import Item

__all__ = ["OffDomainLinkError", "allowed_domains", "check_link", "item_link_problem", "link_problem",
           "registrable_domain", "with_utm"]

_PSL = PublicSuffixList()


class OffDomainLinkError(ValueError):
    """The item's link may not be posted: not http(s), or not on the feed's own domains.

    The item is held and reported, never posted.
    """

    hint = "if the site really lives on that domain, add it to the feed's link_domains in config.toml"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _address(url: str) -> tuple[str, str, int] | None:
    """The lower-cased scheme and host and the port (the scheme's default when none is written)
    of an absolute http(s) URL without user info, else None."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    return scheme, host.rstrip(".").lower(), _DEFAULT_PORTS[scheme] if port is None else port


# Separators (Zs, Zl, Zp), controls (Cc) and formatting characters (Cf: zero-width spaces,
# direction overrides): none belongs in a written address, and each may split or disguise it.
_BREAKING_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def _breaking_character(link: str) -> str | None:
    """The first character inside `link` (leading and trailing whitespace aside) that a reader
    would see as a break or not at all, as "U+00A0", else None."""
    for char in link.strip():
        if char.isspace() or unicodedata.category(char) in _BREAKING_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def _host(url: str) -> str | None:
    """The lower-cased host of an absolute http(s) URL without user info, else None."""
    found = _address(url)
    return found[1] if found else None


@lru_cache(maxsize=1024)
def registrable_domain(host: str) -> str | None:
    """Return the registrable domain of `host` ("www.comune.vicenza.it" -> "comune.vicenza.it").

    An IP address is its own registrable domain. None for a bare public suffix ("vi.it",
    "it"), a single-label name or an empty host.
    """
    host = host.strip().rstrip(".").lower()
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if "." not in host:
        return None
    domain = _PSL.privatesuffix(host)
    return domain.lower() if domain else None


def allowed_domains(feed_url: str, link_domains: Iterable[str] = ()) -> frozenset[str]:
    """The domains an item link of this feed may be on: the feed URL's registrable domain
    (none for a local file) plus every `link_domains` entry, lower-cased."""
    domains = {d.strip().rstrip(".").lower() for d in link_domains if d.strip()}
    host = _host(feed_url)
    if host:
        own = registrable_domain(host)
        if own:
            domains.add(own)
    return frozenset(domains)


def _on_domain(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def link_problem(link: str | None, *, feed_url: str, link_domains: Iterable[str] = ()) -> str | None:
    """Return why `link` may not be posted (or fetched) for a feed at `feed_url`, or None when it may.

    The link must be an absolute http(s) URL with no user info, whose host is one of the
    allowed domains (`allowed_domains`) or a subdomain of one, on the default port of its
    scheme or else on the feed URL's own host and port (see the module docstring). Reasons
    are one line of plain English, for the log and `status`.
    """
    if not link:
        return "the item has no link"
    breaking = _breaking_character(link)
    if breaking is not None:
        return (f"the link has a space or an invisible character inside ({breaking}): what follows it "
                "could show as another address")
    found = _address(link)
    if found is None and "@" in urlsplit(link.strip()).netloc:
        return "the link carries user info before its host (a classic disguise: https://site@other/)"
    if found is None:
        scheme = link.split(":", 1)[0][:20] if ":" in link else "relative"
        return f"the link is not an absolute http(s) address ({scheme})"
    scheme, host, port = found
    allowed = allowed_domains(feed_url, link_domains)
    if not allowed:
        return "the feed has no web domain of its own and no link_domains are configured"
    if not any(_on_domain(host, domain) for domain in sorted(allowed)):
        return f"the link points to {host}, outside the feed's domains ({', '.join(sorted(allowed))})"
    feed = _address(feed_url)
    if port == _DEFAULT_PORTS[scheme] or (feed is not None and feed[1:] == (host, port)):
        return None
    return (f"the link points to port {port} of {host}: only the default port of {scheme} "
            f"({_DEFAULT_PORTS[scheme]}) is allowed, or the feed's own port on the feed's own host")


def item_link_problem(item: Item, *, feed_url: str, link_domains: Iterable[str] = ()) -> str | None:
    """Return why `item`'s link may not be posted (`link_problem`), or None when it may; for an
    item without a usable link, the reason its parse gave (`Item.no_link_reason`)."""
    if item.link is None and item.no_link_reason:
        return item.no_link_reason
    return link_problem(item.link, feed_url=feed_url, link_domains=link_domains)


def check_link(link: str | None, *, feed_url: str, link_domains: Iterable[str] = ()) -> str:
    """Return `link` unchanged when it may be posted; raise OffDomainLinkError otherwise."""
    problem = link_problem(link, feed_url=feed_url, link_domains=link_domains)
    if problem is not None or link is None:
        raise OffDomainLinkError(problem or "the item has no link")
    return link


def with_utm(link: str, utm: Mapping[str, str]) -> str:
    """Return `link` with the channel's UTM parameters (e.g. utm_source=whatsapp) appended.

    Parameters already in the link with the same name are replaced; the others, and the
    fragment, are kept verbatim. Names and values are percent-encoded. Parameters are
    added in sorted order so the result does not depend on the config's key order.
    """
    if not utm:
        return link
    parts = urlsplit(link)
    names = {name.lower() for name in utm}
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.split("=", 1)[0]).lower() not in names
    ]
    added = [f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in sorted(utm.items())]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept + added), parts.fragment))
