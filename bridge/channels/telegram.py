"""A Telegram channel (or group) through the Bot API.

`POST {api_url}/bot{token}/sendMessage` with the alert in HTML parse mode (`render.telegram`),
`/sendPhoto` (a multipart upload of the bytes the bridge downloaded) for an image with the
alert as caption. Answers are `{"ok": true, "result": Message}` or
`{"ok": false, "error_code", "description", "parameters": {"retry_after"}}`, classified so the
outbox can act on the error's class alone:

- 429 -> `TransientError` with `retry_after` (from `parameters`, else the header); 5xx, 408
  and connection failures -> `TransientError`;
- 401 and 404 (a bad token), 403 (bot kicked, not a member, not an admin), 400 "chat not
  found", 400 about missing rights, 400 with `migrate_to_chat_id` -> `ChannelDownError`;
- any other 400 ("can't parse entities", "message is too long") -> `MessageRejected`;
- a 2xx that is not `{"ok": true, "result": ...}` (with a `message_id` for a send): a proxy's
  login page, `{"status": "ok"}`, an empty body -> `GatewayAnswerError`, a `TransientError`:
  never taken as a post.

`edit` changes a post in place: `editMessageText` for a text post, `editMessageCaption` for
a photo's caption (tried when Telegram says the message has no text). "message is not
modified" means the post already says it (an edit repeated): success. "message can't be
edited" (too old, or not the bot's) and "message to edit not found" -> `EditUnsupported`, as
is a caption that would exceed 1024 characters; everything else is classified as a send.

`delete` calls `deleteMessage` (`{chat_id, message_id}`, answered `true`): "message to delete
not found" means it was deleted before (False); "message can't be deleted" (older than 48
hours, or not the bot's) -> `DeleteUnsupported`; the rest is classified as a send.

At least once: the Bot API has no idempotency key and a bot cannot read a channel's history,
so a send in flight during a crash cannot be checked; `recover` returns None and the outbox
resends. The token is part of every URL: it is scrubbed from every message, and httpx's own
errors (which may show the URL) are not chained to ours.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from bridge import render
from bridge.channels.base import (
    ChannelDownError,
    ChannelError,
    DeleteUnsupported,
    EditUnsupported,
    MessageRejected,
    Outgoing,
    Posted,
    TransientError,
)
from bridge.channels.endpoint import SCRUBBED, Endpoint, json_or_none, retry_after, short_text, unexpected_answer
from bridge.config import ChannelConfig
from bridge.images import ImageLoader
from bridge.item import Alert
from bridge.template import channel_template

log = structlog.get_logger("bridge.channels.telegram")

DEFAULT_API_URL = "https://api.telegram.org"
# Telegram's limits, in characters of visible text (after entities parsing).

# Lower-case fragments of 400 descriptions that mean the bot cannot post to the chat at all.
_NO_RIGHTS = (
    "not enough rights",
    "need administrator rights",
    "have no rights",
    "chat_write_forbidden",
    "chat_admin_required",
    "not a member",
)


def outgoing(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """What a Telegram channel sends for `alert`; pure. The text is `render.telegram` for the
    HTML parse mode (`render.plain`, sent without parse mode, when `plain`), laid out by the
    channel's template, its visible text fitted to 4096 characters or the channel's
    `max_length` (`render.platform_for`; `render.fit` never touches the link); with
    `images = true`, not `plain`, an alert with an image whose visible text fits a
    1024-character caption goes as the photo's caption."""
    platform = render.platform_for(config.type, config.max_length)
    template = channel_template(config.template, config.timezone)
    fitted = render.fit(alert, platform.text_limit, lambda a: len(render.plain(a, template)))
    text = render.plain(fitted, template) if plain else render.telegram(fitted, template)
    caption_limit = platform.caption_limit or platform.text_limit
    visible = len(render.plain(fitted, template))
    image = alert.image_url if config.images and not plain and alert.image_url and visible <= caption_limit \
        else None
    return Outgoing(text, "plain" if plain else "telegram-html", visible,
                    caption_limit if image else platform.text_limit, image)


class TelegramChannel:
    """Posts alerts to one Telegram chat (`@channelname` or a numeric id) with a bot.

    Given a `ChannelConfig` of type "telegram" (with `chat_id` and `token`; `api_url`
    defaults to Telegram's own) and an `httpx.AsyncClient` owned by the caller. With `images`
    and `config.images`, an alert with an `image_url` is posted as a photo with the alert as
    caption. Raise `ValueError` at construction if `chat_id` or `token` is missing.
    """

    guarantee = "at-least-once"

    def __init__(
        self, config: ChannelConfig, *, http: httpx.AsyncClient, images: ImageLoader | None = None
    ) -> None:
        if not config.chat_id:
            raise ValueError(f"channel {config.name!r} (type telegram) needs chat_id")
        if config.token is None or not config.token.value:
            raise ValueError(f"channel {config.name!r} (type telegram) needs token")
        self.name = config.name
        self._config = config
        self._chat_id = config.chat_id
        self._images = images if config.images else None
        api_url = (config.api_url or DEFAULT_API_URL).rstrip("/")
        token = config.token.value
        self._endpoint = Endpoint(
            channel=config.name,
            platform="Telegram",
            http=http,
            base_url=f"{api_url}/bot{token}",
            display_url=api_url,
            timeout=config.timeout.total_seconds(),
            secrets=[token],
            config_key="api_url",
        )

    async def prepare(self, delivery_id: str) -> str | None:
        """Return None: the Bot API takes no client-side message id."""
        return None

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """Post `alert` and return `Posted(message_id)` (verified None: a bot cannot read back).

        The text is `render.telegram(alert)` in HTML parse mode (`render.plain` without parse
        mode when `plain`), cut to 4096 visible characters (or the channel's `max_length`),
        with a preview of the alert's link. An image, when enabled, downloadable and the text
        fits a 1024-character caption, goes with `sendPhoto`; any image problem (download
        refused, Telegram rejecting the photo) falls back to the text message. Raise the
        errors the module docstring lists.
        """
        message = outgoing(self._config, alert, plain=plain)
        text = message.text
        if not plain and self._images is not None and alert.image_url:
            if message.image_url is None:
                log.info("alert too long for a caption; posting text only", channel=self.name)
            else:
                image = await self._images.load(message.image_url)
                if image is not None:
                    try:
                        result = await self._call(
                            "sendPhoto",
                            "sending a photo",
                            data={"chat_id": self._chat_id, "caption": text, "parse_mode": "HTML"},
                            files={"photo": (image.filename, image.data, image.mimetype)},
                            message=True,
                        )
                        return Posted(str(result["message_id"]))
                    except MessageRejected as exc:
                        log.warning("Telegram refused the photo; posting text only",
                                    channel=self.name, error=str(exc))
        payload: dict[str, Any] = {"chat_id": self._chat_id, "text": text}
        if not plain:
            payload["parse_mode"] = "HTML"
        payload["link_preview_options"] = (
            {"url": alert.link, "prefer_large_media": True} if alert.link else {"is_disabled": True}
        )
        result = await self._call("sendMessage", "sending", json_body=payload, message=True)
        return Posted(str(result["message_id"]))

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """Return None: a bot cannot read a channel's history, so the outbox resends (at least
        once)."""
        return None

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Replace the text (or the photo's caption) of message `remote_id` with
        `outgoing(alert)`'s; see the module docstring. Return `Posted(remote_id)`: the Bot
        API answers with the edited message, and a bot cannot read a channel back (verified
        None). Raise `EditUnsupported`, or the errors of `send`."""
        try:
            message_id = int(remote_id)
        except ValueError:
            raise EditUnsupported(f"{self.name}: {remote_id!r} is not a Telegram message id") from None
        message = outgoing(self._config, alert, plain=plain)
        params: dict[str, Any] = {"chat_id": self._chat_id, "message_id": message_id}
        if not plain:
            params["parse_mode"] = "HTML"
        try:
            text_params = {**params, "text": message.text, "link_preview_options": (
                {"url": alert.link, "prefer_large_media": True} if alert.link else {"is_disabled": True})}
            await self._edit_call("editMessageText", "editing a post", text_params)
        except MessageRejected as exc:
            if "no text in the message" not in str(exc).lower():
                raise
            caption_limit = render.platform_for(self._config.type, None).caption_limit or 1024
            if message.length > caption_limit:
                raise EditUnsupported(
                    f"{self.name}: post {remote_id} is a photo and the corrected text is over its "
                    f"{caption_limit}-character caption limit",
                    hint='a correction goes out as a "Rettifica" follow-up',
                ) from None
            await self._edit_call("editMessageCaption", "editing a photo's caption",
                                  {**params, "caption": message.text})
        return Posted(remote_id)

    async def _edit_call(self, method: str, doing: str, params: dict[str, Any]) -> None:
        """Call an edit method; an unchanged message is success, one that cannot be edited is
        `EditUnsupported`."""
        try:
            await self._call(method, doing, json_body=params, edited=True)
        except MessageRejected as exc:
            lowered = str(exc).lower()
            if "message is not modified" in lowered:
                return
            if "message can't be edited" in lowered or "message to edit not found" in lowered:
                raise EditUnsupported(str(exc), hint='a correction goes out as a "Rettifica" follow-up') from None
            raise

    async def delete(self, remote_id: str) -> bool:
        """Delete message `remote_id`; see the module docstring. Return True when deleted,
        False when Telegram no longer has it."""
        try:
            message_id = int(remote_id)
        except ValueError:
            raise DeleteUnsupported(f"{self.name}: {remote_id!r} is not a Telegram message id") from None
        try:
            await self._call("deleteMessage", "deleting a post",
                             json_body={"chat_id": self._chat_id, "message_id": message_id}, deleted=True)
        except MessageRejected as exc:
            lowered = str(exc).lower()
            if "message to delete not found" in lowered:
                return False
            if "message can't be deleted" in lowered:
                raise DeleteUnsupported(str(exc), hint="Telegram lets a bot delete its posts for 48 hours; "
                                        "delete it from a Telegram app as an administrator of the channel") from None
            raise
        return True

    async def probe(self) -> str:
        """Check, without posting, that the bot can post to the chat; describe it.

        `getMe` (the token works), `getChat` (the chat exists and the bot sees it), then
        `getChatMember` for the bot itself: it must be the creator, or an administrator (with
        "post messages" in a channel), or a member of a group. Return e.g. "bot @x is
        administrator of channel @y (can post)"; raise `ChannelDownError` with what to fix
        otherwise, `TransientError` when Telegram cannot be reached.
        """
        me = await self._call("getMe", "checking the token")
        bot_id = me.get("id") if isinstance(me, dict) else None
        if not isinstance(bot_id, int):
            raise ChannelDownError(
                f"{self.name}: getMe at {self._endpoint.display_url} did not describe a bot",
                hint=f"check api_url of [channels.{self.name}]: it must be the Bot API's address",
            )
        bot = f"@{me.get('username') or bot_id}"
        chat = await self._call("getChat", "looking up the chat", json_body={"chat_id": self._chat_id})
        chat_type = str(chat.get("type", "chat")) if isinstance(chat, dict) else "chat"
        label = _chat_label(chat, self._chat_id)
        member = await self._call(
            "getChatMember", "checking the bot's rights", json_body={"chat_id": self._chat_id, "user_id": bot_id}
        )
        status = str(member.get("status", "")) if isinstance(member, dict) else ""
        can_post = (
            status == "creator"
            or (status == "administrator" and (chat_type != "channel" or member.get("can_post_messages") is True))
            or (status == "member" and chat_type != "channel")
            or (status == "restricted" and chat_type != "channel" and member.get("can_send_messages") is True)
        )
        if not can_post:
            what = (
                "administrator without the right to post messages"
                if status == "administrator"
                else (status or "unknown")
            )
            raise ChannelDownError(
                f"{self.name}: bot {bot} is {what} in {chat_type} {label}: it cannot post",
                hint=f"add {bot} to {label} as an administrator allowed to post messages",
            )
        return f"bot {bot} is {status} of {chat_type} {label} (can post)"

    async def aclose(self) -> None:
        """Do nothing: the http client and the image loader are shared and closed by their owner."""

    async def _call(
        self,
        method: str,
        doing: str,
        *,
        json_body: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        message: bool = False,
        edited: bool = False,
        deleted: bool = False,
    ) -> Any:
        """Call a Bot API method; return its `result`, or raise the `ChannelError` its answer
        means: `GatewayAnswerError` for a 2xx that is not `{"ok": true, "result": ...}`, or
        whose `result` is not a sent `Message` (with an integer `message_id`) when `message`,
        nor that or `true` when `edited` (an edit's answer), nor `true` when `deleted`."""
        response = await self._endpoint.call(
            "POST", f"/{method}", doing, json_body=json_body, data=data, files=files
        )
        body = json_or_none(response)
        if not response.is_success:
            raise self._error_for(response, body, doing)
        result = body.get("result") if isinstance(body, dict) and body.get("ok") is True else None
        if result is None or (message and not _is_message(result)) or (
                edited and result is not True and not _is_message(result)) or (
                deleted and result is not True):
            # The token is part of the URL: the message shows it masked.
            path = f"/bot{SCRUBBED}/{method}"
            expected = "a Bot API message" if message or edited else "a Bot API result"
            if deleted:
                expected = "the Bot API's true"
            raise unexpected_answer(self._endpoint, response, path, expected)
        return result

    def _error_for(self, response: httpx.Response, body: Any, doing: str) -> ChannelError:
        """Classify a failed Bot API answer into the error the outbox acts on."""
        code = response.status_code
        description = short_text(response)
        parameters: dict[str, Any] = {}
        if isinstance(body, dict) and body.get("ok") is False:
            # The Bot API's own code wins over the HTTP status (a proxy may rewrite that).
            if isinstance(body.get("error_code"), int):
                code = body["error_code"]
            description = str(body.get("description", ""))
            if isinstance(body.get("parameters"), dict):
                parameters = body["parameters"]
        message = self._endpoint.answered(response, doing, description)
        lowered = description.lower()
        chat = f"chat_id ({self._chat_id!r}) of [channels.{self.name}]"

        if code == 429:
            hinted = parameters.get("retry_after")
            wait = float(hinted) if isinstance(hinted, int | float) else retry_after(response)
            return TransientError(message, retry_after=wait, hint="Telegram's flood control; the alert stays queued")
        if code in (408,) or code >= 500:
            return TransientError(
                message, retry_after=retry_after(response), hint="Telegram is busy or failing; the alert stays queued"
            )
        if code in (401, 404):
            ref = self._config.token.ref if self._config.token else "token"
            return ChannelDownError(
                message, hint=f"check token ({ref}) of [channels.{self.name}]: it must be the one @BotFather gave"
            )
        if code == 403:
            return ChannelDownError(
                message, hint=f"add the bot to the chat in {chat} as an administrator allowed to post messages"
            )
        if code == 400 and isinstance(parameters.get("migrate_to_chat_id"), int):
            return ChannelDownError(
                message, hint=f"the group became a supergroup: set {chat} to {parameters['migrate_to_chat_id']}"
            )
        if code == 400 and "chat not found" in lowered:
            return ChannelDownError(
                message, hint=f"check {chat}: \"@name\" of a public channel or its numeric id, with the bot added"
            )
        if code == 400 and any(fragment in lowered for fragment in _NO_RIGHTS):
            return ChannelDownError(message, hint=f"give the bot the right to post messages in the chat of {chat}")
        if 400 <= code < 500:
            return MessageRejected(message, hint="Telegram refused this message (length, markup or media)")
        return ChannelDownError(
            message, hint=f"check api_url of [channels.{self.name}]: it must be the Bot API's address"
        )


def _is_message(result: Any) -> bool:
    """True for a sent `Message`: an object with an integer `message_id` (not a bool)."""
    ident = result.get("message_id") if isinstance(result, dict) else None
    return isinstance(ident, int) and not isinstance(ident, bool)


def _chat_label(chat: Any, chat_id: str) -> str:
    """"@username" of a chat when it has one, else its title in quotes, else the configured id."""
    if isinstance(chat, dict):
        if chat.get("username"):
            return f"@{chat['username']}"
        if chat.get("title"):
            return f"\"{chat['title']}\""
    return chat_id
