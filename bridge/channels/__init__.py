"""Destinations for alerts: one module per channel type behind the `Channel` protocol.

`open_channel` builds the channel a `[channels.NAME]` table describes.
"""

from __future__ import annotations

import httpx

from bridge.channels.base import (
    Channel,
    ChannelDownError,
    ChannelError,
    MessageRejected,
    Posted,
    TransientError,
)
from bridge.channels.console import ConsoleChannel
from bridge.channels.waha import WahaChannel
from bridge.config import ChannelConfig

__all__ = [
    "Channel",
    "ChannelDownError",
    "ChannelError",
    "ConsoleChannel",
    "MessageRejected",
    "Posted",
    "TransientError",
    "WahaChannel",
    "open_channel",
]

# Types the configuration format knows but this version does not build yet; the config
# loader rejects them up front, so reaching them here is a programming error.
_NOT_YET_AVAILABLE = ("whapi", "telegram", "mastodon", "webhook")


def open_channel(config: ChannelConfig, *, http: httpx.AsyncClient) -> Channel:
    """Return the channel for `config.type`, using the caller's shared `http` client.

    Raise `NotImplementedError` for a known type not available in this version, and
    `ValueError` for an unknown type.
    """
    kind = config.type
    if kind == "waha":
        return WahaChannel(config, http=http)
    if kind == "console":
        return ConsoleChannel(config)
    if kind in _NOT_YET_AVAILABLE:
        raise NotImplementedError(f"channel type {kind!r} is not available in this version")
    raise ValueError(f"channel {config.name!r}: unknown channel type {kind!r}")
