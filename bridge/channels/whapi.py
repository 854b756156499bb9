"""A WhatsApp Channel through Whapi.Cloud, a hosted WhatsApp API.

Every WhatsApp route is unofficial (Meta offers no Channels API); Whapi.Cloud runs the
WhatsApp session for you. `POST {url}/messages/text` `{"to", "body"}` and, for an image,
`POST {url}/messages/image` `{"to", "media", "caption"}` with the bytes the bridge downloaded
as a base64 data URL; `Authorization: Bearer <token>`. Success is
`{"sent": true, "message": {"id", ...}}`; errors are `{"error": {"code", "message"}}`:

- connection errors, timeouts, 408, 429, 5xx, and a 2xx with `"sent": false` -> `TransientError`;
- 401, 402 (plan expired), 403 and 404 (unknown channel or chat) -> `ChannelDownError`;
- 400 and the other 4xx -> `MessageRejected`;
- any other 2xx without `"sent": true` and a message id (a proxy's login page,
  `{"status": "ok"}`, an empty body) -> `GatewayAnswerError`, a `TransientError`: never
  taken as a post.

At least once: Whapi takes no idempotency key, so a send in flight during a crash is sent
again; `recover` returns None.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import structlog

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
from bridge.channels.endpoint import Endpoint, json_or_none, retry_after, short_text, unexpected_answer
from bridge.channels.waha import outgoing as whatsapp_outgoing
from bridge.config import ChannelConfig
from bridge.images import ImageLoader
from bridge.item import Alert

log = structlog.get_logger("bridge.channels.whapi")

DEFAULT_URL = "https://gate.whapi.cloud"

# Whapi's channel (session) states from GET /health, and what an operator can do about them.
_STATUS_HINTS = {
    "INIT": "the Whapi channel is starting; if it stays in INIT, contact Whapi support",
    "LAUNCH": "the Whapi channel is connecting to WhatsApp; if it stays so, check the number in the dashboard",
    "QR": "the Whapi channel is logged out: scan its QR code in the Whapi dashboard",
    "STOP": "the Whapi channel is stopped (trial or subscription ended?): check it in the Whapi dashboard",
    "ERROR": "the Whapi channel failed: restart it from the Whapi dashboard",
}


def outgoing(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """What a Whapi channel sends for `alert`; pure: WhatsApp's own text and image choice,
    as WAHA sends it (`bridge.channels.waha.outgoing`)."""
    return whatsapp_outgoing(config, alert, plain=plain)


class WhapiChannel:
    """Posts alerts to one WhatsApp chat (a Channel `...@newsletter`) via Whapi.Cloud.

    Given a `ChannelConfig` of type "whapi" (with `chat_id` and `token`; `url` defaults to
    Whapi's gateway) and an `httpx.AsyncClient` owned by the caller. With `images` and
    `config.images`, an alert with an `image_url` is posted as an image with the alert as
    caption. Raise `ValueError` at construction if `chat_id` or `token` is missing.
    """

    guarantee = "at-least-once"

    def __init__(
        self, config: ChannelConfig, *, http: httpx.AsyncClient, images: ImageLoader | None = None
    ) -> None:
        if not config.chat_id:
            raise ValueError(f"channel {config.name!r} (type whapi) needs chat_id")
        if config.token is None or not config.token.value:
            raise ValueError(f"channel {config.name!r} (type whapi) needs token")
        self.name = config.name
        self._config = config
        self._chat_id = config.chat_id
        self._images = images if config.images else None
        token = config.token.value
        self._endpoint = Endpoint(
            channel=config.name,
            platform="Whapi",
            http=http,
            base_url=config.url or DEFAULT_URL,
            timeout=config.timeout.total_seconds(),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            secrets=[token],
        )

    async def prepare(self, delivery_id: str) -> str | None:
        """Return None: Whapi takes no client-side message id."""
        return None

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """Post `alert`; return `Posted(message id)` (verified None: no read-back here).

        The text is `render.whatsapp(alert)` (`render.plain` when `plain`), cut to 4096
        characters (or the channel's `max_length`). An image, when enabled, downloadable and
        the text fits a 1024-character caption, goes to `/messages/image`; any image problem
        (download refused, Whapi rejecting it) falls back to the text post. Raise the errors
        the module docstring lists.
        """
        message = outgoing(self._config, alert, plain=plain)
        text = message.text
        if not plain and self._images is not None and alert.image_url:
            if message.image_url is None:
                log.info("alert too long for a caption; posting text only", channel=self.name)
            else:
                image = await self._images.load(message.image_url)
                if image is not None:
                    encoded = base64.b64encode(image.data).decode("ascii")
                    media = f"data:{image.mimetype};name={image.filename};base64,{encoded}"
                    try:
                        return await self._post(
                            "/messages/image", "sending an image",
                            {"to": self._chat_id, "media": media, "caption": text},
                        )
                    except MessageRejected as exc:
                        log.warning("Whapi refused the image; posting text only", channel=self.name,
                                    error=str(exc))
        return await self._post("/messages/text", "sending", {"to": self._chat_id, "body": text})

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """Return None: without an idempotency key the outbox resends (at least once)."""
        return None

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Raise `EditUnsupported`: this channel does not edit posts through Whapi; a
        correction goes out as a "Rettifica" follow-up."""
        raise EditUnsupported(f"{self.name}: posts are not edited through Whapi",
                              hint='a correction goes out as a "Rettifica" follow-up')

    async def delete(self, remote_id: str) -> bool:
        """Raise `DeleteUnsupported`: this channel does not delete posts through Whapi."""
        raise DeleteUnsupported(f"{self.name}: cannot delete on this platform: posts are not deleted through "
                                "Whapi", hint="delete it from the WhatsApp app of the channel's account")

    async def probe(self) -> str:
        """Return the Whapi channel state ("AUTH") when it can post. Posts nothing.

        `GET {url}/health`: AUTH (and SYNC_ERROR, which still sends) can post; INIT, LAUNCH,
        QR, STOP, ERROR raise `ChannelDownError` with what to do, as do a refused token and an
        answer that is not Whapi's; `TransientError` when Whapi cannot be reached.
        """
        response = await self._endpoint.call("GET", "/health", "asking the channel status")
        if not response.is_success:
            raise self._error_for(response, "asking the channel status")
        body = json_or_none(response)
        status = body.get("status") if isinstance(body, dict) else None
        text = status.get("text") if isinstance(status, dict) else status
        if not isinstance(text, str) or not text:
            raise ChannelDownError(
                f"{self.name}: {self._endpoint.display_url}/health did not describe a Whapi channel",
                hint=f"check url of [channels.{self.name}]: it must be Whapi's gateway address",
            )
        if text == "AUTH":
            return text
        if text == "SYNC_ERROR":
            return "SYNC_ERROR (sending works; log out and reconnect the channel in Whapi to fix reading)"
        raise ChannelDownError(
            f"{self.name}: Whapi channel is {text}, not AUTH",
            hint=_STATUS_HINTS.get(text, "check the channel in the Whapi dashboard"),
        )

    async def aclose(self) -> None:
        """Do nothing: the http client and the image loader are shared and closed by their owner."""

    async def _post(self, path: str, doing: str, payload: dict[str, Any]) -> Posted:
        response = await self._endpoint.call("POST", path, doing, json_body=payload)
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        if isinstance(body, dict) and body.get("sent") is False:
            raise TransientError(
                self._endpoint.answered(response, doing, "the message was not sent (\"sent\": false)"),
                hint="Whapi accepted the request but did not send; the alert stays queued",
            )
        message = body.get("message") if isinstance(body, dict) else None
        ident = message.get("id") if isinstance(message, dict) else None
        if not isinstance(ident, str) and isinstance(body, dict):
            ident = body.get("id")  # some answers carry the id at the top level
        if not isinstance(body, dict) or body.get("sent") is not True or not isinstance(ident, str) or not ident:
            raise unexpected_answer(self._endpoint, response, path, "a Whapi message")
        return Posted(ident)

    def _error_for(self, response: httpx.Response, doing: str) -> ChannelError:
        """Classify a non-2xx answer into the error the outbox acts on."""
        code = response.status_code
        body = json_or_none(response)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            detail = str(error.get("message") or error.get("details") or "")
        elif isinstance(body, dict):
            detail = str(body.get("message", ""))
        else:
            detail = short_text(response)
        message = self._endpoint.answered(response, doing, detail)
        if code in (408, 429) or code >= 500:
            return TransientError(
                message, retry_after=retry_after(response), hint="Whapi is busy or failing; the alert stays queued"
            )
        if code in (401, 403):
            ref = self._config.token.ref if self._config.token else "token"
            return ChannelDownError(
                message, hint=f"check token ({ref}) of [channels.{self.name}]: it is the channel's API token"
            )
        if code == 402:
            return ChannelDownError(message, hint="the Whapi plan or trial has ended: check billing in the dashboard")
        if code == 404:
            return ChannelDownError(
                message,
                hint=f"check chat_id ({self._chat_id!r}) of [channels.{self.name}] and that url is Whapi's gateway",
            )
        if 400 <= code < 500:
            return MessageRejected(message, hint="Whapi refused this message (length, fields or media)")
        return ChannelDownError(message, hint=f"check url of [channels.{self.name}]: it must be Whapi's gateway")
