"""One platform's HTTP API as a channel sees it: requests with a deadline, transport failures
classified, secrets scrubbed from every message.

Each channel module decides what a status code means for its platform; this module only
handles what is the same everywhere: connection errors and timeouts are `TransientError`,
a URL that cannot work is `ChannelDownError`, a redirect is never followed (it would turn a
POST into a GET and means `url` is not the API's own address), and no text that reaches an
error message contains a secret, even when a server echoes one back or the secret is part of
the URL (Telegram's bot token).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from bridge.channels.base import ChannelDownError, ChannelError, GatewayAnswerError, TransientError
from bridge.logs import secret_forms

# How much of a server's own text goes into a message: enough to recognise the problem,
# short enough to stay on one log line.
DETAIL_CHARS = 160
SCRUBBED = "***"

_DELTA_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


class Endpoint:
    """Sends requests to `base_url` + path for channel `channel` of platform `platform`.

    `headers` go with every request (credentials); `secrets` are scrubbed from every error
    text; `display_url` is what messages show instead of `base_url` (which may hold a
    secret); `config_key` names the setting to check when the URL cannot work.
    """

    def __init__(
        self,
        *,
        channel: str,
        platform: str,
        http: httpx.AsyncClient,
        base_url: str,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        display_url: str | None = None,
        config_key: str = "url",
    ) -> None:
        self.channel = channel
        self.platform = platform
        self.base_url = base_url
        self.display_url = (display_url or base_url).rstrip("/")
        self.timeout = timeout
        self._http = http
        self._headers = dict(headers or {})
        # Every form a secret can be printed in (percent-encoded in a URL, escaped in JSON or
        # a repr), longest first, so that a secret containing another is scrubbed whole.
        self._secrets = sorted({form for s in secrets for form in secret_forms(s)}, key=len, reverse=True)
        self._config_key = config_key

    async def call(
        self,
        method: str,
        path: str,
        doing: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request and return the response, whatever its status.

        `doing` completes "while ..." in messages ("sending", "asking the session status").
        Raise `TransientError` for a timeout or a connection that failed (the request may
        have gone through when it timed out: the message says so), `ChannelDownError` for a
        URL that cannot work (bad scheme, invalid).
        """
        # An empty path is the URL exactly as configured (a webhook's trailing slash matters).
        url = self.base_url.rstrip("/") + path if path else self.base_url
        error: ChannelError
        cause: Exception
        try:
            return await self._http.request(
                method,
                url,
                json=json_body,
                content=content,
                data=data,
                files=files,
                params=params,
                headers={**self._headers, **(headers or {})},
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            error = TransientError(
                f"{self.channel}: {self.platform} did not answer within {self.timeout:g} s "
                f"while {doing} ({type(exc).__name__})",
                hint=f"the request may have gone through; check that {self.platform} is reachable "
                "and not overloaded",
            )
            cause = exc
        except httpx.UnsupportedProtocol as exc:
            error = ChannelDownError(
                f"{self.channel}: cannot use {self._config_key} {self.display_url!r}: "
                f"{self.one_line(str(exc))}",
                hint=f"check {self._config_key} of [channels.{self.channel}]: it must start with https:// "
                "(or http:// for a gateway on this machine)",
            )
            cause = exc
        except httpx.TransportError as exc:
            # Refused, reset, DNS failure, broken protocol: all can heal by themselves.
            reason = self.one_line(str(exc)) or type(exc).__name__
            error = TransientError(
                f"{self.channel}: cannot reach {self.platform} at {self.display_url} "
                f"while {doing}: {reason}",
                hint=f"check that {self.platform} is up and that {self._config_key} of "
                f"[channels.{self.channel}] is right",
            )
            cause = exc
        except httpx.InvalidURL as exc:
            error = ChannelDownError(
                f"{self.channel}: invalid {self._config_key} {self.display_url!r}: "
                f"{self.one_line(str(exc))}",
                hint=f"check {self._config_key} of [channels.{self.channel}]",
            )
            cause = exc
        # httpx's own error stays the cause, for the traceback, unless a secret is part of the
        # URL it may show (Telegram's token).
        raise error from (None if any(secret in self.base_url for secret in self._secrets) else cause)

    def answered(self, response: httpx.Response, doing: str, detail: str = "") -> str:
        """Return "<channel>: <platform> answered <code> while <doing>[: <detail>]", scrubbed."""
        message = f"{self.channel}: {self.platform} answered {response.status_code} while {doing}"
        detail = self.one_line(detail)
        return f"{message}: {detail}" if detail else message

    def scrub(self, text: str) -> str:
        """Return `text` with every secret replaced by `***`."""
        for secret in self._secrets:
            text = text.replace(secret, SCRUBBED)
        return text

    def one_line(self, text: str) -> str:
        """Collapse `text` to one short line with the secrets scrubbed out."""
        text = " ".join(self.scrub(text).split())
        if len(text) > DETAIL_CHARS:
            text = text[: DETAIL_CHARS - 1] + "…"
        return text


def json_or_none(response: httpx.Response) -> Any:
    """Return the decoded JSON body, or None when there is none or it is not JSON."""
    try:
        return response.json()
    except ValueError:  # also covers UnicodeDecodeError
        return None


def short_text(response: httpx.Response) -> str:
    """Return the body as text for a message, or "" for an HTML page (a proxy, a login form)."""
    text = response.text.strip()
    return "" if text.startswith("<") else text


def unexpected_answer(endpoint: Endpoint, response: httpx.Response, path: str, expected: str) -> GatewayAnswerError:
    """Return the error for a 2xx `response` to `path` that is not `expected`, the platform's
    success answer ("a WAHA message"): something else answers at the configured address.

    The message names the URL (`display_url` + `path`, no secret), says what came instead (an
    empty body, an HTML page and its title, or the start of the text) and asks whether the
    address is the gateway's own. A `GatewayAnswerError`, so the outbox retries after checking
    whether the post went out, and reports it.
    """
    key = endpoint._config_key
    return GatewayAnswerError(
        f"{endpoint.channel}: {endpoint.display_url}{path} answered {response.status_code} but not with "
        f"{expected} ({_what_came(endpoint, response)}): is {key} of [channels.{endpoint.channel}] "
        "the gateway's own address, not a proxy's login page?",
        hint="nothing is recorded as posted: the alert stays queued and is retried, after checking "
        "whether it went out",
    )


def _what_came(endpoint: Endpoint, response: httpx.Response) -> str:
    """A short, scrubbed description of a body: "an empty body", "an HTML page \"Login\"", or
    the content type and the start of the text."""
    text = response.text.strip()
    if not text:
        return "an empty body"
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if text.startswith("<") or content_type in ("text/html", "application/xhtml+xml"):
        title = _HTML_TITLE.search(text)
        name = endpoint.one_line(title.group(1)) if title else ""
        return f'an HTML page "{name}"' if name else "an HTML page"
    return f"{content_type or 'no content type'}: {endpoint.one_line(text)}"


def retry_after(response: httpx.Response, *, now: datetime | None = None) -> float | None:
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
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
