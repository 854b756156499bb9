"""The one small protocol every destination implements, and the errors it may raise.

The outbox decides what to do from the error's class alone:

- `TransientError`: try again later (connection error, timeout, 5xx, 429, gateway session
  still starting). `retry_after` is the server's own hint in seconds, when it gave one.
- `ChannelDownError`: the whole channel cannot post (bad credentials, unknown session or
  chat); retrying each queued alert would burn through the queue, so the channel waits.
- `MessageRejected`: this one message was refused (too long, bad markup, bad media); the
  others can still go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bridge.item import Alert


class ChannelError(Exception):
    """A send did not succeed. `hint` tells an operator what to check."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class TransientError(ChannelError):
    """Worth retrying later, at the earliest after `retry_after` seconds if given."""

    def __init__(self, message: str, *, retry_after: float | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class ChannelDownError(ChannelError):
    """The channel as a whole cannot post until an operator fixes something."""


class MessageRejected(ChannelError):
    """The gateway refused this particular message."""


@dataclass(frozen=True, slots=True)
class Posted:
    """Proof of a post: the id the platform gave it, when it gave one."""

    remote_id: str | None


class Channel(Protocol):
    """A destination for alerts. One module per type in `bridge.channels`."""

    name: str

    async def send(self, alert: Alert, *, delivery_id: str) -> Posted:
        """Publish `alert` once. `delivery_id` is stable across retries of the same delivery.

        Return `Posted` only when the platform accepted the message; raise a
        `ChannelError` subclass otherwise.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
