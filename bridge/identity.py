"""Who an item is: its identity keys, canonical links, title fingerprints, and the seen-policy.

Pure functions. Keys are short hashes so the store stays small whatever the feed sends:

- `g:` the feed's guid, scoped to the feed (two feeds may both number their items 1, 2, 3),
  and only when it is unique within the feed (some CMSs give every item the same guid);
- `l:` the canonical link (scheme and host lowercased, default port, fragment and tracking
  parameters removed), global: the same page in two feeds of one comune is one item;
- `t:` a fingerprint of the normalised title, global but matched only against *other* feeds
  and only for a few days: it catches the same news syndicated under two links, without
  swallowing a new "Allerta meteo" that reuses last week's title in the same feed;
- `c:` a content key, the normalised title *and* text, scoped to the feed and matched only
  against the same feed for a few days: the same news listed twice by one feed under two
  links (a CMS's `?p=123` and its permalink) is one item. It is not one of the item's
  identity keys (`Item.keys`, `delivery_id`): an edited text gives it a new content key and
  the same identity. It is recorded with them (`recorded_keys`) and looked up by `is_seen`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

from bridge.item import Item

TRACKING_PARAMS = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "_ga", "_gl"})
TITLE_MATCH_WINDOW = timedelta(days=3)
TITLE_MIN_WORDS = 3
# "Recently" for the content key: the twin must have been listed by the same feed within this
# long (its last-seen time is refreshed while the feed lists it, see `bridge.store`).
CONTENT_MATCH_WINDOW = timedelta(days=7)
# A text of fewer words cannot tell two notices of one title apart ("Avviso", "Leggi tutto").
CONTENT_MIN_WORDS = 3


def canonical_link(url: str | None, base: str | None = None) -> str | None:
    """Return the canonical absolute http(s) form of `url` (resolved against `base`), or None.

    None for an empty link or any other scheme (`javascript:`, `data:`, `mailto:`...): such a
    link must never be posted.
    """
    if not url or not url.strip():
        return None
    url = url.strip()
    if base:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", _without_tracking(parts.query), ""))


def _without_tracking(query: str) -> str:
    """`query` without its tracking parameters; the others are kept verbatim and in order.

    Not parse_qsl + urlencode: re-encoding changes the link that is posted ("?1234" becomes
    "?1234=", "/" becomes "%2F", a Latin-1 "%E0" becomes "%EF%BF%BD") and may break it.
    """
    kept = []
    for pair in query.split("&"):
        name = unquote_plus(pair.split("=", 1)[0]).lower()
        if pair and not name.startswith("utm_") and name not in TRACKING_PARAMS:
            kept.append(pair)
    return "&".join(kept)


def _words(text: str) -> list[str]:
    """The words of `text`, case, accents and punctuation ignored."""
    # Casefold after NFKD: "mathematical bold" capitals only become letters that have a case
    # through the compatibility decomposition.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    letters = "".join(c for c in folded if not unicodedata.combining(c))
    return re.findall(r"\w+", letters)


def title_fingerprint(title: str) -> str | None:
    """A fingerprint of the title's words (case, accents, punctuation ignored), or None when the
    title is too short to tell two news items apart ("Avviso")."""
    words = _words(title)
    if len(words) < TITLE_MIN_WORDS:
        return None
    return " ".join(words)


def content_key(item: Item) -> str | None:
    """The `c:` key of `item`: its feed, the words of its title and of its text (case, accents,
    punctuation ignored). None when the text has fewer than `CONTENT_MIN_WORDS` words: a title
    alone does not tell a new notice from last week's."""
    return _content_key(item.feed_id, item.title, item.text)


# A poll asks for an item's content key several times (per channel, then to record it), and
# the text's normalisation is the dear part; the strings are the items' own, hashed once.
@functools.lru_cache(maxsize=1024)
def _content_key(feed_id: str, title: str, text: str) -> str | None:
    words = _words(text)
    if len(words) < CONTENT_MIN_WORDS:
        return None
    return _hash("c", f"{feed_id}\n{' '.join(_words(title))}\n{' '.join(words)}")


def recorded_keys(item: Item) -> tuple[str, ...]:
    """Every key recorded as seen for `item`: its identity keys, then its content key."""
    key = content_key(item)
    return (*item.keys, key) if key else item.keys


def _hash(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:24]}"


def assign_keys(items: Sequence[Item]) -> list[Item]:
    """Return `items` with their identity keys, in a stable order: guid, link, title.

    A guid shared by two items of the same feed identifies neither and is ignored. A link
    shared by several items (a listing page given as every event's link) identifies them only
    together with their title, so a later item on that page is still new.
    """
    guid_counts = Counter(item.guid for item in items if item.guid)
    link_counts = Counter(item.link for item in items if item.link)
    keyed = []
    for item in items:
        keys = []
        if item.guid and guid_counts[item.guid] == 1:
            keys.append(_hash("g", f"{item.feed_id}\n{item.guid}"))
        if item.link and link_counts[item.link] == 1:
            keys.append(_hash("l", item.link))
        elif item.link:
            keys.append(_hash("l", f"{item.link}\n{item.title}"))
        fingerprint = title_fingerprint(item.title)
        if fingerprint:
            keys.append(_hash("t", fingerprint))
        keyed.append(replace(item, keys=tuple(keys)))
    return keyed


def delivery_id(channel: str, item: Item) -> str:
    """A stable id for posting `item` to `channel`: the same on every poll and every restart."""
    primary = item.keys[0] if item.keys else _hash("t", item.title)
    return hashlib.sha256(f"{channel}\n{primary}".encode()).hexdigest()[:32]


SeenLookup = Callable[[str], Mapping[str, int]]
"""For one channel: key -> {feed id: last seen, epoch seconds} (see `Store.seen_by`)."""


def is_seen(item: Item, seen_by: SeenLookup, now: datetime) -> bool:
    """True when `item` was already seen for the channel whose lookup is `seen_by`.

    guid and link keys match forever (until pruned by age); a title fingerprint matches only
    when another feed showed it within `TITLE_MATCH_WINDOW`; the content key (`content_key`)
    only when the item's own feed showed it within `CONTENT_MATCH_WINDOW`.
    """
    recent = int((now - TITLE_MATCH_WINDOW).timestamp())
    for key in item.keys:
        feeds = seen_by(key)
        if not feeds:
            continue
        if not key.startswith("t:"):
            return True
        if any(feed != item.feed_id and last >= recent for feed, last in feeds.items()):
            return True
    content = content_key(item)
    if content is not None:
        lately = int((now - CONTENT_MATCH_WINDOW).timestamp())
        return seen_by(content).get(item.feed_id, 0) >= lately
    return False
