"""Deleting a post on each platform, against the fakes (which follow WAHA's OpenAPI, the Bot
API and Mastodon's API): the request each deletion makes, the post gone from the platform, a
post already gone answered as such (a deletion repeated is harmless), each fault classified
as a send's, and `DeleteUnsupported` where a post cannot be deleted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from servers.garbage import BODIES

from bridge.channels import (
    ChannelDownError,
    DeleteUnsupported,
    GatewayAnswerError,
    MessageRejected,
    Posted,
    TransientError,
    open_channel,
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


def delete(cfg: ChannelConfig, remote_id: str) -> bool:
    deleted: bool = run(cfg, lambda channel: channel.delete(remote_id))
    return deleted


def send(cfg: ChannelConfig, alert: Alert = POSTED, delivery_id: str = "d-1") -> Posted:
    posted: Posted = run(cfg, lambda channel: channel.send(alert, delivery_id=delivery_id))
    return posted


# -- WAHA ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["NOWEB", "WEBJS", "plain"])
def test_waha_deletes_a_post_with_delete_on_its_serialized_id(waha_server: FakeWaha, engine: Any) -> None:
    waha_server.engine = engine
    waha_server.api_key = "waha-key"
    cfg = waha(waha_server.url, api_key=Secret("env:K", "waha-key"))
    other = waha_server.seed_post(CHAT, "un altro avviso")
    sent = send(cfg)
    assert sent.remote_id is not None
    assert delete(cfg, sent.remote_id) is True
    [request] = [r for r in waha_server.requests if r.method == "DELETE"]
    bare = sent.remote_id.rsplit("_", 1)[-1]
    assert request.path == f"/api/default/chats/{CHAT}/messages/true_{CHAT}_{bare}"
    assert request.headers["X-Api-Key"] == "waha-key"
    assert waha_server.deletions == [bare]
    assert [p.id for p in waha_server.visible_posts] == [other.id]  # only that one is gone


def test_waha_a_post_deleted_before_answers_false(waha_server: FakeWaha) -> None:
    cfg = waha(waha_server.url)
    post = waha_server.seed_post(CHAT, "testo")
    assert delete(cfg, post.id) is True
    assert delete(cfg, post.id) is False
    assert waha_server.deletions == [post.id]


@pytest.mark.parametrize(("code", "retry_after", "error"), [
    (500, None, TransientError),
    (429, 7.0, TransientError),
    (422, None, TransientError),  # session STARTING
    (401, None, ChannelDownError),
    (404, None, ChannelDownError),  # an unknown session, not a gone message
    (400, None, MessageRejected),
])
def test_waha_delete_faults_are_classified_as_sends(waha_server: FakeWaha, code: int, retry_after: float | None,
                                                    error: type[Exception]) -> None:
    post = waha_server.seed_post(CHAT, "testo")
    waha_server.fail_deletes(1, code, retry_after)
    with pytest.raises(error) as caught:
        delete(waha(waha_server.url), post.id)
    if retry_after is not None:
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == retry_after
    assert [p.id for p in waha_server.visible_posts] == [post.id]


def test_waha_a_2xx_that_is_not_waha_is_transient(waha_server: FakeWaha) -> None:
    body, content_type = BODIES["login page"]
    post = waha_server.seed_post(CHAT, "testo")
    waha_server.garble_next(None, body=body, content_type=content_type, every_request=True)
    with pytest.raises(GatewayAnswerError):
        delete(waha(waha_server.url), post.id)


# -- Telegram ------------------------------------------------------------------------------


def test_telegram_deletes_a_message(telegram_server: FakeTelegram) -> None:
    cfg = telegram(telegram_server.url)
    other = telegram_server.seed_message("un altro avviso")
    sent = send(cfg)
    assert sent.remote_id is not None
    assert delete(cfg, sent.remote_id) is True
    [request] = [r for r in telegram_server.requests if r.path.endswith("/deleteMessage")]
    assert request.params() == {"chat_id": "@comune_esempio", "message_id": int(sent.remote_id)}
    assert telegram_server.deletions == [int(sent.remote_id)]
    assert [m.message_id for m in telegram_server.messages] == [other]


def test_telegram_a_message_deleted_before_answers_false(telegram_server: FakeTelegram) -> None:
    cfg = telegram(telegram_server.url)
    message_id = telegram_server.seed_message("testo")
    assert delete(cfg, str(message_id)) is True
    assert delete(cfg, str(message_id)) is False


def test_telegram_a_message_too_old_cannot_be_deleted(telegram_server: FakeTelegram) -> None:
    message_id = telegram_server.seed_message("testo")
    telegram_server.undeletable.add(message_id)
    with pytest.raises(DeleteUnsupported, match="can't be deleted") as caught:
        delete(telegram(telegram_server.url), str(message_id))
    assert "48 hours" in caught.value.hint
    assert [m.message_id for m in telegram_server.messages] == [message_id]


def test_telegram_an_id_that_is_not_telegrams_is_refused_without_a_request(telegram_server: FakeTelegram) -> None:
    with pytest.raises(DeleteUnsupported, match="not a Telegram message id"):
        delete(telegram(telegram_server.url), "true_abc")
    assert not [r for r in telegram_server.requests if r.path.endswith("/deleteMessage")]


@pytest.mark.parametrize(("code", "retry_after", "error"), [
    (500, None, TransientError),
    (429, 5, TransientError),
    (401, None, ChannelDownError),
    (403, None, ChannelDownError),
])
def test_telegram_delete_faults_are_classified_as_sends(telegram_server: FakeTelegram, code: int,
                                                        retry_after: int | None, error: type[Exception]) -> None:
    message_id = telegram_server.seed_message("testo")
    telegram_server.fail_deletes(code, retry_after=retry_after)
    with pytest.raises(error) as caught:
        delete(telegram(telegram_server.url), str(message_id))
    if retry_after is not None:
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == retry_after
    assert [m.message_id for m in telegram_server.messages] == [message_id]


def test_telegram_a_2xx_that_is_not_true_is_transient(telegram_server: FakeTelegram) -> None:
    message_id = telegram_server.seed_message("testo")
    body, content_type = BODIES["login page"]
    telegram_server.garble_next(1, body=body, content_type=content_type, every_request=True)
    with pytest.raises(GatewayAnswerError):
        delete(telegram(telegram_server.url), str(message_id))


# -- Mastodon ------------------------------------------------------------------------------


def test_mastodon_deletes_a_status(mastodon_server: FakeMastodon) -> None:
    cfg = mastodon(mastodon_server.url)
    first = send(cfg)
    sent = send(cfg, Alert(feed_id="notizie", feed_name="Comune", title="Altro avviso", summary="",
                           link="https://x.example/2"), delivery_id="d-2")
    assert first.remote_id is not None and sent.remote_id is not None
    assert delete(cfg, sent.remote_id) is True
    [request] = [r for r in mastodon_server.requests if r.method == "DELETE"]
    assert request.path == f"/api/v1/statuses/{sent.remote_id}"
    assert request.headers["authorization"] == f"Bearer {MASTODON_TOKEN}"
    assert mastodon_server.deletions == [sent.remote_id]
    assert [s.id for s in mastodon_server.statuses] == [first.remote_id]


def test_mastodon_a_status_deleted_before_answers_false(mastodon_server: FakeMastodon) -> None:
    cfg = mastodon(mastodon_server.url)
    sent = send(cfg)
    assert sent.remote_id is not None
    assert delete(cfg, sent.remote_id) is True
    assert delete(cfg, sent.remote_id) is False


@pytest.mark.parametrize(("code", "retry_after", "error"), [
    (500, None, TransientError),
    (429, 9.0, TransientError),
    (401, None, ChannelDownError),
    (403, None, ChannelDownError),
])
def test_mastodon_delete_faults_are_classified_as_sends(mastodon_server: FakeMastodon, code: int,
                                                        retry_after: float | None, error: type[Exception]) -> None:
    cfg = mastodon(mastodon_server.url)
    sent = send(cfg)
    assert sent.remote_id is not None
    mastodon_server.fail_deletes(code, retry_after=retry_after)
    with pytest.raises(error) as caught:
        delete(cfg, sent.remote_id)
    if retry_after is not None:
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == retry_after
    assert [s.id for s in mastodon_server.statuses] == [sent.remote_id]


def test_mastodon_a_2xx_that_is_not_a_status_is_transient(mastodon_server: FakeMastodon) -> None:
    cfg = mastodon(mastodon_server.url)
    sent = send(cfg)
    assert sent.remote_id is not None
    body, content_type = BODIES["login page"]
    mastodon_server.garble_next(1, body=body, content_type=content_type, every_request=True)
    with pytest.raises(GatewayAnswerError):
        delete(cfg, sent.remote_id)


# -- channels without a delete -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["webhook", "console", "whapi"])
def test_a_channel_without_a_delete_says_so_without_a_request(kind: str) -> None:
    cfg = ChannelConfig(name=kind, type=kind, url="http://127.0.0.1:9", chat_id="x",
                        token=Secret("env:W", "whapi-token"))
    with pytest.raises(DeleteUnsupported, match="cannot delete on this platform"):
        delete(cfg, "1")
