"""The Whapi.Cloud channel against a fake gateway: what is sent, how answers are classified."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from servers.images import PNG, image_loader

from bridge import render
from bridge.channels import (
    ChannelDownError,
    MessageRejected,
    Posted,
    TransientError,
    WhapiChannel,
)
from bridge.config import ChannelConfig, Secret
from bridge.images import ImageLoader
from bridge.item import Alert

if TYPE_CHECKING:
    from servers.images import FakeImageHost
    from servers.whapi import FakeWhapi

TOKEN = "whapi-test-token-0123456789"
CHAT = "120363000000000000@newsletter"

ALERT = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Chiusura *temporanea* di via Roma",
    summary="Dal 3 al 5 marzo via Roma è chiusa al traffico per lavori alla rete idrica.",
    link="https://www.comune.example.it/notizie/chiusura-via-roma",
)


def config(url: str | None, **overrides: Any) -> ChannelConfig:
    values: dict[str, Any] = {
        "name": "whapi",
        "type": "whapi",
        "url": url,
        "chat_id": CHAT,
        "token": Secret("env:WHAPI_TOKEN", TOKEN),
        "timeout": timedelta(seconds=5),
    }
    values.update(overrides)
    return ChannelConfig(**values)


def run(cfg: ChannelConfig, action: Callable[[WhapiChannel], Any], *, images: ImageLoader | None = None,
        transport: httpx.AsyncBaseTransport | None = None) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False, transport=transport) as http:
            try:
                return await action(WhapiChannel(cfg, http=http, images=images))
            finally:
                if images is not None:
                    await images.aclose()

    return asyncio.run(go())


def send(cfg: ChannelConfig, alert: Alert = ALERT, *, plain: bool = False, images: ImageLoader | None = None,
         transport: httpx.AsyncBaseTransport | None = None) -> Posted:
    posted: Posted = run(cfg, lambda ch: ch.send(alert, delivery_id="d-1", plain=plain), images=images,
                         transport=transport)
    return posted


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_send_posts_whatsapp_text_with_the_bearer_token(whapi_server: FakeWhapi) -> None:
    posted = send(config(whapi_server.url))
    [message] = whapi_server.messages
    assert posted == Posted(remote_id=message.id, verified=None)
    assert (message.kind, message.to, message.text) == ("text", CHAT, render.whatsapp(ALERT))
    [request] = whapi_server.requests
    assert (request.method, request.path) == ("POST", "/messages/text")
    assert request.header("Authorization") == f"Bearer {TOKEN}"
    assert request.json == {"to": CHAT, "body": render.whatsapp(ALERT)}


def test_plain_sends_plain_text(whapi_server: FakeWhapi) -> None:
    send(config(whapi_server.url), plain=True)
    assert whapi_server.messages[0].text == render.plain(ALERT)


def test_the_default_url_is_whapis_gateway() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"sent": True, "message": {"id": "wamid.1"}})

    assert send(config(None), transport=httpx.MockTransport(answer)) == Posted("wamid.1")
    assert seen == ["https://gate.whapi.cloud/messages/text"]


def test_protocol_extras(whapi_server: FakeWhapi) -> None:
    cfg = config(whapi_server.url)
    assert run(cfg, lambda ch: _value(ch.guarantee)) == "at-least-once"
    assert run(cfg, lambda ch: ch.prepare("d-1")) is None
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token=None)) is None
    assert whapi_server.requests == []


async def _value(value: Any) -> Any:
    return value


# -- images --------------------------------------------------------------------------------


def with_image(url: str) -> Alert:
    return Alert(feed_id=ALERT.feed_id, feed_name=ALERT.feed_name, title=ALERT.title, summary=ALERT.summary,
                 link=ALERT.link, image_url=url)


def test_an_image_is_sent_as_a_data_url_with_the_caption(whapi_server: FakeWhapi, image_host: FakeImageHost) -> None:
    send(config(whapi_server.url, images=True), with_image(image_host.serve("/foto/a.png")), images=image_loader())
    [message] = whapi_server.messages
    assert message.kind == "image"
    assert (message.media_bytes, message.media_mimetype) == (PNG, "image/png")
    assert message.media == f"data:image/png;name=a.png;base64,{base64.b64encode(PNG).decode()}"
    assert message.text == render.whatsapp(ALERT)


@pytest.mark.parametrize("problem", ["http", "missing", "not an image", "refused by whapi"])
def test_image_problems_fall_back_to_text(whapi_server: FakeWhapi, image_host: FakeImageHost, problem: str) -> None:
    url = {
        "http": f"http://127.0.0.1:{image_host.port}/a.png",
        "missing": image_host.url + "/missing.png",
        "not an image": image_host.serve("/p", b"<html></html>", "text/html"),
        "refused by whapi": image_host.serve("/ok.png"),
    }[problem]
    whapi_server.reject_media = problem == "refused by whapi"
    send(config(whapi_server.url, images=True), with_image(url), images=image_loader())
    [message] = whapi_server.messages
    assert message.kind == "text"


# -- errors --------------------------------------------------------------------------------


def test_wrong_token_is_channel_down_and_never_shown(whapi_server: FakeWhapi) -> None:
    whapi_server.token = "other"
    with pytest.raises(ChannelDownError) as caught:
        send(config(whapi_server.url))
    assert "401" in str(caught.value) and "wrong or missing token" in str(caught.value)
    assert "env:WHAPI_TOKEN" in caught.value.hint
    for text in (str(caught.value), caught.value.hint):
        assert TOKEN not in text


def test_unknown_chat_is_channel_down(whapi_server: FakeWhapi) -> None:
    with pytest.raises(ChannelDownError) as caught:
        send(config(whapi_server.url, chat_id="1@newsletter"))
    assert "chat_id" in caught.value.hint


def test_an_expired_plan_is_channel_down(whapi_server: FakeWhapi) -> None:
    whapi_server.fail_next(402)
    with pytest.raises(ChannelDownError, match="402"):
        send(config(whapi_server.url))


def test_bad_request_rejects_the_message(whapi_server: FakeWhapi) -> None:
    whapi_server.fail_next(400)
    with pytest.raises(MessageRejected):
        send(config(whapi_server.url))


@pytest.mark.parametrize("code", [429, 500, 503])
def test_busy_or_failing_is_transient(whapi_server: FakeWhapi, code: int) -> None:
    whapi_server.fail_next(code, retry_after=9)
    with pytest.raises(TransientError) as caught:
        send(config(whapi_server.url))
    assert caught.value.retry_after == 9


def test_sent_false_is_transient(whapi_server: FakeWhapi) -> None:
    whapi_server.not_sent_next(1)
    with pytest.raises(TransientError, match="not sent"):
        send(config(whapi_server.url))
    assert whapi_server.messages == []


def test_connection_refused_is_transient() -> None:
    with pytest.raises(TransientError, match="cannot reach Whapi"):
        send(config(closed_port_url()))


# -- probe ---------------------------------------------------------------------------------


def probe(cfg: ChannelConfig) -> str:
    result: str = run(cfg, lambda ch: ch.probe())
    return result


def test_probe_of_an_authorized_channel(whapi_server: FakeWhapi) -> None:
    assert probe(config(whapi_server.url)) == "AUTH"
    assert [r.path for r in whapi_server.requests] == ["/health"]


def test_probe_with_sync_error_can_still_send(whapi_server: FakeWhapi) -> None:
    whapi_server.status = "SYNC_ERROR"
    assert probe(config(whapi_server.url)).startswith("SYNC_ERROR")


@pytest.mark.parametrize(("status", "hint"), [("QR", "scan its QR code"), ("STOP", "subscription"),
                                              ("INIT", "starting"), ("ERROR", "restart")])
def test_probe_of_a_channel_not_authorized_is_down(whapi_server: FakeWhapi, status: str, hint: str) -> None:
    whapi_server.status = status
    with pytest.raises(ChannelDownError) as caught:
        probe(config(whapi_server.url))
    assert status in str(caught.value)
    assert hint in caught.value.hint


def test_probe_with_a_wrong_token_is_channel_down(whapi_server: FakeWhapi) -> None:
    whapi_server.token = "other"
    with pytest.raises(ChannelDownError):
        probe(config(whapi_server.url))


def test_probe_of_an_unreachable_gateway_is_transient() -> None:
    with pytest.raises(TransientError):
        probe(config(closed_port_url()))
