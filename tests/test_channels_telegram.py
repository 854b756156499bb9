"""The Telegram channel against a fake Bot API: what is sent, how each answer is classified."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from servers.images import PNG, image_loader
from servers.telegram import BOT_USERNAME, CHAT_NUMERIC_ID

from bridge import render
from bridge.channels import (
    ChannelDownError,
    ChannelError,
    MessageRejected,
    Posted,
    TelegramChannel,
    TransientError,
)
from bridge.config import ChannelConfig, Secret
from bridge.images import ImageLoader
from bridge.item import Alert

if TYPE_CHECKING:
    from servers.images import FakeImageHost
    from servers.telegram import FakeTelegram

TOKEN = "123456:TEST-token-AbCdEf"

ALERT = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Lavori <urgenti> in via Roma & via Verdi",
    summary="Dal 3 al 5 marzo chiusura per lavori: i bus 3 & 5 deviano su via Po.",
    link="https://www.comune.example.it/notizie?id=12&lang=it",
    published=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
)


def config(api_url: str | None, **overrides: Any) -> ChannelConfig:
    values: dict[str, Any] = {
        "name": "telegram",
        "type": "telegram",
        "api_url": api_url,
        "chat_id": "@comune_esempio",
        "token": Secret("env:TELEGRAM_TOKEN", TOKEN),
        "timeout": timedelta(seconds=5),
    }
    values.update(overrides)
    return ChannelConfig(**values)


def run(cfg: ChannelConfig, action: Callable[[TelegramChannel], Any], *, images: ImageLoader | None = None,
        transport: httpx.AsyncBaseTransport | None = None) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False, transport=transport) as http:
            try:
                return await action(TelegramChannel(cfg, http=http, images=images))
            finally:
                if images is not None:
                    await images.aclose()

    return asyncio.run(go())


def send(cfg: ChannelConfig, alert: Alert = ALERT, *, plain: bool = False, images: ImageLoader | None = None,
         transport: httpx.AsyncBaseTransport | None = None) -> Posted:
    posted: Posted = run(cfg, lambda ch: ch.send(alert, delivery_id="d-1", plain=plain), images=images,
                         transport=transport)
    return posted


def probe(cfg: ChannelConfig) -> str:
    result: str = run(cfg, lambda ch: ch.probe())
    return result


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_no_token(error: ChannelError) -> None:
    for text in (str(error), repr(error), error.hint, repr(error.__cause__), repr(error.__context__)):
        assert TOKEN not in text
    assert "\n" not in str(error)


# -- success -------------------------------------------------------------------------------


def test_send_posts_html_with_a_link_preview(telegram_server: FakeTelegram) -> None:
    posted = send(config(telegram_server.url))
    [message] = telegram_server.messages
    assert posted == Posted(remote_id=str(message.message_id), verified=None)
    assert message.method == "sendMessage"
    assert message.parse_mode == "HTML"
    assert message.text == (
        "<b>Lavori &lt;urgenti&gt; in via Roma &amp; via Verdi</b>\n\n"
        "Dal 3 al 5 marzo chiusura per lavori: i bus 3 &amp; 5 deviano su via Po.\n\n"
        "https://www.comune.example.it/notizie?id=12&amp;lang=it"
    )
    assert message.link_preview_options == {"url": ALERT.link, "prefer_large_media": True}
    [request] = telegram_server.requests
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.json["chat_id"] == "@comune_esempio"


def test_what_readers_see_is_the_plain_text(telegram_server: FakeTelegram) -> None:
    send(config(telegram_server.url))
    # The fake parses the HTML like Telegram: escaping loses nothing.
    request = telegram_server.requests[0]
    assert request.json["text"] == render.telegram(ALERT)


def test_plain_sends_without_parse_mode(telegram_server: FakeTelegram) -> None:
    send(config(telegram_server.url), plain=True)
    [message] = telegram_server.messages
    assert message.parse_mode is None
    assert message.text == render.plain(ALERT)


def test_a_numeric_chat_id_works(telegram_server: FakeTelegram) -> None:
    send(config(telegram_server.url, chat_id=str(CHAT_NUMERIC_ID)))
    assert len(telegram_server.messages) == 1


def test_a_long_alert_is_cut_to_the_limit(telegram_server: FakeTelegram) -> None:
    long_alert = Alert(feed_id="n", feed_name="N", title="Titolo", summary="parola " * 1000,
                       link="https://www.comune.example.it/x")
    send(config(telegram_server.url), long_alert)
    [message] = telegram_server.messages
    visible = render.plain(render.fit(long_alert, 4096))
    assert len(visible) <= 4096
    assert message.text.endswith("…\n\nhttps://www.comune.example.it/x")


def test_protocol_extras(telegram_server: FakeTelegram) -> None:
    cfg = config(telegram_server.url)
    assert run(cfg, lambda ch: _value(ch.guarantee)) == "at-least-once"
    assert run(cfg, lambda ch: ch.prepare("d-1")) is None
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token=None)) is None
    assert telegram_server.requests == []


async def _value(value: Any) -> Any:
    return value


# -- images --------------------------------------------------------------------------------


def with_image(url: str | None) -> Alert:
    return Alert(feed_id=ALERT.feed_id, feed_name=ALERT.feed_name, title=ALERT.title, summary=ALERT.summary,
                 link=ALERT.link, image_url=url)


def test_an_image_is_uploaded_as_a_photo_with_the_caption(
    telegram_server: FakeTelegram, image_host: FakeImageHost
) -> None:
    url = image_host.serve("/foto/a.png")
    posted = send(config(telegram_server.url, images=True), with_image(url), images=image_loader())
    [message] = telegram_server.messages
    assert message.method == "sendPhoto"
    assert (message.photo, message.photo_filename, message.photo_content_type) == (PNG, "a.png", "image/png")
    assert message.text == render.telegram(ALERT)
    assert message.parse_mode == "HTML"
    assert posted.remote_id == str(message.message_id)


@pytest.mark.parametrize("problem", ["http", "too big", "not an image", "missing", "refused by telegram"])
def test_image_problems_fall_back_to_text(
    telegram_server: FakeTelegram, image_host: FakeImageHost, problem: str
) -> None:
    url = {
        "http": f"http://127.0.0.1:{image_host.port}/a.png",
        "too big": image_host.serve("/big.png", b"\0" * 5000),
        "not an image": image_host.serve("/p", b"<html></html>", "text/html"),
        "missing": image_host.url + "/missing.png",
        "refused by telegram": image_host.serve("/ok.png"),
    }[problem]
    telegram_server.reject_photos = problem == "refused by telegram"
    send(config(telegram_server.url, images=True), with_image(url), images=image_loader(max_bytes=1000))
    [message] = telegram_server.messages
    assert message.method == "sendMessage"
    assert message.text == render.telegram(ALERT)


def test_a_caption_over_1024_posts_text(telegram_server: FakeTelegram, image_host: FakeImageHost) -> None:
    url = image_host.serve("/a.png")
    long_alert = Alert(feed_id="n", feed_name="N", title="Titolo", summary="parola " * 200,
                       link="https://www.comune.example.it/x", image_url=url)
    send(config(telegram_server.url, images=True), long_alert, images=image_loader())
    [message] = telegram_server.messages
    assert message.method == "sendMessage"
    assert image_host.requests == []


def test_plain_never_sends_a_photo(telegram_server: FakeTelegram, image_host: FakeImageHost) -> None:
    send(config(telegram_server.url, images=True), with_image(image_host.serve("/a.png")), plain=True,
         images=image_loader())
    [message] = telegram_server.messages
    assert (message.method, message.parse_mode) == ("sendMessage", None)


# -- errors --------------------------------------------------------------------------------


def test_flood_control_is_transient_with_retry_after(telegram_server: FakeTelegram) -> None:
    telegram_server.fail_next(429, retry_after=17)
    with pytest.raises(TransientError) as caught:
        send(config(telegram_server.url))
    assert caught.value.retry_after == 17
    assert "429" in str(caught.value) and "retry after 17" in str(caught.value)
    send(config(telegram_server.url))  # one-shot
    assert len(telegram_server.messages) == 1


@pytest.mark.parametrize("code", [500, 502])
def test_server_errors_are_transient(telegram_server: FakeTelegram, code: int) -> None:
    telegram_server.fail_next(code)
    with pytest.raises(TransientError):
        send(config(telegram_server.url))


def test_chat_not_found_is_channel_down(telegram_server: FakeTelegram) -> None:
    with pytest.raises(ChannelDownError) as caught:
        send(config(telegram_server.url, chat_id="@wrong_channel"))
    assert "chat not found" in str(caught.value)
    assert "chat_id" in caught.value.hint


@pytest.mark.parametrize("status", ["kicked", "left"])
def test_a_bot_out_of_the_chat_is_channel_down(telegram_server: FakeTelegram, status: str) -> None:
    telegram_server.member_status = status
    with pytest.raises(ChannelDownError) as caught:
        send(config(telegram_server.url))
    assert "403" in str(caught.value)
    assert "administrator" in caught.value.hint


def test_a_bot_without_posting_rights_is_channel_down(telegram_server: FakeTelegram) -> None:
    telegram_server.can_post = False
    with pytest.raises(ChannelDownError) as caught:
        send(config(telegram_server.url))
    assert "need administrator rights" in str(caught.value)


def test_a_wrong_token_is_channel_down_and_never_shown(telegram_server: FakeTelegram) -> None:
    telegram_server.token = "999:another"
    with pytest.raises(ChannelDownError) as caught:
        send(config(telegram_server.url))
    assert "401" in str(caught.value)
    assert "env:TELEGRAM_TOKEN" in caught.value.hint
    assert_no_token(caught.value)


def test_a_group_upgraded_to_supergroup_is_channel_down_with_the_new_id() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={
            "ok": False, "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -1009876543210},
        })

    with pytest.raises(ChannelDownError) as caught:
        send(config("https://api.telegram.test"), transport=httpx.MockTransport(answer))
    assert "-1009876543210" in caught.value.hint


@pytest.mark.parametrize(
    "description",
    ["Bad Request: can't parse entities: unsupported start tag \"x\"", "Bad Request: message is too long"],
)
def test_other_bad_requests_reject_the_message(telegram_server: FakeTelegram, description: str) -> None:
    telegram_server.fail_next(400, description)
    with pytest.raises(MessageRejected) as caught:
        send(config(telegram_server.url))
    assert description in str(caught.value)


def test_the_token_is_scrubbed_from_echoed_text() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"ok": False, "error_code": 400, "description": f"bad path /bot{TOKEN}/x"})

    with pytest.raises(MessageRejected) as caught:
        send(config("https://api.telegram.test"), transport=httpx.MockTransport(answer))
    assert_no_token(caught.value)
    assert "***" in str(caught.value)


def test_connection_refused_is_transient_and_shows_no_token() -> None:
    with pytest.raises(TransientError) as caught:
        send(config(closed_port_url()))
    assert "cannot reach Telegram at http://127.0.0.1:" in str(caught.value)
    assert_no_token(caught.value)
    assert caught.value.__cause__ is None  # httpx's error may carry the URL


def test_a_timeout_is_transient_and_shows_no_token(telegram_server: FakeTelegram) -> None:
    telegram_server.delay = 0.5
    with pytest.raises(TransientError) as caught:
        send(config(telegram_server.url, timeout=timedelta(seconds=0.2)))
    assert_no_token(caught.value)


def test_an_invalid_api_url_is_channel_down_and_shows_no_token() -> None:
    with pytest.raises(ChannelDownError) as caught:
        send(config("ftp://api.telegram.test"))
    assert_no_token(caught.value)


def test_the_default_api_url_is_telegrams() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"ok": True, "result": {"message_id": 5}})

    assert send(config(None), transport=httpx.MockTransport(answer)) == Posted("5")
    assert seen == [f"https://api.telegram.org/bot{TOKEN}/sendMessage"]


# -- probe ---------------------------------------------------------------------------------


def test_probe_of_an_admin_that_can_post(telegram_server: FakeTelegram) -> None:
    assert probe(config(telegram_server.url)) == (
        f"bot @{BOT_USERNAME} is administrator of channel @comune_esempio (can post)"
    )
    assert telegram_server.messages == []
    assert [r.path.rsplit("/", 1)[-1] for r in telegram_server.requests] == ["getMe", "getChat", "getChatMember"]


def test_probe_of_the_creator(telegram_server: FakeTelegram) -> None:
    telegram_server.member_status = "creator"
    assert "is creator of channel" in probe(config(telegram_server.url))


def test_probe_of_a_member_of_a_group(telegram_server: FakeTelegram) -> None:
    telegram_server.chat_type = "supergroup"
    telegram_server.member_status = "member"
    assert "is member of supergroup" in probe(config(telegram_server.url))


@pytest.mark.parametrize(
    ("status", "can_post", "what"),
    [("member", True, "is member"), ("administrator", False, "without the right to post"),
     ("left", True, "is left"), ("kicked", True, "is kicked")],
)
def test_probe_of_a_bot_that_cannot_post_is_channel_down(
    telegram_server: FakeTelegram, status: str, can_post: bool, what: str
) -> None:
    telegram_server.member_status = status
    telegram_server.can_post = can_post
    with pytest.raises(ChannelDownError) as caught:
        probe(config(telegram_server.url))
    assert what in str(caught.value)
    assert f"@{BOT_USERNAME}" in caught.value.hint


def test_probe_with_a_wrong_token_is_channel_down(telegram_server: FakeTelegram) -> None:
    telegram_server.token = "1:other"
    with pytest.raises(ChannelDownError) as caught:
        probe(config(telegram_server.url))
    assert_no_token(caught.value)


def test_probe_of_an_unknown_chat_is_channel_down(telegram_server: FakeTelegram) -> None:
    with pytest.raises(ChannelDownError, match="chat not found"):
        probe(config(telegram_server.url, chat_id="@nobody"))


def test_probe_of_an_unreachable_api_is_transient() -> None:
    with pytest.raises(TransientError):
        probe(config(closed_port_url()))
