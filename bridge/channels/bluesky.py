"""A Bluesky account through the AT Protocol's XRPC API (plain HTTP against the lexicons).

A post is `POST {service}/xrpc/com.atproto.repo.createRecord` `{"repo": <did>, "collection":
"app.bsky.feed.post", "rkey": <record key>, "record": {"$type", "text", "createdAt", "langs",
"facets", "embed"}}` with `Authorization: Bearer <access JWT>`; success answers `{"uri", "cid"}`
and the `uri` (at://did/app.bsky.feed.post/rkey) is the post's remote id.

The session: `com.atproto.server.createSession` with the handle and an app password gives an
access JWT and a refresh JWT. Logging in is limited to a few hundred times a day, so it happens
once: the session is kept in the state directory (`bluesky-<channel>.session.json`, mode 0600,
written atomically; owned by this channel, safe to delete: the next post logs in again) and
reused after a restart. An access JWT the server calls expired (`ExpiredToken`) is renewed with
`com.atproto.server.refreshSession`; a refresh JWT that no longer works (`ExpiredToken`,
`InvalidToken`) is replaced by the file's, if another process (`check --online`) renewed it
meanwhile, else by logging in again. A refused login is not tried again with the same app
password for an hour (`LOGIN_RETRY`): the paused channel's health probe would spend the day's
logins on it; a reload with a new app password makes a new channel, which logs in at once.

Exactly once, by construction: the record key is fixed before the first request of a delivery
(`prepare`: a TID, the syntax app.bsky.feed.post requires, made of the moment of the first
attempt and a clock id taken from the delivery id) and stored with it, so every resend carries
the same key and the server cannot hold two posts for one delivery. A create whose key is
taken is refused (today's PDS answers 500, newer ones an explicit error): whenever a create
fails in a way that may mean "already there", `com.atproto.repo.getRecord` by that key says
whether the post exists, and if it does the delivery is posted. `recover`, after a crash, asks
the same question first.

The text is `render.bluesky`: plain text laid out by the channel's template within 300 grapheme
clusters (and 3000 bytes), the link kept whole and made a link by a facet, whose offsets count
UTF-8 bytes. With a link the post carries an external embed (a link card: the link, the title,
the summary, a thumbnail blob uploaded by `com.atproto.repo.uploadBlob`); without one, the
picture goes as an image with its alt text (`bridge.cards.alt_text`). The picture is the
alert's image card (`bridge.cards.draw_card(size="link")`) when the channel's `card` wants it
(`bridge.cards.wants_card`), else the alert's own image when `images = true`.

Answers are classified so the outbox can act on the error's class alone:

- connection errors, timeouts, 408, 429 (`Retry-After`, else `RateLimit-Reset`, a unix
  time), 5xx -> `TransientError`;
- a refused app password or account (401, 403, a login that fails) and an address that is not
  a PDS (404) -> `ChannelDownError`, with what to do;
- the other 4xx (a post the lexicon refuses, a blob too large) -> `MessageRejected`;
- a 2xx that is not the lexicon's answer -> `GatewayAnswerError`.

Bluesky posts cannot be edited: `edit` raises `EditUnsupported` (a "Rettifica" follow-up
goes out instead). `delete` reads the post by its key (`getRecord`: False when it is no longer
there), then removes it (`com.atproto.repo.deleteRecord`).

Plain httpx rather than the `atproto` SDK: eight XRPC calls with small JSON bodies, whose errors
must be classified by status and XRPC error name for the outbox, over the caller's shared
client with its deadlines and secret scrubbing (`Endpoint`); the SDK brings its own HTTP
client, generated models for the whole lexicon and a session handling of its own that would
have to be bent to keep the session in the state directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from bridge.channels.endpoint import Endpoint, json_or_none, retry_after, short_text, unexpected_answer
from bridge.config import ChannelConfig
from bridge.images import ImageLoader
from bridge.item import Alert
from bridge.template import channel_template

if TYPE_CHECKING:
    from bridge.cards import CardStyle

log = structlog.get_logger("bridge.channels.bluesky")

DEFAULT_SERVICE = "https://bsky.social"
COLLECTION = "app.bsky.feed.post"
SESSION_FILE = "bluesky-{name}.session.json"
# The lexicons' bounds: a blob for an image or a link card's thumbnail, a card's title and text.
BLOB_LIMIT = 1_000_000
# What a create may answer when its record key is taken: the reference PDS's 500 today, the
# explicit error newer servers give.
_TAKEN_ERRORS = frozenset({"RecordAlreadyExists", "AlreadyExists"})
# A call's tries with a renewed session: the file's session another process renewed may itself
# need a refresh before it works.
_SESSION_TRIES = 3
# After a refused login, how long the same app password is not tried again: a paused channel's
# health probe (every few minutes) would otherwise spend Bluesky's daily logins on it.
LOGIN_RETRY = 3600.0
_TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_POST_URI = re.compile(r"at://(?P<repo>[^/]+)/app\.bsky\.feed\.post/(?P<rkey>[A-Za-z0-9._:~-]{1,512})")
# A link in the text: to the next space, without the punctuation that ends a sentence.
_URL = re.compile(r"https?://\S+")
_URL_TRAILING = ".,;:!?\"'»)]…"


def outgoing(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """What a Bluesky channel posts for `alert`; pure. The text is `render.bluesky` within 300
    grapheme clusters (or the channel's `max_length`), the link whole. `image_url` is the
    alert's own image when `images = true`, not `plain`, and the channel's `card` does not
    want the card instead; the card itself is drawn at send time."""
    from bridge.cards import wants_card

    limit = render.platform_for("bluesky", config.max_length).text_limit
    template = channel_template(config.template, config.timezone)
    text = render.bluesky(alert, limit, template)
    image = (alert.image_url if config.images and not plain and alert.image_url
             and not wants_card(config.card, alert) else None)
    return Outgoing(text, "plain", render.bluesky_length(text), limit, image)


def record_key(delivery_id: str, moment: datetime) -> str:
    """The record key of a delivery first attempted at `moment`: a TID (13 characters of
    base32-sortable, a 53-bit count of microseconds then a 10-bit clock id), its clock id taken
    from `delivery_id`, so two deliveries prepared in the same microsecond still differ."""
    micros = int(moment.timestamp() * 1_000_000) & ((1 << 53) - 1)
    clock = int.from_bytes(hashlib.sha256(delivery_id.encode("utf-8")).digest()[:2], "big") & 0x3FF
    value = (micros << 10) | clock
    return "".join(_TID_CHARS[(value >> (5 * place)) & 31] for place in reversed(range(13)))


def link_facets(text: str) -> list[dict[str, Any]]:
    """A link facet for every http(s) URL in `text`, its span in UTF-8 bytes as the lexicon
    counts (`byteStart` inclusive, `byteEnd` exclusive); pure."""
    facets: list[dict[str, Any]] = []
    for match in _URL.finditer(text):
        url = match.group()
        while url and url[-1] in _URL_TRAILING and not (url[-1] == ")" and url.count("(") >= url.count(")")):
            url = url[:-1]
        if len(url) <= len("https://"):
            continue
        start = len(text[: match.start()].encode("utf-8"))
        facets.append({
            "index": {"byteStart": start, "byteEnd": start + len(url.encode("utf-8"))},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
        })
    return facets


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in session: the account's `did` and `handle`, its two JWTs."""

    did: str
    handle: str
    access: str
    refresh: str


class SessionFile:
    """The session of one channel kept at `path` (None: in memory only), for `service` and
    `handle`: a session of another account or PDS is not used."""

    def __init__(self, path: Path | None, service: str, handle: str) -> None:
        self.path = path
        self._service = service
        self._handle = handle

    def load(self) -> Session | None:
        """The stored session, or None (no file, unreadable, another account's)."""
        if self.path is None:
            return None
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("Bluesky session file unreadable; logging in again", path=str(self.path), error=str(exc))
            return None
        fields = ("did", "handle", "accessJwt", "refreshJwt")
        if (not isinstance(data, dict) or data.get("service") != self._service
                or data.get("identifier") != self._handle or not all(isinstance(data.get(f), str) for f in fields)):
            return None
        return Session(data["did"], data["handle"], data["accessJwt"], data["refreshJwt"])

    def save(self, session: Session) -> None:
        """Keep `session` (mode 0600, atomically); a failure is logged, the session stays in memory."""
        if self.path is None:
            return
        from bridge.store import StateWriteError, write_atomically

        data = {"service": self._service, "identifier": self._handle, "did": session.did, "handle": session.handle,
                "accessJwt": session.access, "refreshJwt": session.refresh}
        try:
            write_atomically(self.path, json.dumps(data, indent=1).encode("utf-8"))
        except StateWriteError as exc:
            log.warning("cannot keep the Bluesky session; the next restart logs in again", error=str(exc))


class BlueskyChannel:
    """Posts alerts as posts of one Bluesky account.

    Given a `ChannelConfig` of type "bluesky" (`handle`, `app_password`, `service`, default
    https://bsky.social; its `state_dir` holds the session file) and an `httpx.AsyncClient`
    owned by the caller; `images` loads the alerts' own images; `now` is the clock the record
    keys and `createdAt` read, `monotonic` the one `LOGIN_RETRY` is measured on; `style` is the
    look of the cards it draws (`[cards]` read by the daemon; None: the plain style). Raise
    `ValueError` at construction if `handle` or `app_password` is missing.
    """

    guarantee = "exactly-once"

    def __init__(
        self,
        config: ChannelConfig,
        *,
        http: httpx.AsyncClient,
        images: ImageLoader | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        style: CardStyle | None = None,
    ) -> None:
        if not config.handle:
            raise ValueError(f"channel {config.name!r} (type bluesky) needs handle")
        if config.app_password is None or not config.app_password.value:
            raise ValueError(f"channel {config.name!r} (type bluesky) needs app_password")
        self.name = config.name
        self._config = config
        self._images = images if config.images else None
        self._now = now
        self._password = config.app_password.value
        service = (config.service or DEFAULT_SERVICE).rstrip("/")
        self._endpoint = Endpoint(
            channel=config.name, platform="Bluesky", http=http, base_url=service,
            timeout=config.timeout.total_seconds(), secrets=[self._password], config_key="service",
        )
        path = config.state_dir / SESSION_FILE.format(name=config.name) if config.state_dir is not None else None
        self._file = SessionFile(path, service, config.handle)
        self._session: Session | None = None
        self._renewing = asyncio.Lock()
        self._style = style
        self._last_key_moment: datetime | None = None
        self._monotonic = monotonic
        self._refused: tuple[float, ChannelDownError] | None = None  # the last refused login, and when

    # -- the protocol --------------------------------------------------------------------------

    async def prepare(self, delivery_id: str) -> str | None:
        """Return the record key of this delivery (see `record_key`), stored with it. Each key
        is of a later microsecond than the one before, even when the clock stands still or
        steps back, so no two deliveries share one."""
        moment = self._now()
        if self._last_key_moment is not None and moment <= self._last_key_moment:
            moment = self._last_key_moment + timedelta(microseconds=1)
        self._last_key_moment = moment
        return record_key(delivery_id, moment)

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """Post `alert` under the record key `token` (None: a new one); return
        `Posted(at:// uri)`. A key already taken by an earlier attempt's post returns that post.
        When `plain`, no embed. Raise the errors the module docstring lists."""
        message = outgoing(self._config, alert, plain=plain)
        rkey = token or await self.prepare(delivery_id) or ""
        record: dict[str, Any] = {
            "$type": COLLECTION,
            "text": message.text,
            "createdAt": self._now().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "langs": [self._config.language],
        }
        facets = link_facets(message.text)
        if facets:
            record["facets"] = facets
        if not plain:
            embed = await self._embed(alert, message)
            if embed is not None:
                record["embed"] = embed
        return await self._create(rkey, record)

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """Return the post under the delivery's record key if the server has it, else None."""
        if token is None:
            return None
        uri = await self._find(token)
        return Posted(uri, verified=True) if uri is not None else None

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Raise `EditUnsupported`: Bluesky has no edit."""
        raise EditUnsupported(f"{self.name}: Bluesky posts cannot be edited",
                              hint='a correction goes out as a "Rettifica" follow-up')

    async def delete(self, remote_id: str) -> bool:
        """Delete the post `remote_id` (its at:// uri); see the module docstring. Return True
        when deleted, False when the account no longer has it. Raise `DeleteUnsupported`,
        without a request, for an id that is not a post's uri."""
        match = _POST_URI.fullmatch(remote_id)
        if match is None:
            raise DeleteUnsupported(f"{self.name}: cannot delete on this platform: {remote_id!r} is not the "
                                    "address of a Bluesky post", hint="the history holds the post's at:// address")
        rkey = match.group("rkey")
        if await self._find(rkey) is None:
            return False
        doing = "deleting a post"
        session = await self._current()
        response = await self._xrpc("POST", "com.atproto.repo.deleteRecord", doing,
                                    json_body={"repo": session.did, "collection": COLLECTION, "rkey": rkey})
        if not response.is_success:
            raise self._error_for(response, doing)
        if not isinstance(json_or_none(response), dict):
            raise unexpected_answer(self._endpoint, response, "/xrpc/com.atproto.repo.deleteRecord",
                                    "a Bluesky commit")
        return True

    async def probe(self) -> str:
        """Return "@handle (did) on host" when the account can post (logging in only if no
        session is kept). Raise `ChannelDownError` for a refused app password or an account that
        is not active, `TransientError` when the PDS cannot be reached."""
        doing = "checking the session"
        response = await self._xrpc("GET", "com.atproto.server.getSession", doing)
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        if not isinstance(body, dict) or not isinstance(body.get("did"), str):
            raise unexpected_answer(self._endpoint, response, "/xrpc/com.atproto.server.getSession",
                                    "a Bluesky session")
        if body.get("active") is False:
            raise ChannelDownError(
                f"{self.name}: the Bluesky account {body.get('handle', '')} is not active "
                f"({body.get('status', 'deactivated')})",
                hint="the account cannot post: reactivate it in the Bluesky app, or check its e-mail from Bluesky")
        doing = "resolving the handle"
        response = await self._xrpc("GET", "com.atproto.repo.describeRepo", doing, params={"repo": body["did"]})
        if not response.is_success:
            raise self._error_for(response, doing)
        repo = json_or_none(response)
        handle = str(body.get("handle") or self._config.handle)
        resolves = isinstance(repo, dict) and repo.get("handleIsCorrect") is not False
        note = "" if resolves else ", but the handle does not resolve to it"
        return f"@{handle} ({body['did']}) on {httpx.URL(self._endpoint.base_url).host}{note}"

    async def aclose(self) -> None:
        """Do nothing: the http client and the image loader are shared and closed by their owner."""

    # -- records -------------------------------------------------------------------------------

    async def _create(self, rkey: str, record: dict[str, Any]) -> Posted:
        doing = "posting"
        session = await self._current()
        body = {"repo": session.did, "collection": COLLECTION, "rkey": rkey, "record": record}
        response = await self._xrpc("POST", "com.atproto.repo.createRecord", doing, json_body=body)
        if response.is_success:
            answer = json_or_none(response)
            uri = answer.get("uri") if isinstance(answer, dict) else None
            if not isinstance(uri, str) or not uri.startswith("at://"):
                raise unexpected_answer(self._endpoint, response, "/xrpc/com.atproto.repo.createRecord",
                                        "a Bluesky record")
            return Posted(uri)
        error = self._error_for(response, doing)
        if _may_be_taken(response):
            try:
                uri = await self._find(rkey)
            except ChannelError:
                raise error from None
            if uri is not None:
                log.info("the post of this delivery is already on Bluesky; not posting again",
                         channel=self.name, rkey=rkey, uri=uri)
                return Posted(uri, verified=True)
        raise error

    async def _find(self, rkey: str) -> str | None:
        """The uri of this account's post under `rkey`, or None when there is none."""
        doing = "looking for the post"
        session = await self._current()
        response = await self._xrpc("GET", "com.atproto.repo.getRecord", doing,
                                    params={"repo": session.did, "collection": COLLECTION, "rkey": rkey})
        body = json_or_none(response)
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code in (400, 404) and error == "RecordNotFound":
            return None
        if not response.is_success:
            raise self._error_for(response, doing)
        uri = body.get("uri") if isinstance(body, dict) else None
        if not isinstance(uri, str) or not uri.startswith("at://"):
            raise unexpected_answer(self._endpoint, response, "/xrpc/com.atproto.repo.getRecord", "a Bluesky record")
        return uri

    # -- the embed -----------------------------------------------------------------------------

    async def _embed(self, alert: Alert, message: Outgoing) -> dict[str, Any] | None:
        """The link card (external embed) for an alert with a link, else its picture with
        alt text; None for neither. A picture that cannot be had or uploaded is left out."""
        picture = await self._picture(alert, message)
        blob = await self._upload(*picture) if picture is not None else None
        if alert.link:
            external: dict[str, Any] = {"uri": alert.link, "title": alert.title, "description": alert.summary}
            if blob is not None:
                external["thumb"] = blob
            return {"$type": "app.bsky.embed.external", "external": external}
        if blob is None or picture is None:
            return None
        from bridge.cards import alt_text

        image: dict[str, Any] = {"image": blob, "alt": alt_text(alert)}
        if picture[2] is not None:
            image["aspectRatio"] = {"width": picture[2][0], "height": picture[2][1]}
        return {"$type": "app.bsky.embed.images", "images": [image]}

    async def _picture(self, alert: Alert, message: Outgoing) -> tuple[bytes, str, tuple[int, int] | None] | None:
        """(bytes, type, size) of the picture this post carries: the card when the channel's
        `card` wants it, else the alert's own image when enabled; None for none."""
        from bridge.cards import SIZES, draw_card, wants_card

        if wants_card(self._config.card, alert):
            png = await asyncio.to_thread(draw_card, alert, size="link", style=self._style, tz=self._config.timezone)
            return png, "image/png", SIZES["link"]
        if message.image_url and self._images is not None:
            image = await self._images.load(message.image_url)
            if image is not None:
                return image.data, image.mimetype, None
        return None

    async def _upload(self, data: bytes, mimetype: str, size: tuple[int, int] | None) -> dict[str, Any] | None:
        """Upload a picture as a blob; return the blob reference, or None (logged)."""
        if len(data) > BLOB_LIMIT:
            log.warning("picture over Bluesky's 1 MB; posting without it", channel=self.name, bytes=len(data))
            return None
        doing = "uploading a picture"
        try:
            response = await self._xrpc("POST", "com.atproto.repo.uploadBlob", doing, content=data,
                                        headers={"Content-Type": mimetype})
            if not response.is_success:
                raise self._error_for(response, doing)
        except ChannelError as exc:
            log.warning("picture upload failed; posting without it", channel=self.name, error=str(exc))
            return None
        body = json_or_none(response)
        blob = body.get("blob") if isinstance(body, dict) else None
        if not isinstance(blob, dict) or blob.get("$type") != "blob":
            log.warning("Bluesky's upload answer has no blob; posting without the picture", channel=self.name)
            return None
        return blob

    # -- the session ---------------------------------------------------------------------------

    async def _xrpc(self, method: str, nsid: str, doing: str, *, json_body: Any = None, content: bytes | None = None,
                    params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """One authenticated XRPC call; an expired access JWT is refreshed, a session the server
        no longer knows is replaced (by the file's, if another process renewed it, else by a new
        login), and the call is made again: at most `_SESSION_TRIES` times in all."""
        session = await self._current()
        for attempt in range(1, _SESSION_TRIES + 1):
            response = await self._endpoint.call(
                method, f"/xrpc/{nsid}", doing, json_body=json_body, content=content, params=params,
                headers={**(headers or {}), "Authorization": f"Bearer {session.access}"},
            )
            problem = _token_problem(response)
            if problem is None or attempt == _SESSION_TRIES:
                return response
            session = await self._renew(session, expired=problem == "ExpiredToken")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _current(self) -> Session:
        """The session in use: the kept one, else a new login."""
        if self._session is None:
            async with self._renewing:
                if self._session is None:
                    self._session = self._file.load() or await self._log_in()
        return self._session

    async def _renew(self, stale: Session, *, expired: bool) -> Session:
        """A working session in place of `stale`: refreshed when only its access JWT `expired`,
        else (or when the refresh fails) the file's if another process renewed it, else a login."""
        async with self._renewing:
            if self._session is not None and self._session != stale:
                return self._session  # renewed by a concurrent call
            session = await self._refresh(stale) if expired else None
            if session is None:
                kept = self._file.load()
                session = kept if kept is not None and kept.refresh != stale.refresh else await self._log_in()
            self._session = session
            return session

    async def _refresh(self, stale: Session) -> Session | None:
        """`refreshSession` with the refresh JWT; None when the server no longer takes it."""
        doing = "refreshing the session"
        response = await self._endpoint.call("POST", "/xrpc/com.atproto.server.refreshSession", doing,
                                             headers={"Authorization": f"Bearer {stale.refresh}"})
        if _token_problem(response) is not None:
            log.info("Bluesky refresh token no longer valid", channel=self.name)
            return None
        session = self._session_from(response, doing, "/xrpc/com.atproto.server.refreshSession")
        self._file.save(session)
        log.info("Bluesky session refreshed", channel=self.name)
        return session

    async def _log_in(self) -> Session:
        """`createSession` with the handle and the app password; the session is kept. A login
        refused less than `LOGIN_RETRY` seconds ago is not tried again: its error is raised."""
        doing = "logging in"
        if self._refused is not None and self._monotonic() - self._refused[0] < LOGIN_RETRY:
            raise self._refused[1]
        response = await self._endpoint.call("POST", "/xrpc/com.atproto.server.createSession", doing,
                                             json_body={"identifier": self._config.handle,
                                                        "password": self._password})
        if response.status_code in (400, 401, 403):
            refused = self._login_refused(response)
            self._refused = (self._monotonic(), refused)
            raise refused
        self._refused = None
        session = self._session_from(response, doing, "/xrpc/com.atproto.server.createSession")
        self._file.save(session)
        log.info("logged in to Bluesky", channel=self.name, handle=session.handle)
        return session

    def _session_from(self, response: httpx.Response, doing: str, path: str) -> Session:
        if not response.is_success:
            raise self._error_for(response, doing)
        body = json_or_none(response)
        fields = ("did", "handle", "accessJwt", "refreshJwt")
        if not isinstance(body, dict) or not all(isinstance(body.get(f), str) and body[f] for f in fields):
            raise unexpected_answer(self._endpoint, response, path, "a Bluesky session")
        return Session(body["did"], body["handle"], body["accessJwt"], body["refreshJwt"])

    def _login_refused(self, response: httpx.Response) -> ChannelDownError:
        body = json_or_none(response)
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        ref = self._config.app_password.ref if self._config.app_password else "app_password"
        if error == "AuthFactorTokenRequired":
            hint = (f"app_password ({ref}) of [channels.{self.name}] is the account's own password: "
                    "use an app password (Bluesky: Settings > Privacy and security > App passwords)")
        elif error in ("AccountTakedown", "AccountDeactivated"):
            hint = "the account is suspended or deactivated: it cannot post until Bluesky restores it"
        else:
            hint = (f"check handle and app_password ({ref}) of [channels.{self.name}]: the app password may "
                    "have been revoked; make a new one in Bluesky: Settings > Privacy and security > App passwords")
        return ChannelDownError(self._endpoint.answered(response, "logging in", _detail(response)), hint=hint)

    # -- errors --------------------------------------------------------------------------------

    def _error_for(self, response: httpx.Response, doing: str) -> ChannelError:
        """Classify a non-2xx answer into the error the outbox acts on."""
        code = response.status_code
        message = self._endpoint.answered(response, doing, _detail(response))
        if code == 429:
            return TransientError(message, retry_after=rate_limit_wait(response),
                                  hint="Bluesky's rate limit; the alert stays queued")
        if code == 408 or code >= 500:
            return TransientError(message, retry_after=retry_after(response),
                                  hint="the PDS is busy or failing; the alert stays queued")
        ref = self._config.app_password.ref if self._config.app_password else "app_password"
        if code in (401, 403) or _token_problem(response) is not None:
            return ChannelDownError(
                message, hint=f"check handle and app_password ({ref}) of [channels.{self.name}]: the app password "
                "may have been revoked, or the account suspended")
        if code == 404:
            return ChannelDownError(message, hint=f"check service of [channels.{self.name}]: it must be the "
                                    "account's PDS (https://bsky.social for most accounts)")
        if 400 <= code < 500:
            return MessageRejected(message, hint="Bluesky refused this post (text, link card or picture)")
        return ChannelDownError(message, hint=f"check service of [channels.{self.name}]")


def _detail(response: httpx.Response) -> str:
    """"Error: message" of an XRPC error body, else the body's text."""
    body = json_or_none(response)
    if isinstance(body, dict) and (body.get("error") or body.get("message")):
        return ": ".join(str(body[key]) for key in ("error", "message") if body.get(key))
    return short_text(response)


def _token_problem(response: httpx.Response) -> str | None:
    """"ExpiredToken" / "InvalidToken" when the server refused the JWT a call carried, else None."""
    if response.status_code not in (400, 401):
        return None
    body = json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    if error in ("ExpiredToken", "InvalidToken"):
        return str(error)
    return None


def _may_be_taken(response: httpx.Response) -> bool:
    """Whether a refused create may mean that its record key is taken (by an earlier attempt)."""
    if response.status_code >= 500 or response.status_code == 409:
        return True
    body = json_or_none(response)
    if not isinstance(body, dict):
        return False
    return body.get("error") in _TAKEN_ERRORS or "already exists" in str(body.get("message", "")).lower()


def rate_limit_wait(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds to wait after a 429: `Retry-After`, else `RateLimit-Reset` (a unix time, as the
    PDS sends it), else None."""
    wait = retry_after(response)
    if wait is not None:
        return wait
    reset = response.headers.get("RateLimit-Reset")
    try:
        when = float(reset) if reset is not None else None
    except ValueError:
        return None
    if when is None:
        return None
    return max(0.0, when - (time.time() if now is None else now))
