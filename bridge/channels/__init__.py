"""Destinations for alerts: one module per channel type behind the `Channel` protocol.

`open_channel` builds the channel a `[channels.NAME]` table describes.
"""

from __future__ import annotations

import httpx

from bridge.channels.base import (
    Channel,
    ChannelDownError,
    ChannelError,
    GatewayAnswerError,
    MessageRejected,
    Posted,
    TransientError,
)
from bridge.channels.console import ConsoleChannel
from bridge.channels.mastodon import MastodonChannel
from bridge.channels.telegram import TelegramChannel
from bridge.channels.waha import WahaChannel
from bridge.channels.webhook import WebhookChannel
from bridge.channels.whapi import WhapiChannel
from bridge.config import ChannelConfig
from bridge.images import ImageLoader

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelDownError",
    "ChannelError",
    "ConsoleChannel",
    "GatewayAnswerError",
    "MastodonChannel",
    "MessageRejected",
    "Posted",
    "TelegramChannel",
    "TransientError",
    "WahaChannel",
    "WebhookChannel",
    "WhapiChannel",
    "open_channel",
]

#: Every type `open_channel` builds.
CHANNEL_TYPES = ("waha", "whapi", "telegram", "mastodon", "webhook", "console")


def open_channel(
    config: ChannelConfig, *, http: httpx.AsyncClient, images: ImageLoader | None = None
) -> Channel:
    """Return the channel for `config.type`, using the caller's shared `http` client and,
    for channels with `images = true`, the shared image loader `images` (None: text only).

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
    raise ValueError(f"channel {config.name!r}: unknown channel type {kind!r}")
