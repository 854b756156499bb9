"""Destinations for alerts: one module per channel type behind the `Channel` protocol.

`open_channel` builds the channel a `[channels.NAME]` table describes; `outgoing_for` says,
without any I/O, exactly what it sends for an alert (each module's own `outgoing`, which its
`send` calls too): `preview` and the console show that, never a text of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from bridge.channels import bluesky, console, facebook, mastodon, telegram, waha, webhook, whapi
from bridge.channels.base import (
    Channel,
    ChannelDownError,
    ChannelError,
    DeleteUnsupported,
    EditUnsupported,
    GatewayAnswerError,
    MessageRejected,
    Outgoing,
    Posted,
    TransientError,
)
from bridge.channels.bluesky import BlueskyChannel
from bridge.channels.console import ConsoleChannel
from bridge.channels.facebook import FacebookChannel
from bridge.channels.mastodon import MastodonChannel
from bridge.channels.telegram import TelegramChannel
from bridge.channels.waha import WahaChannel
from bridge.channels.webhook import WebhookChannel
from bridge.channels.whapi import WhapiChannel
from bridge.config import ChannelConfig
from bridge.images import ImageLoader
from bridge.item import Alert

if TYPE_CHECKING:
    from bridge.cards import CardStyle

__all__ = [
    "CHANNEL_TYPES",
    "BlueskyChannel",
    "Channel",
    "ChannelDownError",
    "ChannelError",
    "ConsoleChannel",
    "DeleteUnsupported",
    "EditUnsupported",
    "FacebookChannel",
    "GatewayAnswerError",
    "MastodonChannel",
    "MessageRejected",
    "Outgoing",
    "Posted",
    "TelegramChannel",
    "TransientError",
    "WahaChannel",
    "WebhookChannel",
    "WhapiChannel",
    "open_channel",
    "outgoing_for",
]

#: Every type `open_channel` builds.
CHANNEL_TYPES = ("waha", "whapi", "telegram", "mastodon", "webhook", "console", "facebook", "bluesky")

_OUTGOING: dict[str, Callable[..., Outgoing]] = {
    "waha": waha.outgoing,
    "whapi": whapi.outgoing,
    "telegram": telegram.outgoing,
    "mastodon": mastodon.outgoing,
    "webhook": webhook.outgoing,
    "console": console.outgoing,
    "facebook": facebook.outgoing,
    "bluesky": bluesky.outgoing,
}


def outgoing_for(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """Exactly what the channel `config` describes sends for `alert` (`plain`: its plainest
    form, as after a refusal): its channel module's own `outgoing`, the function its `send`
    calls. Pure. Raise `ValueError` for an unknown channel type."""
    try:
        make = _OUTGOING[config.type]
    except KeyError:
        raise ValueError(f"channel {config.name!r}: unknown channel type {config.type!r}") from None
    return make(config, alert, plain=plain)


def open_channel(
    config: ChannelConfig, *, http: httpx.AsyncClient, images: ImageLoader | None = None,
    cards: CardStyle | None = None,
) -> Channel:
    """Return the channel for `config.type`, using the caller's shared `http` client and,
    for channels with `images = true`, the shared image loader `images` (None: text only);
    the channels that post image cards draw them in the style `cards` (None: the plain style).

    Raise `ValueError` for an unknown type or a config missing what its type needs.
    """
    kind = config.type
    if kind == "waha":
        return WahaChannel(config, http=http, images=images)
    if kind == "whapi":
        return WhapiChannel(config, http=http, images=images)
    if kind == "telegram":
        return TelegramChannel(config, http=http, images=images)
    if kind == "mastodon":
        return MastodonChannel(config, http=http, images=images)
    if kind == "webhook":
        return WebhookChannel(config, http=http)
    if kind == "console":
        return ConsoleChannel(config)
    if kind == "facebook":
        return FacebookChannel(config, http=http, style=cards)
    if kind == "bluesky":
        return BlueskyChannel(config, http=http, images=images, style=cards)
    raise ValueError(f"channel {config.name!r}: unknown channel type {kind!r}")
