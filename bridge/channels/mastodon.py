"""A Mastodon account through its REST API.

`POST {url}/api/v1/statuses` `{"status", "visibility", "language"}` with
`Authorization: Bearer <token>` and `Idempotency-Key: <delivery id>`; success answers the new
status `{"id", ...}`. With images, the bytes the bridge downloaded are uploaded first
(`POST /api/v2/media`, the alert's title as description) and attached by `media_ids`.
Answers are classified so the outbox can act on the error's class alone:

- connection errors, timeouts, 408, 429 (with `Retry-After`, else `X-RateLimit-Reset`), 5xx
  -> `TransientError`;
- 401, 403 (token revoked, scope missing, account suspended), 404 and 410 (not a Mastodon
  API, account gone) -> `ChannelDownError`;
- 422 (too long, invalid) and the other 4xx -> `MessageRejected`;
- a 2xx that is not a Status with a string `id` (a proxy's login page, `{"status": "ok"}`, an
  empty body) -> `GatewayAnswerError`, a `TransientError`: never taken as a post.

The text is fitted to the limit as Mastodon counts it (`render.mastodon_length`: a URL counts
23 characters whatever its length, "@user@domain" counts as "@user"); the plainest form, sent
after a refusal, is fitted with the strict bound, which no way of counting exceeds.

`edit` changes a status in place (`PUT /api/v1/statuses/:id` `{"status", "language",
"media_ids"}`; Mastodon keeps the earlier version in the status's public edit history). An
edit replaces the attachments with the `media_ids` it carries, so the status is read first
(`GET /api/v1/statuses/:id`) and its media kept. A status the instance no longer has (404
`{"error": "Record not found"}`) -> `EditUnsupported`; the rest is classified as a send.

`delete` removes a status (`DELETE /api/v1/statuses/:id`, answered with the deleted Status);
Mastodon's own 404 `{"error": "Record not found"}` means it was deleted before (False); the
rest is classified as a send.

Exactly once, by the platform: Mastodon remembers an `Idempotency-Key` for one hour and
answers a resend carrying it with the status it already created, so `recover` returns None
and the outbox simply resends; the same holds after a wrong answer that may hide a post a
proxy forwarded. A crash recovered more than an hour later may therefore post twice; that is
the limit of this guarantee.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
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
from bridge.images import Image, ImageLoader
from bridge.item import Alert
from bridge.template import channel_template

log = structlog.get_logger("bridge.channels.mastodon")

# Mastodon's own limit on an image description (alt text).
DESCRIPTION_LIMIT = 1500


def outgoing(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """What a Mastodon channel posts for `alert`; pure. The status is `render.mastodon`: plain
    text laid out by the channel's template, within Mastodon's 500 characters or the
    instance's (`max_length`) as Mastodon counts them, the link kept whole; when `plain`,
    fitted with the strict count (`render.mastodon_length(strict=True)`), so a status refused
    as too long is not sent again unchanged. With `images = true`, not `plain`, the alert's
    image is attached (a status has no separate caption limit)."""
    limit = render.platform_for(config.type, config.max_length).text_limit
    template = channel_template(config.template, config.timezone)
    text = render.mastodon(alert, limit, template, strict=plain)
    image = alert.image_url if config.images and not plain and alert.image_url else None
    return Outgoing(text, "plain", render.mastodon_length(text, strict=plain), limit, image)


class MastodonChannel:
    """Posts alerts as statuses of one Mastodon account.

    Given a `ChannelConfig` of type "mastodon" (with `url`, the instance, and `token`, an
    access token with `write:statuses`, plus `write:media` for images) and an
    `httpx.AsyncClient` owned by the caller. `media_wait` is how long, in seconds, to wait for
    an uploaded image the server is still processing before posting text only. Raise
    `ValueError` at construction if `url` or `token` is missing.
    """

    guarantee = "exactly-once"

    def __init__(
        self,
        config: ChannelConfig,
        *,
        http: httpx.AsyncClient,
        images: ImageLoader | None = None,
        media_wait: float = 5.0,
    ) -> None:
        if not config.url:
            raise ValueError(f"channel {config.name!r} (type mastodon) needs url")
        if config.token is None or not config.token.value:
            raise ValueError(f"channel {config.name!r} (type mastodon) needs token")
        self.name = config.name
        self._config = config
        self._images = images if config.images else None
        self._media_wait = media_wait
        token = config.token.value
        self._endpoint = Endpoint(
            channel=config.name,
            platform="Mastodon",
            http=http,
            base_url=config.url,
            timeout=config.timeout.total_seconds(),
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
        )

    async def prepare(self, delivery_id: str) -> str | None:
        """Return None: the delivery id itself is the idempotency key."""
        return None

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """Post `alert` as a status keyed by `delivery_id`; return `Posted(status id)`.

        The text is `render.mastodon(alert, limit)` (plain text, the link kept whole, `limit`
        the channel's `max_length` or 500, counted as Mastodon counts); when `plain`, fitted
        with the strict count instead (`render.mastodon_length(strict=True)`), so a status
        refused as too long is not sent again unchanged. An image, when enabled, not `plain`,
        downloadable and accepted by the media upload, is attached; any image problem posts
        text only.
        A resend within the hour with the same `delivery_id` returns the status already
        posted instead of a new one. Raise the errors the module docstring lists.
        """
        message = outgoing(self._config, alert, plain=plain)
        payload: dict[str, Any] = {
            "status": message.text,
            "visibility": self._config.visibility,
            "language": self._config.language,
        }
        media_id = None
        if message.image_url and self._images is not None:
            image = await self._images.load(message.image_url)
            if image is not None:
                media_id = await self._upload(image, alert.title)
        if media_id is not None:
            try:
                return await self._post_status({**payload, "media_ids": [media_id]}, delivery_id)
            except MessageRejected as exc:
                # The key is stored only for a status that was created, so the text-only
                # post below is not mistaken for a resend.
                log.warning("Mastodon refused the status with its image; posting text only",
                            channel=self.name, error=str(exc))
        return await self._post_status(payload, delivery_id)

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """Return None: a resend carries the same `Idempotency-Key`, which Mastodon
        deduplicates for an hour."""
        return None

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Replace the text of status `remote_id` with `outgoing(alert)`'s, keeping its
        attachments; see the module docstring. Return `Posted(remote_id, verified)`, verified
        True when the instance answered with an edited status (it has `edited_at`), else None
        (an edit that changed nothing leaves none). Raise
        `EditUnsupported` for a status the instance no longer has, else the errors of `send`."""
        path = f"/api/v1/statuses/{quote(remote_id, safe='')}"
        current = await self._status(await self._endpoint.call("GET", path, "reading the status to edit"),
                                     path, remote_id, "reading the status to edit")
        attachments = current.get("media_attachments")
        media_ids = [str(media["id"]) for media in attachments if isinstance(media, dict) and "id" in media] \
            if isinstance(attachments, list) else []
        payload: dict[str, Any] = {"status": outgoing(self._config, alert, plain=plain).text,
                                   "language": self._config.language}
        if media_ids:
            payload["media_ids"] = media_ids
        doing = "editing a status"
        edited = await self._status(await self._endpoint.call("PUT", path, doing, json_body=payload),
                                    path, remote_id, doing)
        return Posted(str(edited["id"]), verified=True if edited.get("edited_at") else None)

    async def _status(self, response: httpx.Response, path: str, remote_id: str, doing: str) -> dict[str, Any]:
        """The Status a 2xx `response` holds; raise `EditUnsupported` for Mastodon's own 404
        (the status is gone), `GatewayAnswerError` for a 2xx that is not a Status, else as a send."""
        body = json_or_none(response)
        if response.status_code == 404 and isinstance(body, dict) and body.get("error"):
            raise EditUnsupported(
                f"{self.name}: status {remote_id} is no longer on the instance ({body['error']})",
                hint='a correction goes out as a "Rettifica" follow-up',
            )
        if not response.is_success:
            raise self._error_for(response, doing)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            raise unexpected_answer(self._endpoint, response, path, "a Mastodon status")
        return body

    async def delete(self, remote_id: str) -> bool:
        """Delete status `remote_id`; see the module docstring. Return True when deleted,
        False when the instance no longer has it."""
        path = f"/api/v1/statuses/{quote(remote_id, safe='')}"
        doing = "deleting a status"
        response = await self._endpoint.call("DELETE", path, doing)
        body = json_or_none(response)
        if response.status_code == 404 and isinstance(body, dict) and body.get("error"):
            return False
        if not response.is_success:
            raise self._error_for(response, doing)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            raise unexpected_answer(self._endpoint, response, path, "a Mastodon status")
        return True

    async def probe(self) -> str:
        """Return "@account on host" when the token works. Posts nothing.

        `GET /api/v1/accounts/verify_credentials`; raise `ChannelDownError` for a refused
        token or an answer that is not Mastodon's, `TransientError` when it cannot be reached.
        """
        doing = "checking the token"
        response = await self._endpoint.call("GET", "/api/v1/accounts/verify_credentials", doing)
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        account = (body.get("acct") or body.get("username")) if isinstance(body, dict) else None
        if not isinstance(account, str) or not account:
            raise ChannelDownError(
                f"{self.name}: {self._endpoint.display_url} did not describe a Mastodon account",
                hint=f"check url of [channels.{self.name}]: it must be the instance's address",
            )
        return f"@{account} on {httpx.URL(self._endpoint.base_url).host}"

    async def aclose(self) -> None:
        """Do nothing: the http client and the image loader are shared and closed by their owner."""

    async def _post_status(self, payload: dict[str, Any], delivery_id: str) -> Posted:
        response = await self._endpoint.call(
            "POST", "/api/v1/statuses", "posting", json_body=payload,
            headers={"Idempotency-Key": delivery_id},
        )
        if not response.is_success:
            raise self._error_for(response, "posting")
        body = json_or_none(response)
        ident = body.get("id") if isinstance(body, dict) else None
        if not isinstance(ident, str) or not ident:
            raise unexpected_answer(self._endpoint, response, "/api/v1/statuses", "a Mastodon status")
        return Posted(ident)

    async def _upload(self, image: Image, description: str) -> str | None:
        """Upload `image`; return its media id once it can be attached, or None (logged)."""
        try:
            response = await self._endpoint.call(
                "POST", "/api/v2/media", "uploading an image",
                data={"description": description[:DESCRIPTION_LIMIT]},
                files={"file": (image.filename, image.data, image.mimetype)},
            )
            if not response.is_success:
                raise self._error_for(response, "uploading an image")
            body = json_or_none(response)
            ident = body.get("id") if isinstance(body, dict) else None
            if not isinstance(ident, str | int) or ident == "":
                raise MessageRejected(f"{self.name}: Mastodon's media answer has no id")
            media_id = str(ident)
            # 202: accepted, still processing; a status cannot carry it until it is ready.
            if response.status_code == 202 and not await self._wait_for_media(media_id):
                log.warning("Mastodon is still processing the image; posting text only",
                            channel=self.name, waited=self._media_wait)
                return None
            return media_id
        except ChannelError as exc:
            log.warning("image upload failed; posting text only", channel=self.name, error=str(exc))
            return None

    async def _wait_for_media(self, media_id: str) -> bool:
        """Poll `GET /api/v1/media/:id` until it is processed (200) or `media_wait` is over."""
        deadline = time.monotonic() + self._media_wait
        interval = min(1.0, max(self._media_wait / 5, 0.01))
        while time.monotonic() + interval <= deadline:
            await asyncio.sleep(interval)
            response = await self._endpoint.call(
                "GET", f"/api/v1/media/{quote(media_id, safe='')}", "waiting for the image"
            )
            if response.status_code == 200:
                return True
            if response.status_code != 206:  # 206: still processing
                raise self._error_for(response, "waiting for the image")
        return False

    def _error_for(self, response: httpx.Response, doing: str) -> ChannelError:
        """Classify a non-2xx answer into the error the outbox acts on."""
        code = response.status_code
        body = json_or_none(response)
        detail = str(body.get("error", "")) if isinstance(body, dict) else short_text(response)
        message = self._endpoint.answered(response, doing, detail)
        if code == 429:
            return TransientError(
                message, retry_after=_rate_limit_wait(response),
                hint="Mastodon's rate limit; the alert stays queued",
            )
        if code == 408 or code >= 500:
            return TransientError(
                message, retry_after=retry_after(response),
                hint="the instance is busy or failing; the alert stays queued"
            )
        if code in (401, 403):
            ref = self._config.token.ref if self._config.token else "token"
            return ChannelDownError(
                message,
                hint=f"check token ({ref}) of [channels.{self.name}]: an access token of the account with "
                "write:statuses (and write:media for images); the account may also be suspended",
            )
        if code in (404, 410):
            return ChannelDownError(
                message, hint=f"check url of [channels.{self.name}]: it must be the instance's address"
            )
        if 400 <= code < 500:
            return MessageRejected(message, hint="the instance refused this status (length, language or media)")
        return ChannelDownError(message, hint=f"check url of [channels.{self.name}]: it must be the instance's address")


def _rate_limit_wait(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds to wait after a 429: `Retry-After`, else Mastodon's `X-RateLimit-Reset` (an
    ISO 8601 time), else None."""
    wait = retry_after(response, now=now)
    if wait is not None:
        return wait
    reset = response.headers.get("X-RateLimit-Reset")
    if not reset:
        return None
    try:
        when = datetime.fromisoformat(reset.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
