"""A webhook: the alert as JSON, POSTed to a URL the operator runs or trusts.

The body is one JSON object (compact, keys sorted, UTF-8):

    {"delivery_id", "feed", "feed_name", "title", "summary", "link", "published", "urgent",
     "categories", "image_url", "text"}

`published` is ISO 8601 or null, `text` is `render.plain(alert)`. Headers:
`Content-Type: application/json`, `Idempotency-Key: <delivery id>` (the same on every retry of
one delivery), and, when the channel has a `secret`, `X-Signature: sha256=<hex>`, the
HMAC-SHA256 of the exact body bytes with the secret as key.

Any 2xx is success. 401, 403, 404, 410 -> `ChannelDownError` (the receiver refuses us or is
gone); 408, 429 (with `Retry-After`), 5xx, connection errors, timeouts -> `TransientError`; any
other 4xx -> `MessageRejected`; a redirect is not followed -> `ChannelDownError`.

Exactly once when the receiver deduplicates by `Idempotency-Key` (the outbox resends after a
crash; `recover` returns None); at least once otherwise. Messages show only the URL's scheme
and host: webhook paths often carry a token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

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
from bridge.channels.endpoint import Endpoint, json_or_none, retry_after, short_text
from bridge.config import ChannelConfig
from bridge.item import Alert
from bridge.template import DEFAULT_TEMPLATE, Template, channel_template

PROBE_RESULT = "not checked (webhooks have no health endpoint)"


def alert_payload(alert: Alert, delivery_id: str, template: Template = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Return the JSON object a webhook receives for `alert` (`text` laid out by `template`); pure."""
    return {
        "delivery_id": delivery_id,
        "feed": alert.feed_id,
        "feed_name": alert.feed_name,
        "title": alert.title,
        "summary": alert.summary,
        "link": alert.link,
        "published": alert.published.isoformat() if alert.published else None,
        "urgent": alert.urgent,
        "categories": list(alert.categories),
        "image_url": alert.image_url,
        "text": _text(alert, template),
    }


def _text(alert: Alert, template: Template) -> str:
    """The `text` of a webhook's JSON: the plain form, no markup."""
    return render.plain(alert, template)


def outgoing(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """The `text` a webhook's JSON carries for `alert`; pure: `render.plain` laid out by the
    channel's template, never an image of its own (the payload names `image_url` for the
    receiver to use). `plain` changes nothing: there is no markup."""
    text = _text(alert, channel_template(config.template, config.timezone))
    return Outgoing(text, "plain", len(text), None)


def signature(secret: str, body: bytes) -> str:
    """Return the `X-Signature` value for `body`: "sha256=" + hex HMAC-SHA256 keyed by `secret`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """POSTs each alert as JSON to `config.url`, signed when `config.secret` is set.

    Given a `ChannelConfig` of type "webhook" and an `httpx.AsyncClient` owned by the caller.
    Raise `ValueError` at construction if `url` is missing.
    """

    guarantee = "exactly-once"

    def __init__(self, config: ChannelConfig, *, http: httpx.AsyncClient) -> None:
        if not config.url:
            raise ValueError(f"channel {config.name!r} (type webhook) needs url")
        self.name = config.name
        self._template = channel_template(config.template, config.timezone)
        self._secret = config.secret.value if config.secret else ""
        url = httpx.URL(config.url)
        self._endpoint = Endpoint(
            channel=config.name,
            platform="the webhook",
            http=http,
            base_url=config.url,
            display_url=f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}",
            timeout=config.timeout.total_seconds(),
            secrets=[self._secret],
        )

    async def prepare(self, delivery_id: str) -> str | None:
        """Return None: the delivery id itself is the idempotency key."""
        return None

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """POST the alert; return `Posted(id)` with the receiver's `id` when its JSON answer
        has one, else `Posted(None)`. `plain` changes nothing: the payload has no markup.
        Raise the errors the module docstring lists."""
        body = json.dumps(
            alert_payload(alert, delivery_id, self._template), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": delivery_id}
        if self._secret:
            headers["X-Signature"] = signature(self._secret, body)
        response = await self._endpoint.call("POST", "", "posting", content=body, headers=headers)
        if not response.is_success:
            raise self._error_for(response)
        answer = json_or_none(response)
        ident = answer.get("id") if isinstance(answer, dict) else None
        return Posted(str(ident) if isinstance(ident, str | int) and ident != "" else None)

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """Return None: a resend carries the same `Idempotency-Key` for the receiver to
        deduplicate."""
        return None

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Raise `EditUnsupported`: a webhook receives alerts, it has no way to be told that one
        changed other than a new alert (the "Rettifica" follow-up)."""
        raise EditUnsupported(f"{self.name}: a webhook cannot edit what it received",
                              hint='a correction goes out as a "Rettifica" follow-up')

    async def delete(self, remote_id: str) -> bool:
        """Raise `DeleteUnsupported`: what a webhook received cannot be taken back."""
        raise DeleteUnsupported(f"{self.name}: cannot delete on this platform: a webhook cannot take back "
                                "what it received", hint="ask whoever runs the receiver to remove it")

    async def probe(self) -> str:
        """Return `PROBE_RESULT` without any request: a webhook receiver has no standard
        health check, and a test POST would be an alert."""
        return PROBE_RESULT

    async def aclose(self) -> None:
        """Do nothing: the http client is shared and closed by its owner."""

    def _error_for(self, response: httpx.Response) -> ChannelError:
        """Classify a non-2xx answer into the error the outbox acts on."""
        code = response.status_code
        body = json_or_none(response)
        if isinstance(body, dict):
            detail = str(body.get("error") or body.get("message") or "")
        else:
            detail = short_text(response)
        message = self._endpoint.answered(response, "posting", detail)
        if code in (408, 429) or code >= 500:
            return TransientError(
                message, retry_after=retry_after(response),
                hint="the receiver is busy or failing; the alert stays queued"
            )
        if code in (401, 403):
            return ChannelDownError(
                message, hint=f"the receiver refuses us: check secret and url of [channels.{self.name}]"
            )
        if code in (404, 410):
            return ChannelDownError(message, hint=f"the receiver is not there: check url of [channels.{self.name}]")
        if 400 <= code < 500:
            return MessageRejected(message, hint="the receiver refused this alert")
        return ChannelDownError(
            message, hint=f"check url of [channels.{self.name}]: the receiver redirects or answers oddly"
        )
