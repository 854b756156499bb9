"""A WhatsApp Channel through WAHA, the self-hosted WhatsApp HTTP API.

Every WhatsApp route is unofficial (Meta offers no Channels API); WAHA drives a logged-in
WhatsApp session and exposes it over HTTP. This module speaks to it and turns each answer
into `Posted` or one of the `bridge.channels.base` errors, so the outbox can decide from the
error's class alone:

- connection errors, timeouts, 408, 429, 5xx, and 422 "session status is not WORKING"
  -> `TransientError` (with `retry_after` from the `Retry-After` header when given);
- 401 / 403 (api key) and 404 (unknown session or chat) -> `ChannelDownError`;
- 400 and the other 4xx -> `MessageRejected`.

Error messages are one line for a human and never contain the api key: the key travels only
in the `X-Api-Key` header, and any text the server echoes back is scrubbed of it.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from bridge import render
from bridge.channels.base import (
    ChannelDownError,
    ChannelError,
    MessageRejected,
    Posted,
    TransientError,
)
from bridge.config import ChannelConfig
from bridge.item import Alert

# How much of the server's own error text goes into a message: enough to recognise the
# problem, short enough to stay on one log line.
_DETAIL_CHARS = 160

# What an operator can do about each session status WAHA reports instead of WORKING.
_STATUS_HINTS = {
    "STARTING": "the WAHA session is starting; sends resume by themselves once it is WORKING",
    "SCAN_QR_CODE": "the WAHA session is logged out: scan its QR code in the WAHA dashboard",
    "PASSKEY_REQUIRED": "the WAHA session needs a passkey: complete it in the WAHA dashboard",
    "PASSKEY_CONFIRMATION_REQUIRED": "confirm the passkey of the WAHA session in its dashboard",
    "STOPPED": "the WAHA session is stopped: start it (POST /api/sessions/{session}/start)",
    "FAILED": "the WAHA session failed: restart it (POST /api/sessions/{session}/restart)",
}


class WahaChannel:
    """Posts alerts as text messages to one WhatsApp chat (a Channel `...@newsletter`) via WAHA.

    Given a `ChannelConfig` of type "waha" (with `url` and `chat_id`, as the config loader
    guarantees) and an `httpx.AsyncClient` owned by the caller, `send` posts one alert and
    `probe` asks for the session status. Raise `ValueError` at construction if `url` or
    `chat_id` is missing.
    """

    def __init__(self, config: ChannelConfig, *, http: httpx.AsyncClient) -> None:
        if not config.url:
            raise ValueError(f"channel {config.name!r} (type waha) needs url")
        if not config.chat_id:
            raise ValueError(f"channel {config.name!r} (type waha) needs chat_id")
        self.name = config.name
        self._config = config
        self._http = http
        self._base_url = config.url.rstrip("/")
        self._chat_id = config.chat_id
        self._timeout_seconds = config.timeout.total_seconds()
        self._api_key = config.api_key.value if config.api_key else ""
        self._headers = {"X-Api-Key": self._api_key} if self._api_key else {}

    async def send(self, alert: Alert, *, delivery_id: str) -> Posted:
        """Post `alert` as `render.whatsapp(alert)` with a link preview; return its message id.

        Return `Posted(remote_id)` on a 2xx answer; `remote_id` is the id WAHA gave the
        message (NOWEB `key.id`, WEBJS `id._serialized`, or a plain `id`), or None when the
        body does not say: the post went all the same. Raise `TransientError`,
        `ChannelDownError` or `MessageRejected` as the module docstring lists.

        `delivery_id` is not sent: WAHA has no idempotency key, so a send that was in flight
        during a crash is reconciled by reading the chat back, not by this call.
        """
        payload = {
            "session": self._config.session,
            "chatId": self._chat_id,
            "text": render.whatsapp(alert),
            "linkPreview": True,
        }
        response = await self._request("POST", "/api/sendText", "sending", json_body=payload)
        return Posted(remote_id=_message_id(response))

    async def probe(self) -> str:
        """Return the WAHA status of the configured session ("WORKING", "STARTING", ...).

        Posts nothing. Raise the same error classes as `send` when WAHA cannot be reached
        or refuses (401/403 key, 404 unknown session), and `ChannelDownError` when the
        answer is not a WAHA session description (`url` points at something else).
        """
        path = f"/api/sessions/{quote(self._config.session, safe='')}"
        response = await self._request("GET", path, "asking the session status")
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str) or not status:
            raise ChannelDownError(
                f"{self.name}: {self._base_url}{path} did not describe a WAHA session",
                hint=f"check url of [channels.{self.name}]: it must be WAHA's base address",
            )
        return status

    async def aclose(self) -> None:
        """Do nothing: the http client is shared and closed by its owner."""

    async def _request(
        self, method: str, path: str, doing: str, *, json_body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Send one request to WAHA; return the 2xx response or raise a `ChannelError`."""
        url = self._base_url + path
        try:
            response = await self._http.request(
                method,
                url,
                json=json_body,
                headers=self._headers,
                timeout=self._timeout_seconds,
                # A redirect means `url` is not WAHA's own address, and httpx would turn a
                # redirected POST into a GET: report it instead of following it.
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{self.name}: WAHA did not answer within {self._timeout_seconds:g} s "
                f"while {doing} ({type(exc).__name__})",
                hint="the post may have gone through; check that WAHA is not overloaded",
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise ChannelDownError(
                f"{self.name}: cannot use url {self._base_url!r}: {self._one_line(str(exc))}",
                hint=f"check url of [channels.{self.name}]: it must start with http(s)://",
            ) from exc
        except httpx.TransportError as exc:
            # Refused, reset, DNS failure, broken protocol: all can heal by themselves.
            reason = self._one_line(str(exc)) or type(exc).__name__
            raise TransientError(
                f"{self.name}: cannot reach WAHA at {self._base_url} while {doing}: {reason}",
                hint="check that the WAHA service is running and listening on url",
            ) from exc
        except httpx.InvalidURL as exc:
            raise ChannelDownError(
                f"{self.name}: invalid url {self._base_url!r}: {self._one_line(str(exc))}",
                hint=f"check url of [channels.{self.name}]",
            ) from exc
        if not response.is_success:
            raise self._error_for(response, doing)
        return response

    def _error_for(self, response: httpx.Response, doing: str) -> ChannelError:
        """Classify a non-2xx answer into the error the outbox acts on."""
        code = response.status_code
        body = _json_or_none(response)
        detail = self._one_line(_server_detail(body, response))
        message = f"{self.name}: WAHA answered {code} while {doing}"
        if detail:
            message = f"{message}: {detail}"
        session = self._config.session

        if code == 422:
            status = body.get("status") if isinstance(body, dict) else None
            if isinstance(status, str) and status != "WORKING":
                hint = _STATUS_HINTS.get(status, "check the session in the WAHA dashboard")
                return TransientError(
                    f"{self.name}: WAHA session {session!r} is {status}, not WORKING",
                    retry_after=_retry_after(response),
                    hint=hint.replace("{session}", session),
                )
        if code in (408, 429) or code >= 500:
            return TransientError(
                message,
                retry_after=_retry_after(response),
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

    def _one_line(self, text: str) -> str:
        """Collapse `text` to one short line with the api key scrubbed out."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        text = " ".join(text.split())
        if len(text) > _DETAIL_CHARS:
            text = text[: _DETAIL_CHARS - 1] + "…"
        return text


def _json_or_none(response: httpx.Response) -> Any:
    """Return the decoded JSON body, or None when there is none or it is not JSON."""
    try:
        return response.json()
    except ValueError:  # also covers UnicodeDecodeError
        return None


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
    text = response.text.strip() if body is None else ""
    # An HTML page (proxy error, login form) says nothing useful on one line.
    if text.startswith("<"):
        return ""
    return text


def _message_id(response: httpx.Response) -> str | None:
    """Return the message id from any of WAHA's engine-dependent success bodies."""
    body = _json_or_none(response)
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


_DELTA_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")


def _retry_after(response: httpx.Response) -> float | None:
    """Return the `Retry-After` header in seconds from now (delta or HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    match = _DELTA_SECONDS.fullmatch(value)
    if match:
        return float(match.group(1))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
