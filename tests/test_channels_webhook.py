"""The webhook channel against a loopback receiver: payload, headers, signature, errors."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bridge import render
from bridge.channels import ChannelDownError, MessageRejected, Posted, TransientError, WebhookChannel
from bridge.channels.webhook import PROBE_RESULT, alert_payload, signature
from bridge.config import ChannelConfig, Secret
from bridge.item import Alert

if TYPE_CHECKING:
    from servers.webhook import FakeWebhook

SECRET = "webhook-shared-secret-0123456789"

ALERT = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Chiusura temporanea di via Roma",
    summary="Dal 3 al 5 marzo via Roma è chiusa al traffico.",
    link="https://www.comune.example.it/notizie/chiusura-via-roma",
    published=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
    urgent=True,
    image_url="https://www.comune.example.it/foto.jpg",
    categories=("Viabilità",),
)


def config(url: str, **overrides: Any) -> ChannelConfig:
    values: dict[str, Any] = {"name": "hook", "type": "webhook", "url": url, "timeout": timedelta(seconds=5)}
    values.update(overrides)
    return ChannelConfig(**values)


def send(cfg: ChannelConfig, *, delivery_id: str = "d-1", transport: httpx.AsyncBaseTransport | None = None,
         plain: bool = False) -> Posted:
    async def go() -> Posted:
        async with httpx.AsyncClient(trust_env=False, transport=transport) as http:
            return await WebhookChannel(cfg, http=http).send(ALERT, delivery_id=delivery_id, plain=plain)

    return asyncio.run(go())


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_posts_the_alert_as_json_with_the_idempotency_key(webhook_server: FakeWebhook) -> None:
    posted = send(config(webhook_server.url + "/in/"))
    [request] = webhook_server.requests
    assert request.path == "/in/"  # the URL exactly as configured
    assert request.header("Content-Type") == "application/json"
    assert request.header("Idempotency-Key") == "d-1"
    assert request.header("X-Signature") is None
    assert request.json == {
        "delivery_id": "d-1",
        "feed": "notizie",
        "feed_name": "Comune di Esempio",
        "title": ALERT.title,
        "summary": ALERT.summary,
        "link": ALERT.link,
        "published": "2026-03-01T09:00:00+00:00",
        "urgent": True,
        "categories": ["Viabilità"],
        "image_url": ALERT.image_url,
        "text": render.plain(ALERT),
    }
    assert posted == Posted(remote_id="1", verified=None)


def test_the_body_is_compact_sorted_utf8(webhook_server: FakeWebhook) -> None:
    send(config(webhook_server.url))
    [request] = webhook_server.requests
    expected = json.dumps(alert_payload(ALERT, "d-1"), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert request.body == expected.encode("utf-8")
    assert "Viabilità".encode() in request.body


def test_plain_changes_nothing(webhook_server: FakeWebhook) -> None:
    send(config(webhook_server.url), plain=True)
    send(config(webhook_server.url), delivery_id="d-2")
    first, second = webhook_server.requests
    assert first.json["text"] == second.json["text"] == render.plain(ALERT)


def test_a_secret_signs_the_exact_body(webhook_server: FakeWebhook) -> None:
    webhook_server.secret = SECRET
    send(config(webhook_server.url, secret=Secret("env:HOOK_SECRET", SECRET)))
    [request] = webhook_server.deliveries  # the fake checked the signature
    digest = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.header("X-Signature") == f"sha256={digest}" == signature(SECRET, request.body)


def test_a_wrong_secret_is_channel_down_and_never_shown(webhook_server: FakeWebhook) -> None:
    webhook_server.secret = "the-receivers-secret"
    with pytest.raises(ChannelDownError) as caught:
        send(config(webhook_server.url, secret=Secret("env:HOOK_SECRET", SECRET)))
    assert "401" in str(caught.value)
    for text in (str(caught.value), caught.value.hint):
        assert SECRET not in text


def test_a_receiver_that_deduplicates_gets_one_delivery(webhook_server: FakeWebhook) -> None:
    webhook_server.dedupe = True
    first = send(config(webhook_server.url))
    again = send(config(webhook_server.url))
    assert first == again
    assert len(webhook_server.requests) == 2
    assert len(webhook_server.deliveries) == 1


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_success(webhook_server: FakeWebhook, status: int) -> None:
    webhook_server.status = status
    posted = send(config(webhook_server.url))
    assert posted.remote_id == (None if status == 204 else "1")


@pytest.mark.parametrize(
    ("code", "error"),
    [(400, MessageRejected), (413, MessageRejected), (422, MessageRejected),
     (401, ChannelDownError), (403, ChannelDownError), (404, ChannelDownError), (410, ChannelDownError),
     (408, TransientError), (429, TransientError), (500, TransientError), (503, TransientError)],
)
def test_error_classes(webhook_server: FakeWebhook, code: int, error: type[Exception]) -> None:
    webhook_server.fail_next(code)
    with pytest.raises(error) as caught:
        send(config(webhook_server.url))
    assert f"answered {code}" in str(caught.value)


def test_retry_after_is_honoured(webhook_server: FakeWebhook) -> None:
    webhook_server.fail_next(503, retry_after=30)
    with pytest.raises(TransientError) as caught:
        send(config(webhook_server.url))
    assert caught.value.retry_after == 30


def test_a_redirect_is_not_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": "https://elsewhere.test/"})

    with pytest.raises(ChannelDownError):
        send(config("https://hooks.test/in"), transport=httpx.MockTransport(answer))


def test_connection_refused_is_transient() -> None:
    with pytest.raises(TransientError):
        send(config(closed_port_url()))


def test_messages_show_only_scheme_and_host_of_the_url() -> None:
    url = "http://127.0.0.1:9/services/T000/B000/s3cr3tpath"
    with pytest.raises(TransientError) as caught:
        send(config(url))
    assert "s3cr3tpath" not in str(caught.value)
    assert "http://127.0.0.1:9" in str(caught.value)


def test_protocol_extras_and_probe_send_nothing(webhook_server: FakeWebhook) -> None:
    async def go() -> tuple[Any, ...]:
        async with httpx.AsyncClient(trust_env=False) as http:
            channel = WebhookChannel(config(webhook_server.url), http=http)
            return (channel.guarantee, await channel.prepare("d-1"),
                    await channel.recover(ALERT, delivery_id="d-1", token=None), await channel.probe())

    assert asyncio.run(go()) == ("exactly-once", None, None, PROBE_RESULT)
    assert webhook_server.requests == []


def test_url_is_required() -> None:
    async def go() -> None:
        async with httpx.AsyncClient() as http:
            WebhookChannel(ChannelConfig(name="hook", type="webhook"), http=http)

    with pytest.raises(ValueError, match="needs url"):
        asyncio.run(go())
