"""A Facebook Page through Meta's Graph API.

Every path starts with the configured version (`api_version`, e.g. "v25.0"); the Page access
token travels in the `Authorization: Bearer` header, never in a URL. An alert becomes one of:

- a link post, `POST /{page-id}/feed` (`message`, `link`): Facebook shows the link's preview;
- a photo post, `POST /{page-id}/photos` (`caption` = the same text, `published=true`): with
  the alert's own image by `url` (Facebook downloads it) when `images = true`; or with the
  alert's image card (`bridge.cards`, the "link" size, 1200×630) uploaded as `source`, with its
  Italian description as `alt_text_custom`, when the channel's `card` mode asks for it
  (`bridge.cards.wants_card`). A photo Facebook refuses goes out as a link post instead.

Both answer the new post's id (`{"id"}`; a photo answers `{"id": photo, "post_id": post}`).

Errors come as `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}` and are
classified by their code first, the HTTP status after:

- 190 (an expired, revoked or invalid token: `OAuthException`), 102, 10 and 200-299 (a
  permission the token lacks), 803 and an unknown Page -> `ChannelDownError`, whose hint says
  where to make a new Page token;
- 4, 17, 32, 613, 80001 (rate limits of the app, the user, the Page, a custom one, Pages'
  business use case) -> `TransientError`, not before the time
  `X-Business-Use-Case-Usage` estimates (`estimated_time_to_regain_access`, minutes), else
  `Retry-After`, else `RATE_LIMIT_WAIT`; 1, 2 and `is_transient` errors, 5xx, timeouts
  -> `TransientError`;
- 368 (refused as abusive or against the policies), 506 (a duplicate of the Page's last
  post), 100 (an invalid parameter) and the other 4xx -> `MessageRejected`;
- a 2xx without a post id -> `GatewayAnswerError`, never taken as a post.

Exactly once, by reading back: the Graph API takes no idempotency key and lets no client
choose a post's id, and a marker in the text would be read by every citizen. `prepare`
records when the delivery went in flight (a unix time, stored with the delivery); after a
crash `recover` reads the Page's own posts published since then, minus `CLOCK_SLACK`
(`GET /{page-id}/published_posts?since=`), and takes the one whose message is the text this
channel sends for the alert (whitespace aside) as the post. The text is a pure function of the
alert and the channel's settings, so it is found again unless the template changed between
the crash and the restart; a Page that posted the very same text in that window by hand would
be mistaken for it, which costs a missing post, never a doubled one.

`edit` reads the post (`GET /{post-id}?fields=id,message,status_type`), changes a link post's
message in place (`POST /{post-id}` `message`, answered `{"success": true}`) and reads it back.
A photo post (`status_type` "added_photos") is refused with `EditUnsupported`, as is a post
the Page no longer has: the correction goes out as a "Rettifica" follow-up.
`delete` removes a post (`DELETE /{post-id}`); one the Page no longer has counts as deleted.

`probe` asks `GET /{page-id}?fields=id,name` and `GET /me?fields=id,name`: with a Page token
`/me` is the Page itself, so a user's token or another Page's is told apart before any post.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
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
from bridge.clock import Clock
from bridge.config import ChannelConfig
from bridge.item import Alert
from bridge.template import channel_template

if TYPE_CHECKING:
    from bridge.cards import CardStyle

log = structlog.get_logger("bridge.channels.facebook")

GRAPH_API_URL = "https://graph.facebook.com"
# How many of the Page's newest posts a read-back after a crash looks at.
RECOVER_READBACK = 50
# Seconds before the in-flight time that a read-back still covers: the bridge's clock and
# Facebook's may disagree by this much.
CLOCK_SLACK = 300
# The wait after a rate limit that says nothing of when it ends: Meta counts calls over a
# rolling hour, and calling again at once only prolongs the block.
RATE_LIMIT_WAIT = 60.0

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80001})
TOKEN_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
# 190's subcodes, said in words.
TOKEN_REASONS = {
    458: "the app was removed from the account that made it",
    459: "the account that made it is checkpointed",
    460: "the password of the account that made it changed",
    463: "the Page token expired",
    464: "the account that made it is not confirmed",
    467: "the Page token is no longer valid (logged out or revoked)",
    492: "the person who made it no longer has a role on the Page",
}
TOKEN_HINT = (
    "il token della Pagina è scaduto o revocato: creane uno nuovo (Meta Business Suite > Impostazioni > "
    "Utenti di sistema > Genera token, con pages_manage_posts e pages_read_engagement; oppure "
    "developers.facebook.com/tools/explorer, poi il token della Pagina) e mettilo in {ref} di "
    "[channels.{name}]; la guida, capitolo 3, «Facebook», spiega i passi"
)
PHOTO_POST = "added_photos"

_SPACES = re.compile(r"\s+")


def outgoing(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """What a Facebook channel posts for `alert`; pure. The message is `render.plain`, laid
    out by the channel's template, fitted to 63 206 characters or the channel's `max_length`
    (the link kept whole). With `images = true`, not `plain`, an alert with an image goes as a
    photo post with the message as its caption, unless `card = "always"` puts the card there
    instead (`picture`)."""
    platform = render.platform_for(config.type, config.max_length)
    template = channel_template(config.template, config.timezone)
    fitted = render.fit(alert, platform.text_limit, lambda a: len(render.plain(a, template)))
    text = render.plain(fitted, template)
    image = alert.image_url if picture(config, alert, plain=plain) == "image" else None
    return Outgoing(text, "plain", len(text), platform.text_limit, image)


def picture(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> str | None:
    """Which picture a Facebook channel posts `alert` with; pure: "card" when its `card` mode
    asks for the card (`bridge.cards.wants_card`: "always", or "auto" and the alert has no
    image), "image" for the alert's own image (with `images = true`), None for a link post
    (always when `plain`)."""
    from bridge.cards import wants_card  # Pillow's module, loaded only where cards are drawn

    if plain:
        return None
    if wants_card(config.card, alert):
        return "card"
    if config.images and alert.image_url:
        return "image"
    return None


class FacebookChannel:
    """Posts alerts to one Facebook Page.

    Given a `ChannelConfig` of type "facebook" (with `page_id` and `token`, a Page access
    token with pages_manage_posts; `api_url` and `api_version` default to Meta's host and
    `DEFAULT_GRAPH_API_VERSION`), an `httpx.AsyncClient` owned by the caller, the cards'
    `style` (None: a card without crest, named after the feed) and the `clock` whose wall time
    `prepare` records. Raise `ValueError` at construction if `page_id` or `token` is missing.
    """

    guarantee = "exactly-once"

    def __init__(
        self,
        config: ChannelConfig,
        *,
        http: httpx.AsyncClient,
        style: CardStyle | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not config.page_id:
            raise ValueError(f"channel {config.name!r} (type facebook) needs page_id")
        if config.token is None or not config.token.value:
            raise ValueError(f"channel {config.name!r} (type facebook) needs token")
        self.name = config.name
        self._config = config
        self._page = config.page_id
        self._style = style
        self._clock = clock or Clock()
        token = config.token.value
        base = (config.api_url or GRAPH_API_URL).rstrip("/")
        self._endpoint = Endpoint(
            channel=config.name,
            platform="Facebook",
            http=http,
            base_url=f"{base}/{config.api_version}",
            timeout=config.timeout.total_seconds(),
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
            config_key="api_url",
        )

    async def prepare(self, delivery_id: str) -> str | None:
        """Return the wall time now, in unix seconds, for `recover` to read the Page's posts from."""
        return str(int(self._clock.wall().timestamp()))

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """Post `alert` to the Page; return `Posted(post id)`. A photo post (the card, or the
        alert's own image) that Facebook refuses goes as a link post instead; `plain` posts
        the link post at once. Raise the errors the module docstring lists."""
        message = outgoing(self._config, alert, plain=plain)
        kind = picture(self._config, alert, plain=plain)
        if kind is not None:
            try:
                return await self._post_photo(alert, message.text, kind)
            except MessageRejected as exc:
                log.warning("Facebook refused the photo post; posting the link post", channel=self.name,
                            error=str(exc))
        data = {"message": message.text}
        if alert.link:
            data["link"] = alert.link
        path = f"/{quote(self._page, safe='')}/feed"
        return self._posted(await self._endpoint.call("POST", path, "posting", data=data), path, "posting")

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """Return `Posted(post id, verified=True)` when one of the Page's posts published since
        the delivery went in flight (`token`, the time `prepare` recorded) is this alert's, None
        when none is. Raise `TransientError` when Facebook cannot tell now, `ChannelDownError`
        when it refuses the token."""
        params: dict[str, str | int] = {"fields": "id,message,created_time", "limit": RECOVER_READBACK}
        if token is not None and token.isdigit():
            params["since"] = max(0, int(token) - CLOCK_SLACK)
        path = f"/{quote(self._page, safe='')}/published_posts"
        doing = "reading the Page's posts back"
        response = await self._endpoint.call("GET", path, doing, params=params)
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        posts = body.get("data") if isinstance(body, dict) else None
        if not isinstance(posts, list):
            raise unexpected_answer(self._endpoint, response, path, "a list of the Page's posts")
        texts = {_same(outgoing(self._config, alert, plain=plain).text) for plain in (False, True)}
        for post in posts:
            if isinstance(post, dict) and isinstance(post.get("id"), str) \
                    and isinstance(post.get("message"), str) and _same(post["message"]) in texts:
                return Posted(post["id"], verified=True)
        return None

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Replace the message of link post `remote_id` with `outgoing(alert)`'s and read it
        back; return `Posted(remote_id, verified)` (verified: the new message is there). Raise
        `EditUnsupported` for a photo post or a post the Page no longer has, else the errors
        of `send`."""
        path = f"/{quote(remote_id, safe='')}"
        current = await self._read_post(path, remote_id, "reading the post to edit")
        if current.get("status_type") == PHOTO_POST:
            raise EditUnsupported(
                f"{self.name}: post {remote_id} is a photo post, whose caption the bridge does not edit",
                hint='a correction goes out as a "Rettifica" follow-up',
            )
        text = outgoing(self._config, alert, plain=plain).text
        doing = "editing a post"
        response = await self._endpoint.call("POST", path, doing, data={"message": text})
        if response.status_code == 400 and _gone(json_or_none(response)):
            raise self._gone(remote_id, json_or_none(response))
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        if not isinstance(body, dict) or body.get("success") is not True:
            raise unexpected_answer(self._endpoint, response, path, 'a Graph API {"success": true}')
        after = await self._read_post(path, remote_id, "reading the edited post back")
        shown = after.get("message")
        return Posted(remote_id, verified=isinstance(shown, str) and _same(shown) == _same(text))

    async def delete(self, remote_id: str) -> bool:
        """Delete post `remote_id` from the Page (`DELETE /{post-id}`, answered `{"success":
        true}`). Return True when deleted, False when the Page no longer has it (code 100,
        subcode 33); raise the errors of `send` otherwise."""
        path = f"/{quote(remote_id, safe='')}"
        doing = "deleting a post"
        response = await self._endpoint.call("DELETE", path, doing)
        body = json_or_none(response)
        if response.status_code in (400, 404) and _gone(body):
            return False
        if not response.is_success:
            raise self._error_for(response, doing)
        if not isinstance(body, dict) or body.get("success") is not True:
            raise unexpected_answer(self._endpoint, response, path, 'a Graph API {"success": true}')
        return True

    async def probe(self) -> str:
        """Return 'Page "name" (id)' when the token is this Page's own token. Posts nothing.

        Raise `ChannelDownError` for a token Facebook refuses, an unknown Page, or a token that
        is not the Page's (a user's, another Page's); `TransientError` when it cannot be reached.
        """
        page = await self._describe(f"/{quote(self._page, safe='')}", "asking for the Page")
        me = await self._describe("/me", "asking whose token it is")
        if str(me.get("id")) != self._page:
            ref = self._config.token.ref if self._config.token else "token"
            who = f'"{me.get("name")}" ({me.get("id")})' if me.get("name") else str(me.get("id"))
            raise ChannelDownError(
                f"{self.name}: the token is not the Page's own token: it belongs to {who}, not to Page "
                f"{self._page}",
                hint=TOKEN_HINT.format(ref=ref, name=self.name),
            )
        return f'Page "{page.get("name") or self._page}" ({self._page})'

    async def aclose(self) -> None:
        """Do nothing: the http client is shared and closed by its owner."""

    # -- the requests ------------------------------------------------------------------------

    async def _post_photo(self, alert: Alert, caption: str, kind: str) -> Posted:
        path = f"/{quote(self._page, safe='')}/photos"
        data = {"caption": caption, "published": "true"}
        if kind == "image" and alert.image_url:
            data["url"] = alert.image_url
            response = await self._endpoint.call("POST", path, "posting a photo", data=data)
        else:
            from bridge.cards import alt_text, draw_card

            # About a tenth of a second of drawing: off the event loop, which serves the other channels.
            card = await asyncio.to_thread(draw_card, alert, size="link", style=self._style,
                                           tz=self._config.timezone)
            data["alt_text_custom"] = alt_text(alert)
            response = await self._endpoint.call("POST", path, "posting the card", data=data,
                                                 files={"source": ("scheda.png", card, "image/png")})
        return self._posted(response, path, "posting a photo")

    def _posted(self, response: httpx.Response, path: str, doing: str) -> Posted:
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        ident = (body.get("post_id") or body.get("id")) if isinstance(body, dict) else None
        if not isinstance(ident, str) or not ident:
            raise unexpected_answer(self._endpoint, response, path, "a Graph API post id")
        return Posted(ident)

    async def _read_post(self, path: str, remote_id: str, doing: str) -> dict[str, Any]:
        response = await self._endpoint.call("GET", path, doing, params={"fields": "id,message,status_type"})
        body = json_or_none(response)
        if response.status_code in (400, 404) and _gone(body):
            raise self._gone(remote_id, body)
        if not response.is_success:
            raise self._error_for(response, doing)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise unexpected_answer(self._endpoint, response, path, "a Graph API post")
        return body

    async def _describe(self, path: str, doing: str) -> dict[str, Any]:
        response = await self._endpoint.call("GET", path, doing, params={"fields": "id,name"})
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        if not isinstance(body, dict) or not body.get("id"):
            raise ChannelDownError(
                f"{self.name}: {self._endpoint.display_url}{path} did not describe a Facebook object",
                hint=f"check api_url of [channels.{self.name}]: leave it out for Meta's own "
                f"{GRAPH_API_URL}",
            )
        return body

    def _gone(self, remote_id: str, body: Any) -> EditUnsupported:
        return EditUnsupported(
            f"{self.name}: post {remote_id} is no longer on the Page ({_graph_error(body).get('message', '')})",
            hint='a correction goes out as a "Rettifica" follow-up',
        )

    def _error_for(self, response: httpx.Response, doing: str) -> ChannelError:
        """Classify a non-2xx answer into the error the outbox acts on."""
        error = _graph_error(json_or_none(response))
        code, subcode = _number(error.get("code")), _number(error.get("error_subcode"))
        detail = str(error.get("message") or short_text(response))
        if code is not None:  # first: a long message is cut at the end
            detail = f"code {code}" + (f", subcode {subcode}" if subcode is not None else "") + f": {detail}"
        message = self._endpoint.answered(response, doing, detail)
        ref = self._config.token.ref if self._config.token else "token"
        if code in TOKEN_CODES:
            reason = TOKEN_REASONS.get(subcode or 0, "Facebook refuses the Page token (expired, revoked or invalid)")
            said = message.removeprefix(f"{self.name}: ")
            return ChannelDownError(f"{self.name}: {reason} ({said})", hint=TOKEN_HINT.format(ref=ref, name=self.name))
        if code in PERMISSION_CODES:
            return ChannelDownError(
                message,
                hint=f"the token in {ref} of [channels.{self.name}] lacks a permission: a Page token with "
                "pages_manage_posts and pages_read_engagement, made by someone who can create content "
                "on the Page",
            )
        if code in RATE_LIMIT_CODES:
            return TransientError(message, retry_after=rate_limit_wait(response),
                                  hint="Facebook's rate limit; the alert stays queued")
        if code in (1, 2) or error.get("is_transient") is True or response.status_code >= 500:
            return TransientError(message, retry_after=retry_after(response),
                                  hint="Facebook is busy or failing; the alert stays queued")
        if code == 803 or (code == 100 and subcode == 33):
            return ChannelDownError(
                message, hint=f"check page_id of [channels.{self.name}]: the Page's numeric id")
        if response.status_code in (401, 403):
            return ChannelDownError(message, hint=TOKEN_HINT.format(ref=ref, name=self.name))
        if response.status_code == 404 and not error:
            return ChannelDownError(
                message, hint=f"check api_url and api_version of [channels.{self.name}]")
        if 400 <= response.status_code < 500:
            hints = {368: "Facebook refused this post as against its policies",
                     506: "Facebook refuses a post identical to the Page's previous one"}
            return MessageRejected(message, hint=hints.get(code or 0, "Facebook refused this post"))
        return ChannelDownError(message, hint=f"check api_url of [channels.{self.name}]")


def rate_limit_wait(response: httpx.Response) -> float:
    """Seconds to wait after a rate limit: the longest `estimated_time_to_regain_access`
    (minutes) of `X-Business-Use-Case-Usage` or `X-Page-Usage`, else `Retry-After`, at least
    `RATE_LIMIT_WAIT`."""
    minutes = [m for name in ("X-Business-Use-Case-Usage", "X-Page-Usage", "X-App-Usage")
               for m in _regain_minutes(response.headers.get(name))]
    if minutes:
        return max(RATE_LIMIT_WAIT, max(minutes) * 60.0)
    return max(RATE_LIMIT_WAIT, retry_after(response) or 0.0)


def _regain_minutes(header: str | None) -> Iterable[float]:
    """Every `estimated_time_to_regain_access` in a usage header (JSON: an object, or a map of
    business ids to lists of objects)."""
    if not header:
        return []
    try:
        usage = json.loads(header)
    except ValueError:
        return []
    entries: list[Any] = [usage]
    if isinstance(usage, dict):
        for value in usage.values():
            entries.extend(value if isinstance(value, list) else [value])
    found = []
    for entry in entries:
        if isinstance(entry, dict):
            value = entry.get("estimated_time_to_regain_access")
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                found.append(float(value))
    return found


def _graph_error(body: Any) -> dict[str, Any]:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _gone(body: Any) -> bool:
    """Whether a Graph error says the object does not exist (code 100, subcode 33)."""
    error = _graph_error(body)
    return _number(error.get("code")) == 100 and _number(error.get("error_subcode")) == 33


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _same(text: str) -> str:
    """`text` as compared with what Facebook gives back: runs of whitespace as one space."""
    return _SPACES.sub(" ", text).strip()

