"""What a post keeps for a later correction: the version of its item (title and summary as
the feed gave them, before any editor's change), written with the post in the history and
read back after a restart; a post recorded without one (an older state, a hand edit) is read
as before and gets no correction (`bridge.corrections.posted_version` is None)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bridge.corrections import Version, posted_version
from bridge.item import Alert
from bridge.models import Delivery
from bridge.store import Store, history_path

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ALERT = Alert(feed_id="notizie", feed_name="Notizie", title="Chiusura di via Roma",
              summary="Dal 3 dicembre via Roma è chiusa per 10 giorni.",
              link="https://www.comune.esempio.it/novita/via-roma/")


def delivery(alert: Alert = ALERT, **changes: object) -> Delivery:
    made = Delivery(id="d1", channel="whatsapp", feed_id="notizie", alert=alert, created=NOW, order=1.0)
    return replace(made, **changes)  # type: ignore[arg-type]


def test_the_posted_version_is_kept_with_the_post_across_a_restart(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery()])
    store.record_post(store.deliveries()[0], "wamid-1", NOW)
    store.close()
    reopened = Store.open(tmp_path)
    [post] = reopened.posts()
    reopened.close()
    assert posted_version(post) == Version(ALERT.title, ALERT.summary)
    [line] = history_path(tmp_path, NOW).read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["version"] == {"title": ALERT.title, "summary": ALERT.summary}


def test_the_version_is_the_feeds_text_not_the_editors(tmp_path: Path) -> None:
    edited = replace(ALERT, title="Via Roma chiusa", summary="Testo riscritto da un redattore.")
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(edited, original=ALERT)])
    [post] = [store.record_post(store.deliveries()[0], "wamid-1", NOW)]
    store.close()
    assert post.title == "Via Roma chiusa"  # what went out
    assert posted_version(post) == Version(ALERT.title, ALERT.summary)  # what the source said


def test_each_post_of_a_digest_keeps_its_own_version(tmp_path: Path) -> None:
    other = replace(ALERT, title="Mercato spostato", summary="Il mercato del 5 dicembre è in piazza Garibaldi.",
                    link="https://www.comune.esempio.it/novita/mercato/")
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(), replace(delivery(other), id="d2", order=2.0)])
    posts = store.record_posts(store.deliveries(), "wamid-9", NOW)
    store.close()
    assert [posted_version(p) for p in posts] == [Version(ALERT.title, ALERT.summary),
                                                  Version(other.title, other.summary)]


def test_an_older_post_without_a_version_reads_as_before_and_gets_no_correction(tmp_path: Path) -> None:
    path = history_path(tmp_path, NOW)
    records = [
        {"delivery_id": "old1", "channel": "whatsapp", "feed_id": "notizie", "title": "Vecchio avviso",
         "link": "https://www.comune.esempio.it/n/1", "posted_at": NOW.isoformat(), "remote_id": "wamid-0",
         "verified": True},
        {"delivery_id": "old2", "channel": "whatsapp", "feed_id": "notizie", "title": "Avviso ritoccato",
         "link": "https://www.comune.esempio.it/n/2", "posted_at": NOW.isoformat(), "remote_id": "wamid-2",
         "version": {"title": 7}},  # a hand edit that is not a version
    ]
    Store.open(tmp_path).close()
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    store = Store.open(tmp_path)
    posts = list(store.posts())
    store.close()
    assert [(p.delivery_id, p.remote_id, p.verified) for p in posts] == [("old1", "wamid-0", True),
                                                                         ("old2", "wamid-2", None)]
    assert [posted_version(p) for p in posts] == [None, None]
    assert "version" not in posts[0].to_dict()  # written back as it was
