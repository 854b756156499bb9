"""Corrections through the real Bridge (`run_once`: poll every feed, then drain every
channel) with the loopback feed server and the fake platforms: a posted item whose date
changes at its source is edited in place on WAHA, Telegram and Mastodon (the request of the
platform's own shape), goes out as a "Rettifica" post where `corrections = "post"` or where
the post cannot be edited, waits for an editor with "ask" and is edited once approved; a
typo-level change causes nothing, nor does a second poll of the same change, and past
MAX_CORRECTIONS a change is only recorded."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servers.feeds import FeedServer, rss
from servers.mastodon import FakeMastodon
from servers.telegram import FakeTelegram
from servers.waha import FakeWaha

from bridge.approval import APPROVE, DROP, Action
from bridge.config import Config, load_config
from bridge.corrections import MAX_CORRECTIONS
from bridge.daemon import Bridge
from bridge.store import Store

CHAT = "120363000000000091@newsletter"
TG_TOKEN = "123456:TEST-token-AbCdEf"
MASTODON_TOKEN = "mastodon-test-token-0123456789"
PUBLISHED = datetime.now(UTC) - timedelta(hours=2)
LINK = "https://www.comune.esempio.it/novita/consiglio/"

ORIGINAL = "Il Consiglio comunale è convocato il 30 luglio alle ore 19.00 presso la sala consiliare."
MOVED = "Il Consiglio comunale è convocato il 31 luglio alle ore 19.00 presso la sala consiliare."
TYPO = "Il Consiglio comunale è convocato il 30 luglio alle ore 19.00 presso la sala consilare."


def item(description: str, title: str = "Convocazione del Consiglio comunale") -> dict[str, Any]:
    return {"title": title, "link": LINK, "guid": "https://www.comune.esempio.it/?p=91",
            "description": description, "pubDate": PUBLISHED}


class Setup:
    """One feed "notizie" (backfill 1: its first poll posts its item) to one channel."""

    def __init__(self, tmp: Path, feeds: FeedServer, channel: str, *, feed_extra: str = "") -> None:
        self.feeds = feeds
        path = tmp / "config.toml"
        path.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
channels = ["uscita"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"
backfill = 1

[[feeds]]
id = "notizie"
url = "{feeds.url('/feed.xml')}"
{feed_extra}

[channels.uscita]
{channel}
""", encoding="utf-8")
        self.config: Config = load_config(path, {**os.environ, "TG_TOKEN": TG_TOKEN, "M_TOKEN": MASTODON_TOKEN})
        self.store = Store.open(self.config.bridge.state_dir)

    def publish(self, description: str, **fields: Any) -> None:
        self.feeds.set_feed("/feed.xml", rss([item(description, **fields)]))

    def cycle(self) -> None:
        asyncio.run(Bridge(self.config, self.store).run_once())

    def close(self) -> None:
        self.store.close()


def waha_channel(waha: FakeWaha) -> str:
    return f'type = "waha"\nurl = "{waha.url}"\nchat_id = "{CHAT}"'


@pytest.fixture
def setup_factory(tmp_path: Path, feed_server: FeedServer) -> Any:
    made: list[Setup] = []

    def make(channel: str, **options: Any) -> Setup:
        made.append(Setup(tmp_path, feed_server, channel, **options))
        return made[-1]

    yield make
    for setup in made:
        setup.close()


def test_waha_a_changed_date_edits_the_post_once(setup_factory: Any, waha_server: FakeWaha) -> None:
    setup = setup_factory(waha_channel(waha_server))
    setup.publish(ORIGINAL)
    setup.cycle()
    [post] = waha_server.posts
    assert "30 luglio" in post.text
    setup.publish(MOVED)
    setup.cycle()
    [put] = [r for r in waha_server.requests if r.method == "PUT"]
    assert put.path == f"/api/default/chats/{CHAT}/messages/true_{CHAT}_{post.id}"
    assert set(put.body) == {"text", "linkPreview"} and "31 luglio" in put.body["text"]
    [edited] = waha_server.posts  # in place: no new post
    assert "31 luglio" in edited.text and "30 luglio" not in edited.text
    setup.cycle()  # the same change, polled again: nothing more
    assert len(waha_server.edits) == 1 and len(waha_server.posts) == 1
    assert setup.store.deliveries() == []
    [entry] = setup.store.audit_entries()
    assert (entry.who, entry.where, entry.action) == ("channel-bridge", "daemon", "correction")
    assert "«30 luglio»" in entry.reason and "«31 luglio»" in entry.reason


def test_a_typo_level_change_causes_nothing(setup_factory: Any, waha_server: FakeWaha) -> None:
    setup = setup_factory(waha_channel(waha_server))
    setup.publish(ORIGINAL)
    setup.cycle()
    setup.publish(TYPO, title="Convocazione del consiglio comunale.")
    setup.cycle()
    setup.cycle()
    assert waha_server.edits == [] and len(waha_server.posts) == 1
    assert setup.store.deliveries() == []


def test_corrections_post_sends_a_rettifica_linked_to_the_same_page(setup_factory: Any,
                                                                    waha_server: FakeWaha) -> None:
    setup = setup_factory(waha_channel(waha_server) + '\ncorrections = "post"')
    setup.publish(ORIGINAL)
    setup.cycle()
    setup.publish(MOVED)
    setup.cycle()
    setup.cycle()
    assert waha_server.edits == []
    first, follow_up = waha_server.posts
    assert "Rettifica: Convocazione del Consiglio comunale" in follow_up.text
    assert "«30 luglio»" in follow_up.text and "«31 luglio»" in follow_up.text
    assert LINK in follow_up.text
    assert "30 luglio" in first.text  # the first post is left as it was


def test_an_image_post_waha_cannot_edit_gets_a_rettifica_instead(setup_factory: Any,
                                                                 waha_server: FakeWaha) -> None:
    setup = setup_factory(waha_channel(waha_server))
    setup.publish(ORIGINAL)
    setup.cycle()
    [post] = waha_server.posts
    # What WAHA cannot edit: an image's caption (the post as if it had gone out with an image).
    waha_server._posts[0] = dataclasses.replace(post, kind="image")
    setup.publish(MOVED)
    setup.cycle()
    setup.cycle()
    assert waha_server.edits == []
    assert [p.text.splitlines()[0] for p in waha_server.posts][1].startswith("*Rettifica: ")
    assert [(e.who, e.action) for e in setup.store.audit_entries()] == [
        ("channel-bridge", "correction"), ("channel-bridge", "correction-as-post")]


def test_telegram_a_changed_date_edits_the_message(setup_factory: Any, telegram_server: FakeTelegram) -> None:
    setup = setup_factory(f'type = "telegram"\napi_url = "{telegram_server.url}"\nchat_id = "@comune_esempio"\n'
                          'token = "env:TG_TOKEN"')
    setup.publish(ORIGINAL)
    setup.cycle()
    [message] = telegram_server.messages
    setup.publish(MOVED)
    setup.cycle()
    setup.cycle()
    [edit] = telegram_server.edits
    assert edit.method == "editMessageText" and edit.message_id == message.message_id
    assert edit.params["chat_id"] == "@comune_esempio" and "31 luglio" in edit.text
    assert len(telegram_server.messages) == 1


def test_mastodon_a_changed_date_edits_the_status(setup_factory: Any, mastodon_server: FakeMastodon) -> None:
    setup = setup_factory(f'type = "mastodon"\nurl = "{mastodon_server.url}"\ntoken = "env:M_TOKEN"')
    setup.publish(ORIGINAL)
    setup.cycle()
    [status] = mastodon_server.statuses
    setup.publish(MOVED)
    setup.cycle()
    setup.cycle()
    [edit] = mastodon_server.edits
    assert edit.status_id == status.id and "31 luglio" in edit.text
    [put] = [r for r in mastodon_server.requests if r.method == "PUT"]
    assert put.path == f"/api/v1/statuses/{status.id}"
    assert len(mastodon_server.statuses) == 1


def test_ask_queues_the_correction_for_an_editor_who_approves_it(setup_factory: Any,
                                                                 waha_server: FakeWaha) -> None:
    setup = setup_factory(waha_channel(waha_server), feed_extra='corrections = "ask"')
    setup.publish(ORIGINAL)
    setup.cycle()
    setup.publish(MOVED)
    setup.cycle()
    setup.cycle()
    [waiting] = setup.store.deliveries(state="awaiting")
    assert waiting.corrects is not None and waha_server.edits == []
    bridge = Bridge(setup.config, setup.store)
    asyncio.run(bridge.act(Action(APPROVE, waiting.id), who="anna", where="cli"))
    setup.cycle()
    [edit] = waha_server.edits
    assert "31 luglio" in edit.text and len(waha_server.posts) == 1


def test_past_the_bound_a_change_is_only_recorded(setup_factory: Any, waha_server: FakeWaha) -> None:
    setup = setup_factory(waha_channel(waha_server))
    setup.publish(ORIGINAL)
    setup.cycle()
    for day in range(1, MAX_CORRECTIONS + 3):
        setup.publish(ORIGINAL.replace("30 luglio", f"{day} agosto"))
        setup.cycle()
    assert len(waha_server.edits) == MAX_CORRECTIONS
    assert len(waha_server.posts) == 1


def test_a_queued_correction_survives_a_restart_and_its_audit_entry_stands(setup_factory: Any,
                                                                          waha_server: FakeWaha) -> None:
    setup = setup_factory(waha_channel(waha_server), feed_extra='corrections = "ask"')
    setup.publish(ORIGINAL)
    setup.cycle()
    setup.publish(MOVED)
    setup.cycle()
    setup.store.close()
    setup.store = Store.open(setup.config.bridge.state_dir)
    [waiting] = setup.store.deliveries(state="awaiting")
    assert waiting.edit_of is not None and waiting.note is not None and "31 luglio" in waiting.alert.summary
    assert [e.action for e in setup.store.audit_entries()] == ["correction"]  # no "not-applied"
    setup.cycle()
    assert setup.store.deliveries(state="awaiting") == [waiting]  # the same change: not queued again


def test_ask_a_correction_the_editor_drops_does_not_come_back(setup_factory: Any, waha_server: FakeWaha) -> None:
    setup = setup_factory(waha_channel(waha_server), feed_extra='corrections = "ask"')
    setup.publish(ORIGINAL)
    setup.cycle()
    setup.publish(MOVED)
    setup.cycle()
    [waiting] = setup.store.deliveries(state="awaiting")
    bridge = Bridge(setup.config, setup.store)
    asyncio.run(bridge.act(Action(DROP, waiting.id, reason="la data era giusta"), who="anna", where="cli"))
    setup.cycle()
    setup.cycle()
    assert setup.store.deliveries() == [] and waha_server.edits == [] and len(waha_server.posts) == 1
