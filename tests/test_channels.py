"""Channels against their fakes: what reaches the gateway, and how each answer is classified."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from servers.images import PNG, image_loader

from bridge import render
from bridge.channels import (
    CHANNEL_TYPES,
    BlueskyChannel,
    ChannelDownError,
    ConsoleChannel,
    FacebookChannel,
    GatewayAnswerError,
    MastodonChannel,
    MessageRejected,
    Posted,
    TelegramChannel,
    TransientError,
    WahaChannel,
    WebhookChannel,
    WhapiChannel,
    open_channel,
)
from bridge.config import ChannelConfig, Secret
from bridge.images import ImageLoader
from bridge.item import Alert

if TYPE_CHECKING:
    # Only for annotations: tests/conftest.py loads them as plugins (the fixtures).
    from servers.images import FakeImageHost
    from servers.waha import FakeWaha

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


# Short enough for fast tests, long enough for a few read-backs.
VERIFY_WINDOW = 0.2


def with_channel(config: ChannelConfig, action: Callable[[WahaChannel], Any],
                 transport: httpx.AsyncBaseTransport | None = None, *,
                 images: ImageLoader | None = None, verify_window: float = VERIFY_WINDOW) -> Any:
    """Run `action(channel)` (a coroutine) in a fresh event loop with a fresh client."""

    async def go() -> Any:
        # trust_env=False: a proxy from the environment must not intercept loopback.
        async with httpx.AsyncClient(trust_env=False, transport=transport) as http:
            channel = WahaChannel(config, http=http, images=images, verify_window=verify_window)
            try:
                return await action(channel)
            finally:
                await channel.aclose()
                if images is not None:
                    await images.aclose()

    return asyncio.run(go())


def send(config: ChannelConfig, transport: httpx.AsyncBaseTransport | None = None, *,
         alert: Alert = ALERT, token: str | None = None, plain: bool = False,
         images: ImageLoader | None = None, verify_window: float = VERIFY_WINDOW) -> Posted:
    posted: Posted = with_channel(
        config,
        lambda channel: channel.send(alert, delivery_id="d-1", token=token, plain=plain),
        transport, images=images, verify_window=verify_window,
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
    assert posted == Posted(remote_id=expected, verified=True)


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
    request = waha_server.requests[0]
    assert (request.method, request.path) == ("POST", "/api/sendText")
    # The post is what a follower of the channel reads back.
    [message] = waha_server_messages(waha_server)
    assert message["body"] == render.whatsapp(ALERT)
    assert message["fromMe"] is True


def test_send_without_api_key_sends_no_key_header(waha_server: FakeWaha) -> None:
    send(waha_config(waha_server.url, api_key=None))
    for request in waha_server.requests:  # the send and the read-back
        assert "x-api-key" not in {name.lower() for name in request.headers}


def test_a_201_without_a_message_id_is_a_wrong_answer_not_a_post() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, text="OK")

    with pytest.raises(GatewayAnswerError) as caught:
        send(waha_config("http://waha.test"), httpx.MockTransport(answer))
    assert str(caught.value) == (
        "whatsapp: http://waha.test/api/sendText answered 201 but not with a WAHA message (text/plain: OK): "
        "is url of [channels.whatsapp] the gateway's own address, not a proxy's login page?"
    )
    assert isinstance(caught.value, TransientError)


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


def test_probe_of_a_working_session(waha_server: FakeWaha) -> None:
    assert probe(waha_config(waha_server.url)) == "WORKING"
    assert waha_server.posts == []


@pytest.mark.parametrize(
    ("status", "hint"),
    [("STARTING", "starting"), ("SCAN_QR_CODE", "scan its QR code"), ("FAILED", "/api/sessions/default/restart"),
     ("STOPPED", "/api/sessions/default/start"), ("SOMETHING_NEW", "WAHA dashboard")],
)
def test_probe_of_a_session_not_working_is_channel_down_with_the_fix(
    waha_server: FakeWaha, status: str, hint: str
) -> None:
    waha_server.status = status
    with pytest.raises(ChannelDownError) as caught:
        probe(waha_config(waha_server.url))
    assert status in str(caught.value)
    assert hint in caught.value.hint
    assert waha_server.posts == []


def test_probe_of_something_that_is_not_waha_is_channel_down() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"hello": "world"})

    async def go() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            return await WahaChannel(waha_config("http://waha.test"), http=http).probe()

    with pytest.raises(ChannelDownError, match="did not describe a WAHA session"):
        asyncio.run(go())


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


def test_console_protocol_extras() -> None:
    channel = ConsoleChannel(ChannelConfig(name="console", type="console"), out=io.StringIO())
    assert channel.guarantee == "at-least-once"
    assert asyncio.run(channel.prepare("d-1")) is None
    assert asyncio.run(channel.recover(ALERT, delivery_id="d-1", token=None)) is None
    assert asyncio.run(channel.probe()) == "console"


def test_console_that_cannot_write_is_channel_down() -> None:
    out = io.StringIO()
    out.close()
    channel = ConsoleChannel(ChannelConfig(name="console", type="console"), out=out)
    with pytest.raises(ChannelDownError, match="cannot write to the console"):
        asyncio.run(channel.send(ALERT, delivery_id="d-1"))


def test_console_defaults_to_stdout_at_send_time(capsys: pytest.CaptureFixture[str]) -> None:
    channel = ConsoleChannel(ChannelConfig(name="console", type="console"))
    asyncio.run(channel.send(ALERT, delivery_id="d-1"))
    assert render.console(ALERT).rstrip("\n") in capsys.readouterr().out


def test_open_channel_builds_every_type() -> None:
    token = Secret("env:TOKEN", "123:abc")
    configs = {
        "waha": waha_config("http://127.0.0.1:3000"),
        "whapi": ChannelConfig(name="w", type="whapi", chat_id=CHAT, token=token),
        "telegram": ChannelConfig(name="t", type="telegram", chat_id="@c", token=token),
        "mastodon": ChannelConfig(name="m", type="mastodon", url="https://social.example", token=token),
        "webhook": ChannelConfig(name="h", type="webhook", url="https://hooks.example/in"),
        "console": ChannelConfig(name="c", type="console"),
        "facebook": ChannelConfig(name="f", type="facebook", page_id="1", token=token),
        "bluesky": ChannelConfig(name="b", type="bluesky", handle="comune.bsky.social", app_password=token),
    }
    expected = {"waha": WahaChannel, "whapi": WhapiChannel, "telegram": TelegramChannel,
                "mastodon": MastodonChannel, "webhook": WebhookChannel, "console": ConsoleChannel,
                "facebook": FacebookChannel, "bluesky": BlueskyChannel}
    guarantees = {"waha": "exactly-once", "whapi": "at-least-once", "telegram": "at-least-once",
                  "mastodon": "exactly-once", "webhook": "exactly-once", "console": "at-least-once",
                  "facebook": "exactly-once", "bluesky": "exactly-once"}
    assert set(configs) == set(CHANNEL_TYPES)

    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            for kind, config in configs.items():
                channel = open_channel(config, http=http, images=None)
                assert isinstance(channel, expected[kind])
                assert channel.name == config.name
                assert channel.guarantee == guarantees[kind]
            with pytest.raises(ValueError, match="unknown channel type 'pigeon'"):
                open_channel(ChannelConfig(name="p", type="pigeon"), http=http)
            with pytest.raises(ValueError, match="needs token"):
                open_channel(ChannelConfig(name="t", type="telegram", chat_id="@c"), http=http)

    asyncio.run(go())


# -- WAHA: pre-generated ids, verification by read-back, recovery ---------------------------


def prepare(config: ChannelConfig) -> str | None:
    token: str | None = with_channel(config, lambda channel: channel.prepare("d-1"))
    return token


def recover(config: ChannelConfig, token: str | None, alert: Alert = ALERT) -> Posted | None:
    found: Posted | None = with_channel(
        config, lambda channel: channel.recover(alert, delivery_id="d-1", token=token)
    )
    return found


def test_waha_promises_exactly_once(waha_server: FakeWaha) -> None:
    assert with_channel(waha_config(waha_server.url), lambda channel: _value(channel.guarantee)) == "exactly-once"


async def _value(value: Any) -> Any:
    return value


def test_prepare_returns_a_pre_generated_id_and_send_posts_with_it(waha_server: FakeWaha) -> None:
    config = waha_config(waha_server.url)
    token = prepare(config)
    assert token and token.startswith("3EB0")
    posted = send(config, token=token)
    [post] = waha_server.posts
    assert post.body["id"] == token
    assert post.id == token
    assert posted == Posted(remote_id=token, verified=True)


def test_prepare_on_a_waha_without_the_route_returns_none(waha_server: FakeWaha) -> None:
    waha_server.pregenerated_ids = False
    config = waha_config(waha_server.url)
    assert prepare(config) is None
    posted = send(config, token=None)  # WAHA picks the id
    [post] = waha_server.posts
    assert "id" not in post.body
    assert posted == Posted(remote_id=post.id, verified=True)


def test_prepare_with_a_wrong_key_is_channel_down(waha_server: FakeWaha) -> None:
    waha_server.api_key = "another"
    with pytest.raises(ChannelDownError):
        prepare(waha_config(waha_server.url))


def test_prepare_of_an_unreachable_gateway_is_transient() -> None:
    with pytest.raises(TransientError):
        prepare(waha_config(closed_port_url()))


def test_send_reads_the_chat_back_to_verify(waha_server: FakeWaha) -> None:
    send(waha_config(waha_server.url))
    reads = [r for r in waha_server.requests if r.method == "GET"]
    assert reads, "no read-back"
    assert reads[0].path.startswith(f"/api/default/chats/{CHAT}/messages?")
    assert "limit=20" in reads[0].path and "downloadMedia=false" in reads[0].path


def test_a_post_dropped_once_is_sent_again_with_a_new_id_and_verified(waha_server: FakeWaha) -> None:
    config = waha_config(waha_server.url)
    token = prepare(config)
    waha_server.drop_next(1)
    posted = send(config, token=token)
    first, second = waha_server.posts
    assert (first.visible, second.visible) == (False, True)
    assert first.id == token and second.id != token
    assert second.body["id"] == second.id  # the resend had its own pre-generated id
    assert first.text == second.text == render.whatsapp(ALERT)
    assert posted == Posted(remote_id=second.id, verified=True)


def test_a_post_that_never_shows_up_is_sent_once_more_then_reported(waha_server: FakeWaha) -> None:
    waha_server.drop_next(5)
    posted = send(waha_config(waha_server.url), token=prepare(waha_config(waha_server.url)))
    assert len(waha_server.posts) == 2  # never a third
    assert posted == Posted(remote_id=waha_server.posts[1].id, verified=False)


def test_verification_without_a_window_does_not_read_back(waha_server: FakeWaha) -> None:
    posted = send(waha_config(waha_server.url), verify_window=0)
    assert posted.verified is None
    assert [r.method for r in waha_server.requests] == ["POST"]


def test_a_failing_read_back_leaves_the_post_unverified_and_not_resent(waha_server: FakeWaha) -> None:
    waha_server.fail_reads(1, 500)
    posted = send(waha_config(waha_server.url))
    assert len(waha_server.posts) == 1
    assert posted == Posted(remote_id=waha_server.posts[0].id, verified=None)


def test_a_resend_that_fails_reports_the_first_post_unverified(waha_server: FakeWaha) -> None:
    waha_server.drop_next(1)
    waha_server.pregenerated_ids = True

    async def action(channel: WahaChannel) -> Posted:
        # The gateway goes away between the first send and the resend.
        original = channel._post

        async def post_then_break(*args: Any) -> tuple[str | None, str | None]:
            result = await original(*args)
            waha_server.status = "STARTING"
            return result

        channel._post = post_then_break  # type: ignore[method-assign]
        return await channel.send(ALERT, delivery_id="d-1")

    posted: Posted = with_channel(waha_config(waha_server.url), action)
    [post] = waha_server.posts
    assert posted == Posted(remote_id=post.id, verified=False)


def test_recover_finds_the_post_by_its_pre_generated_id(waha_server: FakeWaha) -> None:
    config = waha_config(waha_server.url)
    token = prepare(config)
    send(config, token=token, verify_window=0)
    send(config, alert=ALERT_OTHER, verify_window=0)  # a newer, different post
    found = recover(config, token)
    assert found == Posted(remote_id=f"true_{CHAT}_{token}", verified=True)
    assert len(waha_server.posts) == 2  # recovery posts nothing


def test_recover_finds_the_post_by_its_text_when_the_id_is_unknown(waha_server: FakeWaha) -> None:
    config = waha_config(waha_server.url)
    send(config, token=None, verify_window=0)  # crashed before the id was stored
    [post] = waha_server.posts
    assert recover(config, None) == Posted(remote_id=post.serialized_id, verified=True)
    assert recover(config, "3EB0FFFFFFFFFFFFFFFF") == Posted(remote_id=post.serialized_id, verified=True)


def test_recover_finds_the_plain_form_too(waha_server: FakeWaha) -> None:
    config = waha_config(waha_server.url)
    send(config, plain=True, verify_window=0)
    assert recover(config, None) is not None


def test_recover_of_a_post_that_never_went_returns_none(waha_server: FakeWaha) -> None:
    config = waha_config(waha_server.url)
    send(config, alert=ALERT_OTHER, verify_window=0)
    assert recover(config, prepare(config)) is None


def test_recover_ignores_a_dropped_post(waha_server: FakeWaha) -> None:
    config = waha_config(waha_server.url)
    token = prepare(config)
    waha_server.drop_next(1)
    send(config, token=token, verify_window=0)
    assert recover(config, token) is None  # not visible: the outbox sends it again


def test_recover_when_the_gateway_is_unreachable_is_transient() -> None:
    with pytest.raises(TransientError):
        recover(waha_config(closed_port_url()), "3EB0")


def test_recover_with_a_wrong_key_is_channel_down(waha_server: FakeWaha) -> None:
    waha_server.api_key = "another"
    with pytest.raises(ChannelDownError):
        recover(waha_config(waha_server.url), "3EB0")


def test_recover_when_the_read_back_fails_is_transient(waha_server: FakeWaha) -> None:
    waha_server.fail_reads(1, 503)
    with pytest.raises(TransientError):
        recover(waha_config(waha_server.url), "3EB0")


# -- WAHA: forms and images ---------------------------------------------------------------

ALERT_OTHER = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Mercato straordinario in piazza",
    summary="Domenica mercato in piazza Garibaldi.",
    link="https://www.comune.example.it/notizie/mercato",
)


def test_plain_sends_the_plain_text(waha_server: FakeWaha) -> None:
    posted = send(waha_config(waha_server.url), plain=True)
    [post] = waha_server.posts
    assert post.text == render.plain(ALERT)
    assert posted.verified is True


def test_a_text_over_max_length_is_cut_keeping_the_link(waha_server: FakeWaha) -> None:
    long_alert = Alert(feed_id="n", feed_name="N", title="Titolo", summary="parola " * 400,
                       link="https://www.comune.example.it/notizie/lungo")
    send(waha_config(waha_server.url, max_length=300), alert=long_alert)
    [post] = waha_server.posts
    assert len(post.text) <= 300
    assert post.text.startswith("*Titolo*\n\nparola")
    assert post.text.endswith("…\n\nhttps://www.comune.example.it/notizie/lungo")


def with_image(url: str | None) -> Alert:
    return Alert(feed_id=ALERT.feed_id, feed_name=ALERT.feed_name, title=ALERT.title, summary=ALERT.summary,
                 link=ALERT.link, published=ALERT.published, image_url=url)


def test_an_image_is_posted_as_an_image_with_the_alert_as_caption(
    waha_server: FakeWaha, image_host: FakeImageHost
) -> None:
    url = image_host.serve("/foto/cantiere.png")
    posted = send(waha_config(waha_server.url, images=True), alert=with_image(url), images=image_loader(),
                  token="3EB0TOKEN")
    [post] = waha_server.posts
    assert post.kind == "image"
    assert post.body["file"] == {"mimetype": "image/png", "filename": "cantiere.png",
                                 "data": base64.b64encode(PNG).decode()}
    assert post.body["caption"] == render.whatsapp(ALERT)
    assert "url" not in post.body["file"]  # WAHA never fetches a feed's URL itself
    assert posted.verified is True
    # The caption is what recovery looks for.
    assert recover(waha_config(waha_server.url), "3EB0TOKEN", with_image(url)) is not None


@pytest.mark.parametrize(
    "problem", ["http", "too big", "not an image", "missing"],
)
def test_image_problems_fall_back_to_text(waha_server: FakeWaha, image_host: FakeImageHost, problem: str) -> None:
    if problem == "http":
        url = f"http://127.0.0.1:{image_host.port}/a.png"
    elif problem == "too big":
        url = image_host.serve("/big.png", b"\x89PNG" + b"\0" * 2000)
    elif problem == "not an image":
        url = image_host.serve("/page.html", b"<html></html>", "text/html")
    else:
        url = image_host.url + "/missing.png"
    posted = send(waha_config(waha_server.url, images=True), alert=with_image(url),
                  images=image_loader(max_bytes=1000))
    [post] = waha_server.posts
    assert post.kind == "text"
    assert post.text == render.whatsapp(ALERT)
    assert posted.verified is True


def test_an_image_waha_refuses_falls_back_to_text(waha_server: FakeWaha, image_host: FakeImageHost) -> None:
    waha_server.fail_next(1, 400)
    url = image_host.serve("/a.png")
    send(waha_config(waha_server.url, images=True), alert=with_image(url), images=image_loader())
    [post] = waha_server.posts
    assert post.kind == "text"
    assert [r.path for r in waha_server.requests if r.method == "POST"] == ["/api/sendImage", "/api/sendText"]


def test_images_off_plain_or_without_a_loader_post_text(waha_server: FakeWaha, image_host: FakeImageHost) -> None:
    url = image_host.serve("/a.png")
    send(waha_config(waha_server.url, images=False), alert=with_image(url), images=image_loader())
    send(waha_config(waha_server.url, images=True), alert=with_image(url), images=image_loader(), plain=True)
    send(waha_config(waha_server.url, images=True), alert=with_image(url), images=None)
    assert [post.kind for post in waha_server.posts] == ["text", "text", "text"]
    assert image_host.requests == []


def test_an_alert_too_long_for_a_caption_posts_text(waha_server: FakeWaha, image_host: FakeImageHost) -> None:
    url = image_host.serve("/a.png")
    long_alert = Alert(feed_id="n", feed_name="N", title="Titolo", summary="parola " * 200,
                       link="https://www.comune.example.it/x", image_url=url)
    send(waha_config(waha_server.url, images=True), alert=long_alert, images=image_loader())
    [post] = waha_server.posts
    assert post.kind == "text"
    assert image_host.requests == []


def test_the_channel_template_lays_out_what_waha_posts(waha_server: FakeWaha) -> None:
    config = waha_config(waha_server.url, template="{emoji} {title} ({date})\n\n{link}")
    send(config, alert=replace(ALERT, urgent=True))
    assert waha_server.posts[0].text == (
        "🚨 *Chiusura temporanea di via Roma* (1 marzo 2026)\n\nhttps://www.comune.example.it/notizie/chiusura-via-roma"
    )
