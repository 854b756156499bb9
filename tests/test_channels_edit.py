"""Editing a post in place on each platform, against the fakes (which follow WAHA's OpenAPI,
the Bot API and Mastodon's API): the request each edit makes, what the platform then shows,
each fault classified as a send's, and `EditUnsupported` where a post cannot be edited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from servers.garbage import BODIES

from bridge.channels import (
    ChannelDownError,
    EditUnsupported,
    GatewayAnswerError,
    MessageRejected,
    Posted,
    TransientError,
    open_channel,
    outgoing_for,
)
from bridge.config import ChannelConfig, Secret
from bridge.item import Alert

if TYPE_CHECKING:
    from servers.mastodon import FakeMastodon
    from servers.telegram import FakeTelegram
    from servers.waha import FakeWaha

CHAT = "120363000000000000@newsletter"
TG_TOKEN = "123456:TEST-token-AbCdEf"
MASTODON_TOKEN = "mastodon-test-token-0123456789"

POSTED = Alert(feed_id="notizie", feed_name="Comune di Esempio", title="Convocazione Consiglio Comunale",
               summary="Il giorno 30.07.2026 alle ore 19.00 presso la sala consiliare.",
               link="https://www.comune.example.it/notizie/consiglio")
CORRECTED = Alert(feed_id="notizie", feed_name="Comune di Esempio", title="Convocazione Consiglio Comunale",
                  summary="Il giorno 31.07.2026 alle ore 19.00 presso la sala consiliare.",
                  link="https://www.comune.example.it/notizie/consiglio")


def waha(url: str, **overrides: Any) -> ChannelConfig:
    return ChannelConfig(**{"name": "whatsapp", "type": "waha", "url": url, "chat_id": CHAT,
                            "timeout": timedelta(seconds=5), **overrides})


def telegram(url: str, **overrides: Any) -> ChannelConfig:
    return ChannelConfig(**{"name": "telegram", "type": "telegram", "api_url": url, "chat_id": "@comune_esempio",
                            "token": Secret("env:T", TG_TOKEN), "timeout": timedelta(seconds=5), **overrides})


def mastodon(url: str, **overrides: Any) -> ChannelConfig:
    return ChannelConfig(**{"name": "mastodon", "type": "mastodon", "url": url,
                            "token": Secret("env:M", MASTODON_TOKEN), "timeout": timedelta(seconds=5),
                            **overrides})


def run(cfg: ChannelConfig, action: Callable[[Any], Any]) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await action(open_channel(cfg, http=http))

    return asyncio.run(go())


def edit(cfg: ChannelConfig, remote_id: str, alert: Alert = CORRECTED, *, plain: bool = False) -> Posted:
    posted: Posted = run(cfg, lambda channel: channel.edit(alert, remote_id=remote_id, plain=plain))
    return posted


def send(cfg: ChannelConfig, alert: Alert = POSTED) -> Posted:
    posted: Posted = run(cfg, lambda channel: channel.send(alert, delivery_id="d-1"))
    return posted


# -- WAHA ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["NOWEB", "WEBJS", "plain"])
def test_waha_edits_a_text_post_with_put_and_reads_it_back(waha_server: FakeWaha, engine: Any) -> None:
    waha_server.engine = engine
    cfg = waha(waha_server.url, api_key=Secret("env:K", "waha-key"))
    waha_server.api_key = "waha-key"
    sent = send(cfg)
    assert sent.remote_id is not None
    result = edit(cfg, sent.remote_id)
    [post] = waha_server.posts
    serialized = f"true_{CHAT}_{post.id}"
    [put] = [r for r in waha_server.requests if r.method == "PUT"]
    assert put.path == f"/api/default/chats/{CHAT}/messages/{serialized}"
    assert put.body == {"text": outgoing_for(cfg, CORRECTED).text, "linkPreview": True}
    assert put.headers["X-Api-Key"] == "waha-key"
    assert post.text == outgoing_for(cfg, CORRECTED).text
    assert [e.text for e in waha_server.edits] == [post.text]
    assert result == Posted(sent.remote_id, verified=True)
    assert len(waha_server.posts) == 1  # edited in place, nothing new posted


def test_waha_an_edit_repeated_leaves_the_same_text(waha_server: FakeWaha) -> None:
    cfg = waha(waha_server.url)
    post = waha_server.seed_post(CHAT, outgoing_for(cfg, POSTED).text)
    assert edit(cfg, post.id).verified is True
    assert edit(cfg, post.id).verified is True
    assert [p.text for p in waha_server.posts] == [outgoing_for(cfg, CORRECTED).text]


def test_waha_an_image_post_cannot_be_edited_and_nothing_is_put(waha_server: FakeWaha) -> None:
    cfg = waha(waha_server.url)
    post = waha_server.seed_post(CHAT, outgoing_for(cfg, POSTED).text, kind="image")
    with pytest.raises(EditUnsupported, match="image"):
        edit(cfg, post.id)
    assert not [r for r in waha_server.requests if r.method == "PUT"]
    assert waha_server.posts[0].text == outgoing_for(cfg, POSTED).text


def test_waha_a_post_no_longer_in_the_chat_cannot_be_edited(waha_server: FakeWaha) -> None:
    with pytest.raises(EditUnsupported, match="not in the chat"):
        edit(waha(waha_server.url), "3EB0000000000000DEAD")


def test_waha_an_edit_whatsapp_did_not_apply_is_unverified(waha_server: FakeWaha) -> None:
    cfg = waha(waha_server.url)
    post = waha_server.seed_post(CHAT, outgoing_for(cfg, POSTED).text)
    waha_server.ignore_edits(1)
    assert edit(cfg, post.id) == Posted(post.id, verified=False)


@pytest.mark.parametrize(("code", "retry_after", "error"), [
    (500, None, TransientError),
    (429, 7.0, TransientError),
    (422, None, TransientError),  # session STARTING
    (401, None, ChannelDownError),
    (400, None, MessageRejected),
])
def test_waha_edit_faults_are_classified_as_sends(waha_server: FakeWaha, code: int, retry_after: float | None,
                                                  error: type[Exception]) -> None:
    cfg = waha(waha_server.url)
    post = waha_server.seed_post(CHAT, "testo")
    waha_server.fail_edits(1, code, retry_after)
    with pytest.raises(error) as caught:
        edit(cfg, post.id)
    assert not isinstance(caught.value, EditUnsupported)
    if retry_after is not None:
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == retry_after
    assert waha_server.posts[0].text == "testo"


def test_waha_an_unknown_session_pauses_the_channel(waha_server: FakeWaha) -> None:
    post = waha_server.seed_post(CHAT, "testo")
    with pytest.raises(ChannelDownError):
        edit(waha(waha_server.url, session="altra"), post.id)


@pytest.mark.parametrize("kind", ["login page", "wrong shape"])
def test_waha_a_2xx_that_is_not_waha_is_transient(waha_server: FakeWaha, kind: str) -> None:
    body, content_type = BODIES[kind]
    post = waha_server.seed_post(CHAT, "testo")
    waha_server.garble_next(None, body=body, content_type=content_type, every_request=True)
    with pytest.raises(GatewayAnswerError):
        edit(waha(waha_server.url), post.id)


def test_waha_a_garbled_answer_to_the_put_is_transient(waha_server: FakeWaha) -> None:
    post = waha_server.seed_post(CHAT, "testo")
    waha_server.garble_next(1)  # the PUT (reads are not garbled)
    with pytest.raises(GatewayAnswerError):
        edit(waha(waha_server.url), post.id)


# -- Telegram ------------------------------------------------------------------------------


def test_telegram_edits_a_text_message(telegram_server: FakeTelegram) -> None:
    cfg = telegram(telegram_server.url)
    sent = send(cfg)
    assert sent.remote_id is not None
    assert edit(cfg, sent.remote_id) == Posted(sent.remote_id)
    [request] = [r for r in telegram_server.requests if r.path.endswith("/editMessageText")]
    assert request.path == f"/bot{TG_TOKEN}/editMessageText"
    assert request.json == {
        "chat_id": "@comune_esempio", "message_id": int(sent.remote_id), "parse_mode": "HTML",
        "text": outgoing_for(cfg, CORRECTED).text,
        "link_preview_options": {"url": CORRECTED.link, "prefer_large_media": True},
    }
    [message] = telegram_server.messages
    assert message.text == outgoing_for(cfg, CORRECTED).text
    assert [e.method for e in telegram_server.edits] == ["editMessageText"]


def test_telegram_edits_a_photos_caption(telegram_server: FakeTelegram) -> None:
    cfg = telegram(telegram_server.url)
    message_id = telegram_server.seed_message(outgoing_for(cfg, POSTED).text, photo=True)
    edit(cfg, str(message_id))
    [edited] = telegram_server.edits
    assert edited.method == "editMessageCaption"
    assert edited.params == {"chat_id": "@comune_esempio", "message_id": message_id, "parse_mode": "HTML",
                             "caption": outgoing_for(cfg, CORRECTED).text}
    assert telegram_server.messages[0].text == outgoing_for(cfg, CORRECTED).text


def test_telegram_a_caption_over_1024_cannot_be_edited(telegram_server: FakeTelegram) -> None:
    cfg = telegram(telegram_server.url)
    message_id = telegram_server.seed_message("foto", photo=True)
    long = Alert(feed_id="n", feed_name="N", title="Titolo", summary="Parola lunga. " * 150,
                 link="https://www.comune.example.it/x")
    with pytest.raises(EditUnsupported, match="caption"):
        edit(cfg, str(message_id), long)
    assert telegram_server.messages[0].text == "foto"


def test_telegram_an_edit_repeated_is_success(telegram_server: FakeTelegram) -> None:
    cfg = telegram(telegram_server.url)
    message_id = telegram_server.seed_message(outgoing_for(cfg, POSTED).text)
    edit(cfg, str(message_id))
    assert edit(cfg, str(message_id)) == Posted(str(message_id))  # "message is not modified"
    assert len(telegram_server.edits) == 1


@pytest.mark.parametrize("case", ["too old", "gone", "not an id"])
def test_telegram_a_message_that_cannot_be_edited_says_so(telegram_server: FakeTelegram, case: str) -> None:
    cfg = telegram(telegram_server.url)
    message_id = telegram_server.seed_message("testo")
    remote_id = {"too old": str(message_id), "gone": "999999", "not an id": "abc"}[case]
    telegram_server.uneditable.add(message_id)
    with pytest.raises(EditUnsupported):
        edit(cfg, remote_id)
    assert not telegram_server.edits


@pytest.mark.parametrize(("code", "description", "error"), [
    (429, None, TransientError),
    (500, None, TransientError),
    (401, None, ChannelDownError),
    (403, None, ChannelDownError),
    (400, "Bad Request: can't parse entities: unsupported start tag", MessageRejected),
])
def test_telegram_edit_faults_are_classified_as_sends(telegram_server: FakeTelegram, code: int,
                                                      description: str | None, error: type[Exception]) -> None:
    message_id = telegram_server.seed_message("testo")
    telegram_server.fail_edits(code, description, retry_after=5 if code == 429 else None)
    with pytest.raises(error) as caught:
        edit(telegram(telegram_server.url), str(message_id))
    assert not isinstance(caught.value, EditUnsupported)
    assert TG_TOKEN not in str(caught.value)
    if code == 429:
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == 5


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_telegram_a_2xx_that_is_not_the_bot_api_is_transient(telegram_server: FakeTelegram, kind: str) -> None:
    message_id = telegram_server.seed_message("testo")
    body, content_type = BODIES[kind]
    telegram_server.garble_next(1, body=body, content_type=content_type)
    with pytest.raises(GatewayAnswerError) as caught:
        edit(telegram(telegram_server.url), str(message_id))
    assert TG_TOKEN not in str(caught.value)


# -- Mastodon ------------------------------------------------------------------------------


def test_mastodon_edits_a_status_in_place(mastodon_server: FakeMastodon) -> None:
    cfg = mastodon(mastodon_server.url)
    sent = send(cfg)
    assert sent.remote_id is not None
    assert edit(cfg, sent.remote_id) == Posted(sent.remote_id, verified=True)
    [put] = [r for r in mastodon_server.requests if r.method == "PUT"]
    assert put.path == f"/api/v1/statuses/{sent.remote_id}"
    assert put.header("Authorization") == f"Bearer {MASTODON_TOKEN}"
    assert json.loads(put.body) == {"status": outgoing_for(cfg, CORRECTED).text, "language": "it"}
    [status] = mastodon_server.statuses
    assert status.text == outgoing_for(cfg, CORRECTED).text
    assert len(mastodon_server.edits) == 1


def test_mastodon_an_edit_keeps_the_statuses_image(mastodon_server: FakeMastodon) -> None:
    cfg = mastodon(mastodon_server.url)
    status_id = run(cfg, lambda _: _post_with_media(mastodon_server))
    edit(cfg, status_id)
    [edited] = mastodon_server.edits
    assert edited.media_ids == mastodon_server.statuses[0].media_ids != ()


async def _post_with_media(server: FakeMastodon) -> str:
    headers = {"Authorization": f"Bearer {MASTODON_TOKEN}"}
    async with httpx.AsyncClient(trust_env=False) as http:
        media = await http.post(f"{server.url}/api/v2/media", headers=headers,
                                files={"file": ("f.png", b"\x89PNG", "image/png")})
        status = await http.post(f"{server.url}/api/v1/statuses", headers=headers,
                                 json={"status": "con foto", "media_ids": [media.json()["id"]]})
        ident: str = status.json()["id"]
        return ident


def test_mastodon_a_status_no_longer_there_cannot_be_edited(mastodon_server: FakeMastodon) -> None:
    with pytest.raises(EditUnsupported, match="no longer"):
        edit(mastodon(mastodon_server.url), "110000000000009999")


@pytest.mark.parametrize(("code", "error"), [
    (429, TransientError), (500, TransientError), (401, ChannelDownError), (403, ChannelDownError),
    (422, MessageRejected),
])
def test_mastodon_edit_faults_are_classified_as_sends(mastodon_server: FakeMastodon, code: int,
                                                      error: type[Exception]) -> None:
    cfg = mastodon(mastodon_server.url)
    sent = send(cfg)
    assert sent.remote_id is not None
    mastodon_server.fail_edits(code, retry_after=9 if code == 429 else None)
    with pytest.raises(error) as caught:
        edit(cfg, sent.remote_id)
    assert not isinstance(caught.value, EditUnsupported)
    if code == 429:
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == 9
    assert mastodon_server.statuses[0].text == outgoing_for(cfg, POSTED).text


def test_mastodon_a_bad_token_pauses_the_channel(mastodon_server: FakeMastodon) -> None:
    sent = send(mastodon(mastodon_server.url))
    assert sent.remote_id is not None
    mastodon_server.token = "revoked"
    with pytest.raises(ChannelDownError):
        edit(mastodon(mastodon_server.url), sent.remote_id)


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_mastodon_a_2xx_that_is_not_a_status_is_transient(mastodon_server: FakeMastodon, kind: str) -> None:
    sent = send(mastodon(mastodon_server.url))
    assert sent.remote_id is not None
    body, content_type = BODIES[kind]
    mastodon_server.garble_next(1, body=body, content_type=content_type)
    with pytest.raises(GatewayAnswerError):
        edit(mastodon(mastodon_server.url), sent.remote_id)


# -- channels without an edit --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["webhook", "console", "whapi"])
def test_a_channel_without_an_edit_says_so_without_a_request(kind: str) -> None:
    cfg = ChannelConfig(name=kind, type=kind, url="http://127.0.0.1:9", chat_id="x",
                        token=Secret("env:W", "whapi-token"))
    with pytest.raises(EditUnsupported, match=r"cannot edit|not edited"):
        edit(cfg, "1")
