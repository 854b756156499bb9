"""Channels against their fakes: what reaches the gateway, and how each answer is classified."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bridge import render
from bridge.channels import (
    ChannelDownError,
    ConsoleChannel,
    MessageRejected,
    Posted,
    TransientError,
    WahaChannel,
    open_channel,
)
from bridge.config import ChannelConfig, Secret
from bridge.item import Alert

if TYPE_CHECKING:
    # Only for annotations: tests/conftest.py loads it as a plugin (`waha_server`).
    from servers.waha import FakeWaha

# Registers the `waha_server` fixture for this module.

API_KEY = "k3y-s3gr3t4-0123456789"
CHAT = "120363000000000000@newsletter"

ALERT = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Chiusura temporanea di via Roma",
    summary="Dal 3 al 5 marzo via Roma è chiusa al traffico per lavori alla rete idrica.",
    link="https://www.comune.example.it/notizie/chiusura-via-roma",
    published=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
)


def waha_config(url: str, **overrides: Any) -> ChannelConfig:
    values: dict[str, Any] = {
        "name": "whatsapp",
        "type": "waha",
        "url": url,
        "session": "default",
        "chat_id": CHAT,
        "api_key": Secret("env:WAHA_API_KEY", API_KEY),
        "timeout": timedelta(seconds=5),
    }
    values.update(overrides)
    return ChannelConfig(**values)


def with_channel(config: ChannelConfig, action: Callable[[WahaChannel], Any],
                 transport: httpx.AsyncBaseTransport | None = None) -> Any:
    """Run `action(channel)` (a coroutine) in a fresh event loop with a fresh client."""

    async def go() -> Any:
        # trust_env=False: a proxy from the environment must not intercept loopback.
        async with httpx.AsyncClient(trust_env=False, transport=transport) as http:
            channel = WahaChannel(config, http=http)
            try:
                return await action(channel)
            finally:
                await channel.aclose()

    return asyncio.run(go())


def send(config: ChannelConfig, transport: httpx.AsyncBaseTransport | None = None) -> Posted:
    posted: Posted = with_channel(
        config, lambda channel: channel.send(ALERT, delivery_id="d-1"), transport
    )
    return posted


def probe(config: ChannelConfig) -> str:
    status: str = with_channel(config, lambda channel: channel.probe())
    return status


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- success -----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["NOWEB", "WEBJS", "plain"])
def test_send_returns_the_message_id_of_each_engine_body(
    waha_server: FakeWaha, engine: Any
) -> None:
    waha_server.engine = engine
    posted = send(waha_config(waha_server.url))
    [post] = waha_server.posts
    expected = post.id if engine == "NOWEB" else post.serialized_id
    assert posted == Posted(remote_id=expected)


def test_send_posts_the_rendered_alert_with_session_chat_and_key(waha_server: FakeWaha) -> None:
    waha_server.api_key = API_KEY
    send(waha_config(waha_server.url + "/"))  # a trailing slash in url is harmless
    [post] = waha_server.posts
    assert post.body == {
        "session": "default",
        "chatId": CHAT,
        "text": render.whatsapp(ALERT),
        "linkPreview": True,
    }
    assert post.api_key == API_KEY
    [request] = waha_server.requests
    assert (request.method, request.path) == ("POST", "/api/sendText")
    # The post is what a follower of the channel reads back.
    [message] = waha_server_messages(waha_server)
    assert message["body"] == render.whatsapp(ALERT)
    assert message["fromMe"] is True


def test_send_without_api_key_sends_no_key_header(waha_server: FakeWaha) -> None:
    send(waha_config(waha_server.url, api_key=None))
    [request] = waha_server.requests
    assert "x-api-key" not in {name.lower() for name in request.headers}


def test_unparseable_success_body_still_counts_as_posted() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, text="OK")

    assert send(waha_config("http://waha.test"), httpx.MockTransport(answer)) == Posted(None)


# -- errors ------------------------------------------------------------------------------


def test_wrong_api_key_is_channel_down_and_never_shows_the_key(waha_server: FakeWaha) -> None:
    waha_server.api_key = "the-right-one"
    with pytest.raises(ChannelDownError) as caught:
        send(waha_config(waha_server.url))
    error = caught.value
    assert "401" in str(error)
    assert "env:WAHA_API_KEY" in error.hint
    for text in (str(error), repr(error), error.hint):
        assert API_KEY not in text
        assert "\n" not in text
    assert waha_server.posts == []


def test_missing_api_key_is_channel_down_with_a_hint(waha_server: FakeWaha) -> None:
    waha_server.api_key = API_KEY
    with pytest.raises(ChannelDownError) as caught:
        send(waha_config(waha_server.url, api_key=None))
    assert "WAHA_API_KEY" in caught.value.hint


def test_server_echoing_the_key_is_scrubbed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": f"key {API_KEY} is not allowed"})

    with pytest.raises(ChannelDownError) as caught:
        send(waha_config("http://waha.test"), httpx.MockTransport(answer))
    assert API_KEY not in str(caught.value)
    assert "***" in str(caught.value)


def test_unknown_session_is_channel_down(waha_server: FakeWaha) -> None:
    with pytest.raises(ChannelDownError) as caught:
        send(waha_config(waha_server.url, session="ufficio"))
    assert "404" in str(caught.value)
    assert "session" in caught.value.hint and "chat_id" in caught.value.hint


def test_session_starting_is_transient(waha_server: FakeWaha) -> None:
    waha_server.status = "STARTING"
    with pytest.raises(TransientError) as caught:
        send(waha_config(waha_server.url))
    assert "STARTING" in str(caught.value)
    assert waha_server.posts == []


def test_session_needing_a_qr_scan_is_transient_with_the_fix(waha_server: FakeWaha) -> None:
    waha_server.status = "SCAN_QR_CODE"
    with pytest.raises(TransientError) as caught:
        send(waha_config(waha_server.url))
    assert "QR" in caught.value.hint


def test_server_error_is_transient(waha_server: FakeWaha) -> None:
    waha_server.fail_next(1, 500)
    with pytest.raises(TransientError) as caught:
        send(waha_config(waha_server.url))
    assert caught.value.retry_after is None
    assert "500" in str(caught.value)
    # The failure was one-shot: the next send goes.
    assert send(waha_config(waha_server.url)).remote_id == waha_server.posts[0].id


def test_too_many_requests_is_transient_with_retry_after(waha_server: FakeWaha) -> None:
    waha_server.fail_next(1, 429, retry_after=7)
    with pytest.raises(TransientError) as caught:
        send(waha_config(waha_server.url))
    assert caught.value.retry_after == 7


def test_retry_after_as_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)

    def answer(request: httpx.Request) -> httpx.Response:
        stamp = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
        return httpx.Response(503, headers={"Retry-After": stamp})

    with pytest.raises(TransientError) as caught:
        send(waha_config("http://waha.test"), httpx.MockTransport(answer))
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


def test_bad_request_rejects_the_message(waha_server: FakeWaha) -> None:
    waha_server.fail_next(1, 400)
    with pytest.raises(MessageRejected):
        send(waha_config(waha_server.url))


def test_fake_rejects_a_send_without_chat_or_text(waha_server: FakeWaha) -> None:
    # Not reachable with a valid config (chat_id is required), so call the fake directly.
    answer = httpx.post(f"{waha_server.url}/api/sendText", json={"session": "default"},
                        trust_env=False)
    assert answer.status_code == 400
    assert waha_server.posts == []


def test_connection_refused_is_transient() -> None:
    with pytest.raises(TransientError) as caught:
        send(waha_config(closed_port_url()))
    assert "cannot reach WAHA" in str(caught.value)


def test_timeout_is_transient_and_the_post_may_have_gone(waha_server: FakeWaha) -> None:
    waha_server.delay = 0.6
    with pytest.raises(TransientError) as caught:
        send(waha_config(waha_server.url, timeout=timedelta(seconds=0.3)))
    assert "did not answer within 0.3 s" in str(caught.value)
    # The fake accepted it before stalling: exactly the case read-back must reconcile.
    assert len(waha_server.posts) == 1


def test_redirect_is_not_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://elsewhere.test/login"})

    with pytest.raises(ChannelDownError) as caught:
        send(waha_config("http://waha.test"), httpx.MockTransport(answer))
    assert "url" in caught.value.hint


# -- probe -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["WORKING", "STARTING", "SCAN_QR_CODE", "FAILED"])
def test_probe_returns_the_session_status(waha_server: FakeWaha, status: str) -> None:
    waha_server.status = status
    assert probe(waha_config(waha_server.url)) == status
    assert waha_server.posts == []


def test_probe_with_a_wrong_key_is_channel_down(waha_server: FakeWaha) -> None:
    waha_server.api_key = "another"
    with pytest.raises(ChannelDownError):
        probe(waha_config(waha_server.url))


def test_probe_of_an_unknown_session_is_channel_down(waha_server: FakeWaha) -> None:
    with pytest.raises(ChannelDownError):
        probe(waha_config(waha_server.url, session="nessuna"))


def test_probe_of_an_unreachable_gateway_is_transient() -> None:
    with pytest.raises(TransientError):
        probe(waha_config(closed_port_url()))


# -- the fake itself: read-back, pre-generated ids, drops -----------------------------------


def waha_server_messages(waha: FakeWaha, limit: int = 10) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{waha.url}/api/default/chats/{CHAT}/messages",
        params={"limit": limit},
        headers={"X-Api-Key": waha.api_key or ""},
        trust_env=False,
    )
    answer.raise_for_status()
    messages: list[dict[str, Any]] = answer.json()
    return messages


def test_fake_honours_pre_generated_ids_and_hides_dropped_posts(waha_server: FakeWaha) -> None:
    base = waha_server.url
    new_id = httpx.get(f"{base}/api/default/new-message-id", trust_env=False).json()["id"]
    for text, message_id in (("primo", new_id), ("secondo", None), ("terzo", None)):
        body = {"session": "default", "chatId": CHAT, "text": text}
        if message_id:
            body["id"] = message_id
        if text == "secondo":
            waha_server.drop_next(1)
        assert httpx.post(f"{base}/api/sendText", json=body, trust_env=False).status_code == 201
    assert [post.text for post in waha_server.posts] == ["primo", "secondo", "terzo"]
    assert waha_server.posts[0].id == new_id
    messages = waha_server_messages(waha_server)
    assert [message["body"] for message in messages] == ["terzo", "primo"]  # newest first
    assert messages[1]["id"] == f"true_{CHAT}_{new_id}"
    assert len(waha_server_messages(waha_server, limit=1)) == 1


# -- console and the factory ------------------------------------------------------------


def test_console_writes_the_rendered_alert_and_a_blank_line() -> None:
    out = io.StringIO()
    channel = ConsoleChannel(ChannelConfig(name="console", type="console"), out=out)
    posted = asyncio.run(channel.send(ALERT, delivery_id="d-1"))
    assert posted == Posted(remote_id=None)
    assert out.getvalue() == render.console(ALERT).rstrip("\n") + "\n\n"


def test_console_defaults_to_stdout_at_send_time(capsys: pytest.CaptureFixture[str]) -> None:
    channel = ConsoleChannel(ChannelConfig(name="console", type="console"))
    asyncio.run(channel.send(ALERT, delivery_id="d-1"))
    assert render.console(ALERT).rstrip("\n") in capsys.readouterr().out


def test_open_channel_builds_each_available_type() -> None:
    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            waha = open_channel(waha_config("http://127.0.0.1:3000"), http=http)
            assert isinstance(waha, WahaChannel) and waha.name == "whatsapp"
            console = open_channel(ChannelConfig(name="c", type="console"), http=http)
            assert isinstance(console, ConsoleChannel)
            with pytest.raises(NotImplementedError, match="'telegram' is not available"):
                open_channel(ChannelConfig(name="t", type="telegram"), http=http)

    asyncio.run(go())
