"""A WhatsApp Channel through WAHA, the self-hosted WhatsApp HTTP API.

Every WhatsApp route is unofficial (Meta offers no Channels API); WAHA drives a logged-in
WhatsApp session and exposes it over HTTP. This module speaks to it and turns each answer
into `Posted` or one of the `bridge.channels.base` errors, so the outbox can decide from the
error's class alone:

- connection errors, timeouts, 408, 429, 5xx, and 422 "session status is not WORKING"
  -> `TransientError` (with `retry_after` from the `Retry-After` header when given);
- 401 / 403 (api key) and 404 (unknown session or chat) -> `ChannelDownError`;
- 400 and the other 4xx -> `MessageRejected`;
- a 2xx that is not WAHA's answer (no message id in any engine's shape, a read-back that is
  not a list of messages: a proxy's login page, `{"status": "ok"}`, an empty body)
  -> `GatewayAnswerError`, a `TransientError`: never taken as a post.

Exactly once, by reconciliation: `prepare` asks WAHA for a message id
(`GET /api/{session}/new-message-id`) that the outbox stores before sending, and `send` posts
with it as `"id"`; after a crash, `recover` reads the chat back and looks for that id, else for
the exact text. A 201 does not prove the post appeared (known WAHA bugs), so `send` reads the
chat back within `verify_window` seconds; a post that never shows up is sent once more, and
if the second one does not show up either, `send` returns `Posted(verified=False)` for the
outbox to report. It never loops.

`edit` changes a text post in place: it reads the message first
(`GET /api/{session}/chats/{chatId}/messages/{messageId}`): an image post is refused with
`EditUnsupported` (WAHA edits a message's text, not an image's caption), as is a message the
chat no longer has; then `PUT` the same path with `{"text", "linkPreview"}` and reads it back
to tell whether the new text shows (`Posted.verified`). The answer to the PUT is classified as
a send's (an HTML page instead of WAHA's answer: `GatewayAnswerError`).

`delete` removes a post (`DELETE /api/{session}/chats/{chatId}/messages/{messageId}`, the
serialized id); a message the chat no longer has (404 other than an unknown session's) was
deleted before: False. The rest is classified as a send.

`engagement` reads the views and reactions of the channel's newest posts
(`GET /api/{session}/channels/{id}/messages/preview`); it posts nothing and its errors are
classified as a send's, for its caller to report without acting on the channel.

Error messages are one line for a human and never contain the api key: the key travels only
in the `X-Api-Key` header, and any text the server echoes back is scrubbed of it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import quote

import httpx
import structlog

from bridge import render
from bridge.channels.base import (
    ChannelDownError,
    ChannelError,
    EditUnsupported,
    MessageRejected,
    Outgoing,
    Posted,
    TransientError,
)
from bridge.channels.endpoint import Endpoint, json_or_none, retry_after, short_text, unexpected_answer
from bridge.config import ChannelConfig
from bridge.images import ImageLoader
from bridge.item import Alert
from bridge.template import channel_template

log = structlog.get_logger("bridge.channels.waha")

# WhatsApp's own limits, in characters.
# How many of the chat's newest messages a read-back looks at: after a send (the post is among
# the newest unless the channel is very busy) and after a crash (more may have followed).
VERIFY_READBACK = 20
RECOVER_READBACK = 50
# How many of the channel's newest posts one reading of views and reactions covers: the count
# WAHA's documentation recommends for the channel preview, one request per channel.
ENGAGEMENT_READ = 100

# What an operator can do about each session status WAHA reports instead of WORKING.
_STATUS_HINTS = {
    "STARTING": "the WAHA session is starting; sends resume by themselves once it is WORKING",
    "SCAN_QR_CODE": "the WAHA session is logged out: scan its QR code in the WAHA dashboard",
    "PASSKEY_REQUIRED": "the WAHA session needs a passkey: complete it in the WAHA dashboard",
    "PASSKEY_CONFIRMATION_REQUIRED": "confirm the passkey of the WAHA session in its dashboard",
    "STOPPED": "the WAHA session is stopped: start it (POST /api/sessions/{session}/start)",
    "FAILED": "the WAHA session failed: restart it (POST /api/sessions/{session}/restart)",
}


@dataclass(frozen=True, slots=True)
class PostCounts:
    """How a post on a WhatsApp Channel was received: its views and its reactions (emoji ->
    how many), as WAHA's channel preview counts them."""

    views: int
    reactions: tuple[tuple[str, int], ...] = ()

    @property
    def reactions_total(self) -> int:
        return sum(count for _, count in self.reactions)


def outgoing(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """What a WhatsApp channel (WAHA, and Whapi, which posts the same text) sends for `alert`;
    pure. The text is `render.whatsapp` (`render.plain` when `plain`) laid out by the channel's
    template and fitted to WhatsApp's 4096 characters or the channel's `max_length`
    (`render.platform_for`, shared with the summary's own fitting, so nothing is cut twice);
    with `images = true`, not `plain`, an alert with an image whose text fits a 1024-character
    caption goes as that image's caption."""
    platform = render.platform_for(config.type, config.max_length)
    template = channel_template(config.template, config.timezone)
    form = render.plain if plain else render.whatsapp
    text = form(render.fit(alert, platform.text_limit, lambda a: len(form(a, template))), template)
    caption_limit = platform.caption_limit or platform.text_limit
    image = alert.image_url if config.images and not plain and alert.image_url and len(text) <= caption_limit \
        else None
    return Outgoing(text, "plain" if plain else "whatsapp", len(text),
                    caption_limit if image else platform.text_limit, image)


class WahaChannel:
    """Posts alerts to one WhatsApp chat (a Channel `...@newsletter`) via WAHA.

    Given a `ChannelConfig` of type "waha" (with `url` and `chat_id`, as the config loader
    guarantees) and an `httpx.AsyncClient` owned by the caller. With `images` and
    `config.images`, an alert with an `image_url` is posted as an image with the alert as
    caption. `verify_window` is how long, in seconds, `send` looks for its post in the chat
    (0: it does not look, and `Posted.verified` is None). Raise `ValueError` at construction
    if `url` or `chat_id` is missing.
    """

    guarantee = "exactly-once"

    def __init__(
        self,
        config: ChannelConfig,
        *,
        http: httpx.AsyncClient,
        images: ImageLoader | None = None,
        verify_window: float = 5.0,
    ) -> None:
        if not config.url:
            raise ValueError(f"channel {config.name!r} (type waha) needs url")
        if not config.chat_id:
            raise ValueError(f"channel {config.name!r} (type waha) needs chat_id")
        self.name = config.name
        self._config = config
        self._chat_id = config.chat_id
        self._session = config.session
        self._images = images if config.images else None
        self._verify_window = verify_window
        api_key = config.api_key.value if config.api_key else ""
        self._endpoint = Endpoint(
            channel=config.name,
            platform="WAHA",
            http=http,
            base_url=config.url,
            timeout=config.timeout.total_seconds(),
            headers={"X-Api-Key": api_key} if api_key else {},
            secrets=[api_key],
        )
        session = quote(self._session, safe="")
        self._messages_path = f"/api/{session}/chats/{quote(self._chat_id, safe='@')}/messages"

    # -- the protocol ------------------------------------------------------------------------

    async def prepare(self, delivery_id: str) -> str | None:
        """Return a message id pre-generated by WAHA, to store before sending, or None when
        this WAHA cannot pre-generate ids (an older version without the route).

        Raise `TransientError`, `ChannelDownError` as `send` does, `GatewayAnswerError` for a
        2xx without an id.
        """
        path = f"/api/{quote(self._session, safe='')}/new-message-id"
        response = await self._endpoint.call("GET", path, "asking for a message id")
        body = json_or_none(response)
        if response.status_code == 404 and _route_missing(body):
            log.warning("WAHA cannot pre-generate message ids; recovery will match by text",
                        channel=self.name)
            return None
        if not response.is_success:
            raise self._error_for(response, "asking for a message id")
        ident = body.get("id") if isinstance(body, dict) else None
        if not isinstance(ident, str) or not ident:
            raise unexpected_answer(self._endpoint, response, path, "a WAHA message id")
        return ident

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """Post `alert` and confirm it by reading the chat back.

        The text is `render.whatsapp(alert)` (`render.plain` when `plain`), cut to fit 4096
        characters (or the channel's `max_length`), with a link preview; `token` (from
        `prepare`) is sent as the message id. An image, when enabled and downloadable, goes
        with `sendImage` and the text as caption (when it fits 1024 characters); any image
        problem (download refused, WAHA rejecting it) falls back to the text post.

        Return `Posted(remote_id, verified)`: `remote_id` is the id WAHA gave (NOWEB `key.id`,
        WEBJS `id._serialized`, or a plain `id`; an answer with none of them is not a post);
        `verified` is True when the read-back shows the post, False when neither it nor the
        one resend became visible, None when the read-back could not be done. Raise
        `TransientError` (`GatewayAnswerError` for a 2xx that is not WAHA's), `ChannelDownError`
        or `MessageRejected` as the module docstring lists; a timeout or a wrong answer may
        hide a post that went, so the outbox must `recover` before resending.
        """
        message = outgoing(self._config, alert, plain=plain)
        text = message.text
        if message.image_url is None and not plain and self._images is not None and alert.image_url:
            log.info("alert too long for a caption; posting text only", channel=self.name, length=len(text))
        remote_id, sent_id = await self._post(message, token)
        if self._verify_window <= 0:
            return Posted(remote_id)
        seen = await self._verify(text, {remote_id, sent_id})
        if seen is not False:
            return Posted(remote_id, verified=seen)
        log.warning("WAHA accepted the post but it is not in the chat; sending it once more",
                    channel=self.name, delivery=delivery_id, remote_id=remote_id)
        try:
            second_token = await self.prepare(delivery_id)
            second_id, second_sent = await self._post(message, second_token)
        except ChannelError as exc:
            # The first post was accepted: report it unverified rather than send a third.
            log.warning("resend of an invisible post failed", channel=self.name,
                        delivery=delivery_id, error=str(exc))
            return Posted(remote_id, verified=False)
        seen = await self._verify(text, {remote_id, sent_id, second_id, second_sent})
        return Posted(second_id, verified=seen)

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """Return `Posted(id, verified=True)` when the chat's recent messages hold the post
        of a delivery that was in flight during a crash (by `token`, the pre-generated id,
        else by the exact text of any form `send` could have posted), None when they do not.

        Raise `TransientError` when WAHA cannot be reached, `ChannelDownError` when it refuses.
        """
        messages = await self._readback(RECOVER_READBACK, "reading the chat back")
        texts = {outgoing(self._config, alert, plain=plain).text for plain in (False, True)}
        found, ident = _find(messages, {token}, texts)
        return Posted(ident, verified=True) if found else None

    async def probe(self) -> str:
        """Return "WORKING" when the configured session can post. Posts nothing.

        Raise `ChannelDownError` with what to do when the session is in any other state
        (STARTING, SCAN_QR_CODE, FAILED...), when the key is refused or the session unknown,
        or when the answer is not a WAHA session description (`url` points at something
        else); `TransientError` when WAHA cannot be reached.
        """
        path = f"/api/sessions/{quote(self._session, safe='')}"
        response = await self._endpoint.call("GET", path, "asking the session status")
        if not response.is_success:
            raise self._error_for(response, "asking the session status")
        body = json_or_none(response)
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str) or not status:
            raise ChannelDownError(
                f"{self.name}: {self._endpoint.display_url}{path} did not describe a WAHA session",
                hint=f"check url of [channels.{self.name}]: it must be WAHA's base address",
            )
        if status != "WORKING":
            hint = _STATUS_HINTS.get(status, "check the session in the WAHA dashboard")
            raise ChannelDownError(
                f"{self.name}: WAHA session {self._session!r} is {status}, not WORKING",
                hint=hint.replace("{session}", self._session),
            )
        return status

    async def engagement(self, limit: int = ENGAGEMENT_READ) -> dict[str, PostCounts]:
        """Return the views and reactions of the channel's newest `limit` posts, by bare
        message id (the part of WAHA's serialized id after its last `_`, which is the id a send
        answered with, whatever the engine). Posts nothing, downloads no media.

        Raise `TransientError` (`GatewayAnswerError` for a 2xx that is not a list of channel
        messages), `ChannelDownError` or `MessageRejected` as `send` does; the caller only
        reports them: a reading that failed says nothing about whether the channel can post.
        """
        path = (f"/api/{quote(self._session, safe='')}/channels/{quote(self._chat_id, safe='@')}"
                "/messages/preview")
        doing = "reading views and reactions"
        response = await self._endpoint.call("GET", path, doing, params={"downloadMedia": "false", "limit": limit})
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        if not isinstance(body, list):
            raise unexpected_answer(self._endpoint, response, path, "a list of WAHA channel messages")
        counts: dict[str, PostCounts] = {}
        for entry in body:
            read = _post_counts(entry)
            if read is not None:
                counts[read[0]] = read[1]
        if body and not counts:
            raise unexpected_answer(self._endpoint, response, path, "a list of WAHA channel messages")
        return counts

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Replace the text of the channel post `remote_id` (as `send` returned it: bare or
        serialized) with `outgoing(alert)`'s text; see the module docstring.

        Return `Posted(remote_id, verified)`: verified True when reading the message back
        shows the new text, False when it still shows another. Raise `EditUnsupported` for an
        image post or a message the chat does not have, else the errors of `send`.
        """
        path = f"{self._messages_path}/{quote(self._serialized(remote_id), safe='@')}"
        current = await self._message(path, remote_id, "reading the post to edit")
        if current.get("hasMedia") is True:
            raise EditUnsupported(
                f"{self.name}: post {remote_id} is an image; WAHA edits the text of text posts only",
                hint='a correction of an image post goes out as a "Rettifica" follow-up',
            )
        text = outgoing(self._config, alert, plain=plain).text
        doing = "editing a post"
        response = await self._endpoint.call("PUT", path, doing, json_body={"text": text, "linkPreview": True})
        if response.status_code == 404 and not _unknown_session_answer(json_or_none(response)):
            raise self._gone(remote_id)
        if not response.is_success:
            raise self._error_for(response, doing)
        if response.content.strip() and json_or_none(response) is None:
            raise unexpected_answer(self._endpoint, response, path, "WAHA's answer to an edit")
        edited = await self._message(path, remote_id, "checking the edit")
        return Posted(remote_id, verified=edited.get("body") == text)

    async def delete(self, remote_id: str) -> bool:
        """Delete the channel post `remote_id` (bare or serialized); see the module docstring.
        Return True when WAHA deleted it, False when the chat no longer has it."""
        path = f"{self._messages_path}/{quote(self._serialized(remote_id), safe='@')}"
        doing = "deleting a post"
        response = await self._endpoint.call("DELETE", path, doing)
        if response.status_code == 404 and not _unknown_session_answer(json_or_none(response)):
            return False
        if not response.is_success:
            raise self._error_for(response, doing)
        if response.content.strip() and json_or_none(response) is None:
            raise unexpected_answer(self._endpoint, response, path, "WAHA's answer to a deletion")
        return True

    async def aclose(self) -> None:
        """Do nothing: the http client and the image loader are shared and closed by their owner."""

    # -- sending -----------------------------------------------------------------------------

    async def _post(self, message: Outgoing, token: str | None) -> tuple[str, str | None]:
        """Send `message` once, as an image when it has one and it downloads; return (WAHA's
        id, the id we asked for)."""
        text = message.text
        if message.image_url and self._images is not None:
            image = await self._images.load(message.image_url)
            if image is not None:
                # WAHA's MessageImageRequest has no `id` field (only sendText takes a
                # pre-generated id): an image post is recovered by its caption.
                payload: dict[str, Any] = {
                    "session": self._session,
                    "chatId": self._chat_id,
                    "file": {
                        "mimetype": image.mimetype,
                        "filename": image.filename,
                        "data": base64.b64encode(image.data).decode("ascii"),
                    },
                    "caption": text,
                }
                try:
                    response = await self._request("POST", "/api/sendImage", "sending an image",
                                                   payload)
                    return self._message_id(response, "/api/sendImage"), None
                except MessageRejected as exc:
                    log.warning("WAHA refused the image; posting text only", channel=self.name,
                                error=str(exc))
        payload = {"session": self._session, "chatId": self._chat_id, "text": text, "linkPreview": True}
        if token:
            payload["id"] = token
        response = await self._request("POST", "/api/sendText", "sending", payload)
        return self._message_id(response, "/api/sendText"), token

    async def _request(self, method: str, path: str, doing: str, payload: dict[str, Any]) -> httpx.Response:
        response = await self._endpoint.call(method, path, doing, json_body=payload)
        if not response.is_success:
            raise self._error_for(response, doing)
        return response

    def _message_id(self, response: httpx.Response, path: str) -> str:
        """The id in a 2xx send answer, or raise `GatewayAnswerError`: without one, whatever
        answered did not say that WAHA took the message."""
        ident = _message_id(response)
        if ident is None:
            raise unexpected_answer(self._endpoint, response, path, "a WAHA message")
        return ident

    # -- reading back ------------------------------------------------------------------------

    async def _verify(self, text: str, ids: set[str | None]) -> bool | None:
        """Look for the post in the chat for up to `verify_window` seconds.

        Return True when seen, False when not, None when the read-back failed (the post was
        accepted all the same: it is not resent on a guess).
        """
        deadline = time.monotonic() + self._verify_window
        interval = min(1.0, self._verify_window / 4)
        while True:
            try:
                messages = await self._readback(VERIFY_READBACK, "checking the post")
            except ChannelError as exc:
                log.warning("cannot read the chat back to check a post", channel=self.name,
                            error=str(exc))
                return None
            if _find(messages, ids, {text})[0]:
                return True
            if time.monotonic() + interval > deadline:
                return False
            await asyncio.sleep(interval)

    async def _readback(self, limit: int, doing: str) -> list[dict[str, Any]]:
        """Return the chat's newest messages (newest first), or raise a `ChannelError`."""
        response = await self._endpoint.call(
            "GET", self._messages_path, doing,
            params={"limit": limit, "downloadMedia": "false", "sortOrder": "desc"},
        )
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        if not isinstance(body, list):
            raise unexpected_answer(self._endpoint, response, self._messages_path, "a list of WAHA messages")
        return [message for message in body if isinstance(message, dict)]

    # -- editing -----------------------------------------------------------------------------

    def _serialized(self, remote_id: str) -> str:
        """The id WAHA's message routes take, `true_{chatId}_{id}`, from a bare or a
        serialized one."""
        return remote_id if "_" in remote_id else f"true_{self._chat_id}_{remote_id}"

    async def _message(self, path: str, remote_id: str, doing: str) -> dict[str, Any]:
        """The WAMessage at `path`; raise `EditUnsupported` when the chat does not have it,
        `GatewayAnswerError` for a 2xx that is not a message, else as `send`."""
        response = await self._endpoint.call("GET", path, doing, params={"downloadMedia": "false"})
        body = json_or_none(response)
        if response.status_code == 404 and not _unknown_session_answer(body):
            raise self._gone(remote_id)
        if not response.is_success:
            raise self._error_for(response, doing)
        if body is None and not response.content.strip():
            raise self._gone(remote_id)  # WAHA answers an unknown message with an empty 200
        if not isinstance(body, dict) or not isinstance(body.get("id"), str | dict):
            raise unexpected_answer(self._endpoint, response, path, "a WAHA message")
        return body

    def _gone(self, remote_id: str) -> EditUnsupported:
        return EditUnsupported(
            f"{self.name}: post {remote_id} is not in the chat (deleted, or never shown)",
            hint='a correction goes out as a "Rettifica" follow-up',
        )

    # -- errors ------------------------------------------------------------------------------

    def _error_for(self, response: httpx.Response, doing: str) -> ChannelError:
        """Classify a non-2xx answer into the error the outbox acts on."""
        code = response.status_code
        body = json_or_none(response)
        message = self._endpoint.answered(response, doing, _server_detail(body, response))
        session = self._session

        if code == 422:
            status = body.get("status") if isinstance(body, dict) else None
            if isinstance(status, str) and status != "WORKING":
                hint = _STATUS_HINTS.get(status, "check the session in the WAHA dashboard")
                return TransientError(
                    f"{self.name}: WAHA session {session!r} is {status}, not WORKING",
                    retry_after=retry_after(response),
                    hint=hint.replace("{session}", session),
                )
        if code in (408, 429) or code >= 500:
            return TransientError(
                message,
                retry_after=retry_after(response),
                hint="WAHA or WhatsApp is busy or failing; the alert stays queued",
            )
        if code in (401, 403):
            if self._config.api_key is None:
                hint = (
                    f'WAHA wants a key: set api_key = "env:WAHA_API_KEY" in '
                    f"[channels.{self.name}] with the value of WAHA's WAHA_API_KEY"
                )
            else:
                hint = (
                    f"check api_key ({self._config.api_key.ref}) of [channels.{self.name}]: "
                    "it must equal WAHA_API_KEY of the WAHA server"
                )
            return ChannelDownError(message, hint=hint)
        if code == 404:
            return ChannelDownError(
                message,
                hint=(
                    f"check session ({session!r}) and chat_id ({self._chat_id!r}) of "
                    f"[channels.{self.name}]: the session must exist in WAHA and the chat "
                    "must be a channel it can post to"
                ),
            )
        if 400 <= code < 500:
            return MessageRejected(
                message, hint="WAHA refused this message (length, markup or fields)"
            )
        # 1xx and 3xx: something other than WAHA answers at `url` (a proxy, a login page).
        return ChannelDownError(
            message, hint=f"check url of [channels.{self.name}]: it must be WAHA's base address"
        )


def _unknown_session_answer(body: Any) -> bool:
    """True for WAHA's 404 about the session itself ("We didn't find a session..."), which
    concerns the whole channel, not one message."""
    return isinstance(body, dict) and "session" in str(body.get("message", "")).lower()


def _route_missing(body: Any) -> bool:
    """True for NestJS's "Cannot GET /path" 404: the route does not exist in this version."""
    return isinstance(body, dict) and str(body.get("message", "")).startswith("Cannot ")


def _server_detail(body: Any, response: httpx.Response) -> str:
    """Return what the server said about the error: WAHA's `message`/`error`, or short text."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            # NestJS validation errors come as a list of messages.
            if isinstance(value, list) and value:
                return "; ".join(str(part) for part in value)
        return ""
    return short_text(response) if body is None else ""


def _message_id(response: httpx.Response) -> str | None:
    """Return the message id from any of WAHA's engine-dependent success bodies."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        return None
    key = body.get("key")
    if isinstance(key, dict) and isinstance(key.get("id"), str) and key["id"]:
        return str(key["id"])  # NOWEB: {"key": {"remoteJid", "fromMe", "id"}, ...}
    ident = body.get("id")
    if isinstance(ident, dict):
        serialized = ident.get("_serialized")  # WEBJS: {"id": {"_serialized", ...}, ...}
        return serialized if isinstance(serialized, str) and serialized else None
    if isinstance(ident, str) and ident:
        return ident  # plain {"id": "..."}
    return None


def _post_counts(entry: Any) -> tuple[str, PostCounts] | None:
    """(bare id, counts) of one ChannelMessage `{"reactions", "viewCount", "message": {"id"}}`,
    None when it is not one (a count that is not a number >= 0, no id)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("message"), dict):
        return None
    ident = entry["message"].get("id")
    views = entry.get("viewCount")
    reactions = entry.get("reactions", {})
    if not isinstance(ident, str) or not ident or not _count(views) or not isinstance(reactions, dict):
        return None
    kept = tuple(sorted(((str(emoji), int(n)) for emoji, n in reactions.items() if _count(n) and n),
                        key=lambda item: (-item[1], item[0])))
    return bare_id(ident), PostCounts(int(views), kept)


def _count(value: object) -> TypeGuard[int | float]:
    """A count as JSON gives it: a number (not a boolean), whole, not negative."""
    return (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            and value >= 0 and value == int(value))


def bare_id(ident: str) -> str:
    """The message id proper: WAHA serializes ids as `{true|false}_{chatId}_{id}`; a bare id
    is its own bare id."""
    return ident.rsplit("_", 1)[-1]


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _find(
    messages: list[dict[str, Any]], ids: Iterable[str | None], texts: Iterable[str]
) -> tuple[bool, str | None]:
    """Look for our post among `messages`: an own message whose id is one of `ids`, else one
    whose body hashes like one of `texts`. Return (found, its id when it has one)."""
    wanted_ids = {bare_id(ident) for ident in ids if ident}
    wanted_hashes = {_text_hash(text) for text in texts}
    by_text: tuple[bool, str | None] = (False, None)
    for message in messages:
        if message.get("fromMe") is False:
            continue
        raw = message.get("id")
        if isinstance(raw, dict):  # some engines nest it like their send answer
            raw = raw.get("_serialized") or raw.get("id")
        ident = raw if isinstance(raw, str) and raw else None
        if ident is not None and bare_id(ident) in wanted_ids:
            return True, ident
        body = message.get("body")
        if not by_text[0] and isinstance(body, str) and _text_hash(body) in wanted_hashes:
            by_text = (True, ident)
    return by_text
