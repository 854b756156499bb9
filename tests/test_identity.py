"""Identity: canonical links, title fingerprints, keys, delivery ids and the seen-policy.

Table-driven: each row is a case a comune feed really produces. Key and delivery-id values
are pinned: they are stored, so changing how they are computed would post every old item
again after an upgrade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bridge.identity import (
    TITLE_MATCH_WINDOW,
    SeenLookup,
    assign_keys,
    canonical_link,
    content_key,
    delivery_id,
    is_seen,
    recorded_keys,
    title_fingerprint,
)
from bridge.item import Item

BASE = "https://www.comune.esempio.it/novita/feed.xml"

# --- canonical_link ------------------------------------------------------------------------

CANONICAL = [
    # scheme and host lower-cased, path case kept
    ("HTTPS://WWW.Comune.Esempio.IT/Novita/Avviso", None, "https://www.comune.esempio.it/Novita/Avviso"),
    ("https://www.comune.esempio.it./novita", None, "https://www.comune.esempio.it/novita"),
    ("https://www.comune.esempio.it", None, "https://www.comune.esempio.it/"),
    ("  https://www.comune.esempio.it/novita/a \n", None, "https://www.comune.esempio.it/novita/a"),
    # default ports dropped, other ports kept
    ("https://www.comune.esempio.it:443/a", None, "https://www.comune.esempio.it/a"),
    ("http://www.comune.esempio.it:80/a", None, "http://www.comune.esempio.it/a"),
    ("http://www.comune.esempio.it:443/a", None, "http://www.comune.esempio.it:443/a"),
    ("https://www.comune.esempio.it:8443/a", None, "https://www.comune.esempio.it:8443/a"),
    ("http://[::1]:8080/a", None, "http://[::1]:8080/a"),
    # fragment dropped
    ("https://www.comune.esempio.it/a#commenti", None, "https://www.comune.esempio.it/a"),
    ("https://www.comune.esempio.it/a?p=2#mappa", None, "https://www.comune.esempio.it/a?p=2"),
    # tracking parameters removed, the others kept in their order
    (
        "https://www.comune.esempio.it/a?b=2&utm_source=fb&a=1&fbclid=IwAR0&c=3&gclid=x",
        None,
        "https://www.comune.esempio.it/a?b=2&a=1&c=3",
    ),
    ("https://www.comune.esempio.it/a?UTM_Campaign=nido&Itemid=101", None, "https://www.comune.esempio.it/a?Itemid=101"),
    ("https://www.comune.esempio.it/a?utm_source=x&utm_medium=y&fbclid=z", None, "https://www.comune.esempio.it/a"),
    ("https://www.comune.esempio.it/a?id=1&&utm_term=", None, "https://www.comune.esempio.it/a?id=1"),
    # the news' own query is kept verbatim: re-encoding it could break the posted link
    ("https://www.comune.esempio.it/index.php?1234", None, "https://www.comune.esempio.it/index.php?1234"),
    (
        "https://www.comune.esempio.it/eventi.html?categoria=/TipiEvento/001",
        None,
        "https://www.comune.esempio.it/eventi.html?categoria=/TipiEvento/001",
    ),
    ("https://www.comune.esempio.it/cerca?t=citt%E0&q=a%20b", None, "https://www.comune.esempio.it/cerca?t=citt%E0&q=a%20b"),
    ("https://www.comune.esempio.it/?post_type=notizia&p=1201", None, "https://www.comune.esempio.it/?post_type=notizia&p=1201"),
    # relative links resolved against the base
    ("/notizie/chiuso.html", BASE, "https://www.comune.esempio.it/notizie/chiuso.html"),
    ("dettaglio/12", BASE, "https://www.comune.esempio.it/novita/dettaglio/12"),
    ("../albo/", BASE, "https://www.comune.esempio.it/albo/"),
    ("//cdn.esempio.it/img.png", BASE, "https://cdn.esempio.it/img.png"),
    ("?p=7&utm_source=x", BASE, "https://www.comune.esempio.it/novita/feed.xml?p=7"),
    ("https://altro.esempio.it/x", BASE, "https://altro.esempio.it/x"),
    # nothing that must never be posted
    (None, None, None),
    ("", BASE, None),
    ("   ", BASE, None),
    ("javascript:apriModulo('iscrizione')", BASE, None),
    ("JavaScript:void(0)", None, None),
    ("data:text/html;base64,PGgxPkNpYW88L2gxPg==", BASE, None),
    ("mailto:tributi@comune.esempio.it", BASE, None),
    ("tel:+390444123456", BASE, None),
    ("ftp://ftp.comune.esempio.it/delibere.pdf", None, None),
    ("notizie/relativa.html", None, None),  # relative with no base
    ("http://", None, None),
    ("http://www.comune.esempio.it:porta/", None, None),
]


@pytest.mark.parametrize(("url", "base", "expected"), CANONICAL)
def test_canonical_link(url: str | None, base: str | None, expected: str | None) -> None:
    assert canonical_link(url, base) == expected


@pytest.mark.parametrize("expected", sorted({row[2] for row in CANONICAL if row[2]}))
def test_canonical_link_is_idempotent(expected: str) -> None:
    assert canonical_link(expected) == expected


# --- title_fingerprint ---------------------------------------------------------------------

SAME_TITLE = [
    "Allerta meteo: scuole chiuse sabato",
    "allerta meteo scuole chiuse sabato",
    "ALLERTA METEO — SCUOLE CHIUSE SABATO!",
    "Allèrta météo, scuole chiuse sabato",
    "  Allerta   meteo:\nscuole chiuse sabato… ",
    "𝗔𝗟𝗟𝗘𝗥𝗧𝗔 𝗠𝗘𝗧𝗘𝗢: scuole chiuse sabato",  # "mathematical bold" from social media
    "Allerta meteo: scuole chiuse sabato ⚠️",
]


@pytest.mark.parametrize("title", SAME_TITLE)
def test_title_fingerprint_ignores_case_accents_punctuation(title: str) -> None:
    assert title_fingerprint(title) == title_fingerprint(SAME_TITLE[0]) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Chiusura dell'ufficio anagrafe", "Chiusura dell’ufficio anagrafe"),
        ("Città più sicura di notte", "citta piu sicura di notte"),
        ("１１６１１７ numero unico guardia medica", "116117 numero unico guardia medica"),
    ],
)
def test_title_fingerprint_equal(a: str, b: str) -> None:
    assert title_fingerprint(a) == title_fingerprint(b) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Allerta meteo: scuole chiuse sabato", "Allerta meteo: scuole chiuse domenica"),
        ("Bando contributi associazioni 2025", "Bando contributi associazioni 2026"),
    ],
)
def test_title_fingerprint_different(a: str, b: str) -> None:
    assert title_fingerprint(a) != title_fingerprint(b)


@pytest.mark.parametrize("title", ["", "Avviso", "Avviso importante", "!!! ???", "⚠️ ⚠️ ⚠️", "116117"])
def test_title_fingerprint_none_for_short_titles(title: str) -> None:
    assert title_fingerprint(title) is None


# --- assign_keys ---------------------------------------------------------------------------


def _item(
    title: str = "Allerta meteo: scuole chiuse sabato",
    link: str | None = "https://www.comune.esempio.it/novita/allerta-meteo",
    guid: str | None = "p=1201",
    feed_id: str = "esempio",
) -> Item:
    return Item(feed_id=feed_id, title=title, link=link, guid=guid, text="")


def _kinds(item: Item) -> list[str]:
    return [key.split(":", 1)[0] for key in item.keys]


def _key(item: Item, kind: str) -> str:
    (found,) = [key for key in item.keys if key.startswith(kind + ":")]
    return found


def test_keys_are_pinned() -> None:
    (item,) = assign_keys([_item()])
    assert item.keys == ("g:638d363d31f00ac4f72d9988", "l:96401f1dffa5c55221699ce3", "t:4c7776d1f652f923e42baf20")


@pytest.mark.parametrize(
    ("item", "kinds"),
    [
        (_item(), ["g", "l", "t"]),
        (_item(guid=None), ["l", "t"]),
        (_item(link=None), ["g", "t"]),
        (_item(title="Avviso"), ["g", "l"]),
        (_item(guid=None, link=None), ["t"]),
        (_item(guid=None, link=None, title="Avviso"), []),
    ],
    ids=["all", "no-guid", "no-link", "short-title", "title-only", "none"],
)
def test_key_order_is_guid_link_title(item: Item, kinds: list[str]) -> None:
    (keyed,) = assign_keys([item])
    assert _kinds(keyed) == kinds


def test_guid_shared_within_a_feed_is_ignored() -> None:
    items = [
        _item(title="Raccolta rifiuti anticipata a lunedì", link="https://x.esempio.it/a", guid="avvisi"),
        _item(title="Mercato spostato in piazza Garibaldi", link="https://x.esempio.it/b", guid="avvisi"),
        _item(title="Consiglio comunale convocato giovedì", link="https://x.esempio.it/c", guid="consiglio"),
    ]
    keyed = assign_keys(items)
    assert [_kinds(item) for item in keyed] == [["l", "t"], ["l", "t"], ["g", "l", "t"]]


def test_guid_is_scoped_by_feed_link_and_title_are_global() -> None:
    # Two feeds of one comune that both number their items: the same guid is not the same item.
    (a,) = assign_keys([_item(feed_id="comunicati")])
    (b,) = assign_keys([_item(feed_id="avvisi")])
    assert _key(a, "g") != _key(b, "g")
    assert _key(a, "l") == _key(b, "l")
    assert _key(a, "t") == _key(b, "t")


def test_assign_keys_keeps_order_and_everything_else() -> None:
    items = [_item(title=f"Avviso numero {n} del mese", guid=str(n), link=None) for n in range(5)]
    keyed = assign_keys(items)
    assert [replace(item, keys=()) for item in keyed] == items
    assert len({item.keys for item in keyed}) == 5


def test_edited_item_keeps_its_keys() -> None:
    (before,) = assign_keys([_item()])
    edited = replace(_item(), text="Testo corretto", published=datetime(2026, 8, 22, tzinfo=UTC))
    (after,) = assign_keys([edited])
    assert after.keys == before.keys


# --- delivery_id ---------------------------------------------------------------------------


def test_delivery_id_is_pinned_and_stable() -> None:
    (item,) = assign_keys([_item()])
    assert delivery_id("whatsapp", item) == "6ba8111d9fba63e9a8b42ec422b7e53b"
    (again,) = assign_keys([replace(_item(), text="Testo modificato")])
    assert delivery_id("whatsapp", again) == delivery_id("whatsapp", item)


def test_delivery_id_depends_on_channel_and_item() -> None:
    (a,) = assign_keys([_item()])
    (b,) = assign_keys([_item(guid="p=1202", link="https://www.comune.esempio.it/novita/altro")])
    ids = {delivery_id(channel, item) for channel in ("whatsapp", "telegram", "mastodon") for item in (a, b)}
    assert len(ids) == 6
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in ids)


def test_delivery_id_without_keys_is_still_stable() -> None:
    (item,) = assign_keys([_item(guid=None, link=None, title="Avviso")])
    assert item.keys == ()
    assert delivery_id("telegram", item) == delivery_id("telegram", replace(item))


# --- is_seen -------------------------------------------------------------------------------

NOW = datetime(2026, 8, 22, 12, 0, tzinfo=UTC)


def _ago(delta: timedelta) -> int:
    return int((NOW - delta).timestamp())


def _lookup(seen: Mapping[str, Mapping[str, int]]) -> SeenLookup:
    def seen_by(key: str) -> Mapping[str, int]:
        return seen.get(key, {})

    return seen_by


# Each row: which key of the item ("g", "l", "t") was seen, by which feed, how long ago.
SEEN_CASES = [
    ("nothing", [], False),
    ("guid same feed long ago", [("g", "esempio", timedelta(days=300))], True),
    ("link same feed", [("l", "esempio", timedelta(days=1))], True),
    ("link other feed long ago", [("l", "comunicati", timedelta(days=300))], True),
    ("title other feed 1 h", [("t", "comunicati", timedelta(hours=1))], True),
    ("title other feed 2 days", [("t", "comunicati", timedelta(days=2))], True),
    ("title other feed just inside window", [("t", "comunicati", TITLE_MATCH_WINDOW - timedelta(minutes=1))], True),
    ("title other feed 4 days", [("t", "comunicati", timedelta(days=4))], False),
    ("title same feed 1 h", [("t", "esempio", timedelta(hours=1))], False),
    (
        "title same feed recent, other feed old",
        [("t", "esempio", timedelta(hours=1)), ("t", "comunicati", timedelta(days=10))],
        False,
    ),
    (
        "title same feed old, other feed recent",
        [("t", "esempio", timedelta(days=10)), ("t", "comunicati", timedelta(hours=5))],
        True,
    ),
]


@pytest.mark.parametrize(("case", "seen", "expected"), SEEN_CASES, ids=[row[0] for row in SEEN_CASES])
def test_is_seen(case: str, seen: list[tuple[str, str, timedelta]], expected: bool) -> None:
    (item,) = assign_keys([_item()])
    table: dict[str, dict[str, int]] = {}
    for kind, feed, age in seen:
        table.setdefault(_key(item, kind), {})[feed] = _ago(age)
    assert is_seen(item, _lookup(table), NOW) is expected


def test_guid_seen_in_another_feed_is_another_item() -> None:
    # Feed "comunicati" numbered its item "p=1201" too: that says nothing about ours.
    (theirs,) = assign_keys([_item(feed_id="comunicati", link=None, title="Avviso")])
    (ours,) = assign_keys([_item(link=None, title="Avviso")])
    table = {_key(theirs, "g"): {"comunicati": _ago(timedelta(hours=1))}}
    assert not is_seen(ours, _lookup(table), NOW)


def test_same_page_in_two_feeds_is_posted_once() -> None:
    (first,) = assign_keys([_item(feed_id="comunicati", guid="a1")])
    (second,) = assign_keys([_item(feed_id="esempio", guid="1843 at https://www.comune.esempio.it")])
    table = {key: {"comunicati": _ago(timedelta(minutes=5))} for key in first.keys}
    assert is_seen(second, _lookup(table), NOW)


def test_a_link_shared_by_several_items_identifies_them_with_their_title() -> None:
    def event(title: str) -> Item:
        return Item(feed_id="eventi", title=title, link="https://www.comune.esempio.it/eventi", guid=None, text="")

    first = assign_keys([event("Concerto di Natale in piazza"), event("Mercatino di Natale in centro")])
    later = assign_keys([event("Tombola di Capodanno in biblioteca"), *first])
    seen = {key for item in first for key in item.keys}
    assert not any(key in seen for key in later[0].keys)  # the new event on the listing page is new
    assert all(key in seen for key in later[1].keys[:1])
    assert len({item.keys[0] for item in later}) == 3


# --- content_key -----------------------------------------------------------------------------


def test_content_key_is_title_and_text_per_feed_whatever_the_link() -> None:
    text = "Dal 17 novembre è possibile presentare domanda per gli alloggi."
    one = Item(feed_id="notizie", title="Bando alloggi 2025", link="https://x.esempio.it/?p=1", guid=None, text=text)
    permalink = replace(one, link="https://x.esempio.it/novita/bando-alloggi-2025/", title="BANDO ALLOGGI 2025!")
    assert content_key(one) == content_key(permalink) is not None
    assert content_key(replace(one, text=text.replace("17", "18"))) != content_key(one)  # new text: new news
    assert content_key(replace(one, feed_id="avvisi")) != content_key(one)
    assert content_key(replace(one, text="Leggi tutto")) is None  # too few words to tell notices apart
    (keyed,) = assign_keys([one])
    assert recorded_keys(keyed) == (*keyed.keys, content_key(one))
    assert content_key(one) not in keyed.keys  # not an identity: an edit keeps the item's keys


def test_a_content_key_matches_only_its_own_feed_and_only_lately() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    item = Item(feed_id="notizie", title="Bando alloggi 2025", link="https://x.esempio.it/?p=1", guid=None,
                text="Dal 17 novembre è possibile presentare domanda per gli alloggi.")
    (keyed,) = assign_keys([item])
    key = content_key(item)

    def shown(feed: str, days_ago: float) -> SeenLookup:
        stamp = int((now - timedelta(days=days_ago)).timestamp())
        return lambda k: {feed: stamp} if k == key else {}

    assert is_seen(keyed, shown("notizie", 1), now)
    assert not is_seen(keyed, shown("notizie", 8), now)
    assert not is_seen(keyed, shown("avvisi", 1), now)
