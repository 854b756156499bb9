"""One text per channel, from one function: what each channel's fake server receives for an
alert is exactly what `preview` prints and what the console's phone preview shows for it
(`bridge.channels.outgoing_for`, the function the channel's `send` calls), also when the
alert must be fitted to the channel's limit, also in the plainest form, also as a caption."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from servers.images import image_loader
from test_channels import waha_config
from test_channels_mastodon import config as mastodon_config
from test_channels_telegram import config as telegram_config
from test_channels_webhook import config as webhook_config
from test_channels_whapi import config as whapi_config

from bridge.channels import ConsoleChannel, open_channel, outgoing_for
from bridge.config import ChannelConfig
from bridge.console.markup import plain_html, telegram_html, whatsapp_html
from bridge.console.views import phone_preview
from bridge.item import Alert
from bridge.preview import render_for

if TYPE_CHECKING:
    from servers.images import FakeImageHost
    from servers.mastodon import FakeMastodon
    from servers.telegram import FakeTelegram
    from servers.waha import FakeWaha
    from servers.webhook import FakeWebhook
    from servers.whapi import FakeWhapi

# Longer than every limit below: each channel fits it its own way. Markup characters and HTML
# in the text, which each platform must escape or neutralise its own way.
LONG = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Lavori *urgenti* in via <Roma> & via_Verdi",
    summary=" ".join(f"Frase numero {n} sulla chiusura di via Roma per i lavori alla rete idrica." for n in range(12)),
    link="https://www.comune.example.it/notizie/chiusura-via-roma?id=12&lang=it",
    published=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
)
SHORT = replace(LONG, summary="Dal 3 al 5 marzo via Roma è chiusa al traffico.")

MARKUP = {"whatsapp": whatsapp_html, "telegram-html": telegram_html, "plain": plain_html}


def send(cfg: ChannelConfig, alert: Alert, *, plain: bool = False, image_host: FakeImageHost | None = None) -> None:
    async def go() -> None:
        images = image_loader() if image_host is not None else None
        async with httpx.AsyncClient(trust_env=False) as http:
            try:
                channel = open_channel(cfg, http=http, images=images)
                await channel.send(alert, delivery_id="d-1", plain=plain)
            finally:
                if images is not None:
                    await images.aclose()

    asyncio.run(go())


def assert_shown_as_sent(cfg: ChannelConfig, alert: Alert, received: str, *, plain: bool = False) -> None:
    """`received` (what the fake got) is what `preview` prints and the phone preview shows."""
    message = outgoing_for(cfg, alert, plain=plain)
    assert received == message.text
    if not plain:
        assert render_for(cfg, alert) == received
    preview = phone_preview(cfg, alert, plain=plain)
    assert preview.html == MARKUP[message.markup](received)
    assert (preview.length, preview.limit) == (message.length, message.limit)


CASES = [
    pytest.param(False, None, id="fitted"),
    pytest.param(True, None, id="plain"),
    pytest.param(False, 300, id="max_length"),
]


@pytest.mark.parametrize(("plain", "max_length"), CASES)
def test_waha_sends_what_is_shown(waha_server: FakeWaha, plain: bool, max_length: int | None) -> None:
    cfg = waha_config(waha_server.url, max_length=max_length)
    send(cfg, LONG, plain=plain)
    assert_shown_as_sent(cfg, LONG, waha_server.posts[-1].text, plain=plain)


@pytest.mark.parametrize(("plain", "max_length"), CASES)
def test_whapi_sends_what_is_shown(whapi_server: FakeWhapi, plain: bool, max_length: int | None) -> None:
    cfg = whapi_config(whapi_server.url, max_length=max_length)
    send(cfg, LONG, plain=plain)
    assert_shown_as_sent(cfg, LONG, whapi_server.messages[-1].text, plain=plain)


@pytest.mark.parametrize(("plain", "max_length"), CASES)
def test_telegram_sends_what_is_shown(telegram_server: FakeTelegram, plain: bool, max_length: int | None) -> None:
    cfg = telegram_config(telegram_server.url, max_length=max_length)
    send(cfg, LONG, plain=plain)
    [message] = telegram_server.messages
    assert message.parse_mode == (None if plain else "HTML")
    assert_shown_as_sent(cfg, LONG, message.text, plain=plain)


@pytest.mark.parametrize(("plain", "max_length"), CASES)
def test_mastodon_sends_what_is_shown(mastodon_server: FakeMastodon, plain: bool, max_length: int | None) -> None:
    cfg = mastodon_config(mastodon_server.url, max_length=max_length)
    send(cfg, LONG, plain=plain)
    assert_shown_as_sent(cfg, LONG, mastodon_server.statuses[-1].text, plain=plain)


def test_webhook_sends_what_is_shown(webhook_server: FakeWebhook) -> None:
    cfg = webhook_config(webhook_server.url, template="{title} · {link}")
    send(cfg, LONG)
    [request] = webhook_server.deliveries
    assert_shown_as_sent(cfg, LONG, json.loads(request.body)["text"])


def test_console_prints_what_is_shown() -> None:
    cfg = ChannelConfig(name="console", type="console", timeout=timedelta(seconds=5))
    out = io.StringIO()
    asyncio.run(ConsoleChannel(cfg, out=out).send(LONG, delivery_id="d-1"))
    assert_shown_as_sent(cfg, LONG, out.getvalue().rstrip("\n"))


def with_image(alert: Alert, image_host: FakeImageHost) -> Alert:
    return replace(alert, image_url=image_host.serve("/foto.png"))


@pytest.mark.parametrize("alert", [SHORT, LONG], ids=["caption", "over-caption"])
def test_waha_image_choice_is_the_one_shown(waha_server: FakeWaha, image_host: FakeImageHost, alert: Alert) -> None:
    cfg = waha_config(waha_server.url, images=True)
    alert = with_image(alert, image_host)
    send(cfg, alert, image_host=image_host)
    [post] = waha_server.posts
    message = outgoing_for(cfg, alert)
    assert post.kind == ("image" if message.image_url else "text")
    assert (message.image_url is not None) == (alert is not LONG and len(message.text) <= 1024)
    assert_shown_as_sent(cfg, alert, post.text)
    assert phone_preview(cfg, alert).image_url == message.image_url
    assert phone_preview(cfg, alert).limit == (1024 if message.image_url else 4096)


@pytest.mark.parametrize("summary", [SHORT.summary, LONG.summary * 2], ids=["caption", "over-caption"])
def test_telegram_image_choice_is_the_one_shown(telegram_server: FakeTelegram, image_host: FakeImageHost,
                                                summary: str) -> None:
    cfg = telegram_config(telegram_server.url, images=True)
    alert = with_image(replace(LONG, summary=summary), image_host)
    send(cfg, alert, image_host=image_host)
    [message] = telegram_server.messages
    shown = outgoing_for(cfg, alert)
    assert message.method == ("sendPhoto" if shown.image_url else "sendMessage")
    assert_shown_as_sent(cfg, alert, message.text)


def test_mastodon_image_choice_is_the_one_shown(mastodon_server: FakeMastodon, image_host: FakeImageHost) -> None:
    cfg = mastodon_config(mastodon_server.url, images=True)
    alert = with_image(SHORT, image_host)
    send(cfg, alert, image_host=image_host)
    [status] = mastodon_server.statuses
    assert outgoing_for(cfg, alert).image_url == alert.image_url and len(status.media_ids) == 1
    assert_shown_as_sent(cfg, alert, status.text)


def test_every_channel_type_has_its_function() -> None:
    from bridge.channels import CHANNEL_TYPES

    base: dict[str, Any] = {"timeout": timedelta(seconds=5), "url": "http://127.0.0.1:9", "chat_id": "x"}
    for kind in CHANNEL_TYPES:
        message = outgoing_for(ChannelConfig(name=kind, type=kind, **base), SHORT)
        assert "chiusura-via-roma" in message.text
    with pytest.raises(ValueError, match="unknown channel type"):
        outgoing_for(ChannelConfig(name="x", type="fax", **base), SHORT)
