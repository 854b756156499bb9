"""Feed bytes and response headers in, normalised `Item`s out. Pure: no network, no state.

feedparser does the format work (RSS 0.9x/1.0/2.0, Atom, encodings); it is given the
response's content-type and final URL so that charsets and relative links resolve as the
server meant them.

An item's link is its `<link>` (resolved against the base, as feedparser does), else its guid
when the guid is a permalink (RSS `isPermaLink` not "false") that is itself an absolute http(s)
address. A guid such as "12345" is an identifier, not an address: resolved against the feed's
URL it would make up a page ("https://…/feed/12345") that the feed never named. feedparser
resolves every permalink guid, and copies it into the link; it is told not to (see
`_keep_guids_as_written`), so the guid is seen as the feed wrote it.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
import feedparser.api
from bs4 import BeautifulSoup, Tag

from bridge import text
from bridge.identity import assign_keys, canonical_link
from bridge.item import Item


def _keep_guids_as_written() -> None:
    """Take `id` (RSS guid, Atom id) out of the elements feedparser resolves as relative URIs.

    feedparser keeps that set as a class attribute of its two parsers; only the guid is taken
    out: links, enclosures and the rest are resolved as before.
    """
    for parser in (feedparser.api.StrictFeedParser, feedparser.api.LooseFeedParser):
        parser.can_be_relative_uri = frozenset(parser.can_be_relative_uri) - {"id"}


_keep_guids_as_written()


class ParseError(Exception):
    """The body is not a usable feed. `hint` tells the operator what to check."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed's title and its items in document order (usually newest first)."""

    title: str
    link: str | None
    items: tuple[Item, ...]
    warning: str | None = None  # feedparser accepted the body but found it malformed


def parse_feed(feed_id: str, body: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse `body` fetched from `url` with response `headers` (lower-case names).

    Return the items with identity keys assigned. Raise `ParseError` when the body is not a
    feed at all (a web page, garbage, an empty document).
    """
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    # feedparser takes its base URI from Content-Location. The base is the URL the body was
    # fetched from (RFC 7231 dropped Content-Location as a base): a server's own header may be
    # relative or name an internal host behind a proxy.
    response_headers["content-location"] = url
    parsed: Any = feedparser.parse(repair_body(body), response_headers=response_headers, sanitize_html=False,
                                   resolve_relative_uris=True)
    version = parsed.get("version", "")
    entries = parsed.get("entries", [])
    if not version and not entries:
        raise ParseError(_why_not_a_feed(body, parsed), hint="check that the URL points to the RSS/Atom feed")
    feed_info = parsed.get("feed", {})
    items = [_item(feed_id, entry, _base(entry, url)) for entry in entries]
    warning = None
    if parsed.get("bozo"):
        warning = f"malformed feed, read anyway: {parsed.get('bozo_exception')}"
    return ParsedFeed(
        title=text.clean_title(feed_info.get("title", "")),
        link=canonical_link(feed_info.get("link"), url),
        items=tuple(assign_keys(items)),
        warning=warning,
    )


def repair_body(body: bytes) -> bytes:
    """Return `body` with the characters that no parser can take repaired, so that one item
    with them does not make the whole feed unreadable (feedparser's fallback parser raises
    on them and loses every item).

    Numeric references are rewritten by `text.repair_references` (a surrogate pair written
    as two references becomes one reference to its character, a lone half, zero or a code
    point past U+10FFFF becomes U+FFFD), read through Latin-1 so that the bytes of any
    ASCII-compatible encoding stay as they are. A body that is UTF-8 except for encoded
    surrogates (CESU-8, MySQL's 3-byte "utf8") gets its pairs joined and lone halves
    replaced (`text.repair_surrogates`). Any other body is returned unchanged.
    """
    if b"&#" in body:
        latin = body.decode("latin-1")
        repaired = text.repair_references(latin)
        if repaired is not latin:  # an untouched text comes back as the same object
            body = repaired.encode("latin-1")
    # Every encoded surrogate starts with the byte 0xED; a valid UTF-8 body is left alone.
    if b"\xed" in body:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            try:
                decoded = body.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                return body  # another encoding: feedparser finds out which
            body = text.repair_surrogates(decoded).encode("utf-8")
    return body


def _why_not_a_feed(body: bytes, parsed: Any) -> str:
    head = body[:2048].lstrip().lower()
    if not head:
        return "the response is empty"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "this looks like a web page, not a feed"
    problem = parsed.get("bozo_exception")
    return f"not an RSS or Atom feed ({problem})" if problem else "not an RSS or Atom feed"


def _base(entry: Any, url: str) -> str:
    """The base URI in force for `entry` (its xml:base, else the feed's URL).

    feedparser resolves links and HTML bodies itself but not enclosure or media URLs; it
    records the base of each text element, which is the entry's. Not the channel <link>: that
    names the web site, not the document, and some CMSs emit it mangled.
    """
    for key in ("title_detail", "summary_detail"):
        detail = entry.get(key) or {}
        base = detail.get("base")
        if isinstance(base, str) and base:
            return base
    return url


def _item(feed_id: str, entry: Any, base: str) -> Item:
    summary_html = entry.get("summary", "") or ""
    content_html = ""
    for content in entry.get("content", []) or []:
        value = content.get("value", "")
        if len(value) > len(content_html):
            content_html = value
    if content_html.strip() == summary_html.strip():
        content_html = ""
    guid = (entry.get("id") or "").strip() or None
    link, no_link_reason = _link(entry, guid, base)
    plain = text.html_to_text(summary_html)
    content = text.html_to_text(content_html) if content_html else ""
    return Item(
        feed_id=feed_id,
        # The item's own text tells which words of an all-caps title are names ("VICENZA").
        title=text.clean_title(entry.get("title", "") or "", context=f"{plain}\n{content}"),
        link=link,
        guid=guid,
        text=plain,
        content=content,
        html=content_html or summary_html,
        published=_published(entry),
        categories=tuple(
            t.get("term", "").strip() for t in entry.get("tags", []) or [] if (t.get("term") or "").strip()
        ),
        image_url=_image(entry, summary_html + content_html, base),
        no_link_reason=no_link_reason,
    )


def _link(entry: Any, guid: str | None, base: str) -> tuple[str | None, str | None]:
    """The item's link (see the module docstring), or None and why there is none."""
    written = entry.get("link")
    # feedparser copies a permalink guid into the link when no <link> came before it: that
    # link is the guid, never resolved against the base.
    from_guid = guid is not None and isinstance(written, str) and written.strip() == guid
    if written and not from_guid:
        link = canonical_link(written, base)
        if link is None:
            return None, "the link is not an absolute http(s) address"
        return link, None
    if guid is None:
        return None, "the item has no link"
    if not from_guid and not entry.get("guidislink"):
        return None, "the item has no link, and its guid is not a permalink (isPermaLink=\"false\")"
    link = canonical_link(guid)
    if link is None:
        shown = guid if len(guid) <= 60 else guid[:59] + "…"
        return None, f"the item has no link, and its guid ({shown}) is not an absolute http(s) address"
    return link, None


def _published(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            # feedparser normalises every date to a UTC struct_time.
            return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return None


def _image(entry: Any, html: str, base: str) -> str | None:
    for media in entry.get("media_content", []) or []:
        if media.get("medium") == "image" or (media.get("type") or "").startswith("image/"):
            found = canonical_link(media.get("url"), base)
            if found:
                return found
    for link in entry.get("links", []) or []:
        if link.get("rel") == "enclosure" and (link.get("type") or "").startswith("image/"):
            found = canonical_link(link.get("href"), base)
            if found:
                return found
    for thumb in entry.get("media_thumbnail", []) or []:
        found = canonical_link(thumb.get("url"), base)
        if found:
            return found
    if "<img" not in html:
        return None
    tag = BeautifulSoup(html, "html.parser").find("img", src=True)
    src = tag.get("src") if isinstance(tag, Tag) else None
    return canonical_link(src, base) if isinstance(src, str) else None
