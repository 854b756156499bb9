"""The one small protocol every destination implements, and the errors it may raise.

The outbox decides what to do from the error's class alone:

- `TransientError`: try again later (connection error, timeout, 5xx, 429, gateway session
  still starting). `retry_after` is the server's own hint in seconds, when it gave one.
  `GatewayAnswerError`, one kind of it, is a 2xx that is not the platform's success answer
  (a proxy's login page, `{"status": "ok"}`, an empty body): never taken as a post.
- `ChannelDownError`: the whole channel cannot post (bad credentials, unknown session or
  chat); retrying each queued alert would burn through the queue, so the channel waits.
- `MessageRejected`: this one message was refused (too long, bad markup, bad media); the
  others can still go.

An edit (`Channel.edit`) raises the same errors, and one of its own: `EditUnsupported`, when
this post cannot be edited here (the platform has no edit, the post is an image whose
caption the gateway cannot change, it is too old or no longer there), for the caller to send
a "Rettifica" follow-up instead.

A deletion (`Channel.delete`) is always a person's decision, never the bridge's; it raises the
same errors, and `DeleteUnsupported` when this post cannot be deleted here (the platform has
no delete, or refuses it for this post: too old).
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


class GatewayAnswerError(TransientError):
    """The gateway answered 2xx, but not with the platform's own success answer.

    Whatever answered (a proxy's login page, a health check, a misrouted service) did not say
    that the post exists, and it may have forwarded the request all the same: the outbox
    keeps the delivery queued and in flight, so the next attempt asks the channel whether the
    post went out (`recover`) before sending again, and reports the wrong answer to ops.
    The message names the URL that answered.
    """


class ChannelDownError(ChannelError):
    """The channel as a whole cannot post until an operator fixes something."""


class MessageRejected(ChannelError):
    """The gateway refused this particular message."""


class EditUnsupported(ChannelError):
    """This post cannot be edited on this channel: send a "Rettifica" follow-up instead.
    The message says why (no edit on this platform, an image caption, too old, gone)."""


class DeleteUnsupported(ChannelError):
    """This post cannot be deleted on this channel; the message says why (no delete on this
    platform, the post is too old). Nothing was removed."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What a channel sends for one alert, decided before any I/O: `text` exactly as it goes
    out (markup included: `markup` says which, "whatsapp", "telegram-html" or "plain"), and
    `image_url`, the image it posts with `text` as the caption when the channel is set to
    (`images = true`) and the text fits the platform's caption limit, else None: text only;
    `length` and `limit` say how the platform counts it and against what.

    Each channel module has one pure function that makes it (`outgoing(config, alert, plain=)`),
    called by its `send` and by everything that shows what will be sent (`preview`, the
    console's phone preview, through `bridge.channels.outgoing_for`). An image that cannot be
    downloaded at send time, or that the platform refuses, falls back to `text` alone.
    """

    text: str
    markup: str
    #: The length the platform checks, counted its way (Telegram: the visible text; Mastodon:
    #: every URL as 23), against `limit`, the platform's (`bridge.render.platform_for`, with the
    #: channel's `max_length`): the caption's when the text goes as a caption, None when the
    #: destination has no limit of its own (webhook, console).
    length: int
    limit: int | None
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Posted:
    """Proof of a post: the id the platform gave it, when it gave one.

    `verified` is True when the channel read the post back, False when it looked and did
    not find it (yet), None when the platform offers no way to look.
    """

    remote_id: str | None
    verified: bool | None = None


class Channel(Protocol):
    """A destination for alerts. One module per type in `bridge.channels`.

    The outbox drives a delivery through `prepare` -> (state written: in flight) -> `send`.
    After a crash with a delivery in flight it calls `recover` before any resend, which is
    how a channel avoids double posts: by reading back (WAHA) or because the platform
    deduplicates resends that carry the same key (Mastodon, webhook).
    """

    name: str
    #: "exactly-once" when `recover` can tell whether an interrupted send went out (or a
    #: resend is deduplicated by the platform); "at-least-once" when it cannot.
    guarantee: str

    async def prepare(self, delivery_id: str) -> str | None:
        """Return a token to store with the delivery before sending (WAHA: a pre-generated
        message id), or None. Raise a `ChannelError` subclass on failure."""
        ...

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """Publish `alert` once. `delivery_id` and `token` are the same on every retry of one
        delivery. `plain` asks for the plainest form: text only, no markup, no image.

        Return `Posted` only when the platform accepted the message; raise a `ChannelError`
        subclass otherwise.
        """
        ...

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """For a delivery that was in flight when the process died: return `Posted` if it is
        on the channel, None if it is not or if a resend is harmless (the platform
        deduplicates it). Raise `TransientError` when it cannot tell now."""
        ...

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Replace the text of the post `remote_id` (the id a `send` returned) with what this
        channel sends for `alert` (its `outgoing`, `plain` as for `send`), in place, with no
        new post. Repeating an edit is harmless: the post ends with the same text.

        Return `Posted(remote_id, verified)` (verified: the channel read the new text back;
        None when it cannot read posts). Raise `EditUnsupported` when this post cannot be
        edited here, else the errors a send raises, classified the same way.
        """
        ...

    async def delete(self, remote_id: str) -> bool:
        """Remove the post `remote_id` (the id a `send` returned) from the platform. Return
        True when it was there and is now gone, False when the platform no longer had it
        (deleted before, by hand or by an earlier attempt): repeating a deletion is harmless.
        Raise `DeleteUnsupported` when this post cannot be deleted here, else the errors a
        send raises, classified the same way."""
        ...

    async def probe(self) -> str:
        """Ask the platform whether this channel can post, without posting. Return a short
        description ("WORKING", "bot @x is admin of @y"); raise `ChannelDownError` when it
        cannot post, `TransientError` when the platform cannot be reached."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
