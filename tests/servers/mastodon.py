"""A fake Mastodon instance on loopback (SPEC 6).

Routes (`Authorization: Bearer <token>` on all; anything else answers 401
`{"error": "The access token is invalid"}`):

- `POST /api/v1/statuses` `{status, visibility?, language?, media_ids?}` (JSON or form) ->
  200 with the Status. An `Idempotency-Key` seen within the last hour (by `clock`) answers the
  status it created before, without creating another; a rejected status does not store its
  key, like Mastodon (the key is written only once the status exists).
  A status over `max_characters` as Mastodon counts it (`status_length`: every URL 23
  characters whatever its length, "@user@domain" as "@user", grapheme clusters) or empty
  answers 422; unknown or unprocessed `media_ids` answer 422.
- `POST /api/v2/media` (multipart `file`, `description?`) -> 200 with the attachment, or 202
  while `processing_polls` > 0; then `GET /api/v1/media/{id}` answers 206 that many times,
  then 200.
- `GET /api/v1/accounts/verify_credentials` -> the account.
- `GET /api/v1/statuses/{id}` -> the Status; `PUT /api/v1/statuses/{id}` `{status, language?,
  media_ids?, spoiler_text?, sensitive?}` (JSON or form) -> the edited Status with
  `edited_at`; like Mastodon, the attachments become exactly the `media_ids` sent (none when
  left out), and a text over the limit or blank answers 422. An unknown id answers 404
  `{"error": "Record not found"}`. Edits are in `edits`; `statuses` shows the current text.
- `DELETE /api/v1/statuses/{id}` -> 200 with the deleted Status (its `text` for a redraft, as
  Mastodon answers); the status leaves `statuses` and its id is in `deletions`; an unknown (or
  already deleted) id answers 404 `{"error": "Record not found"}`.

Switches: `token`, `max_characters`, `fail_edits(code, n=1, retry_after=None)`,
`fail_deletes(code, n=1, retry_after=None)`, `url_length`
(None: URLs count in full, as servers that count every character do), `processing_polls`, `reject_media`,
`fail_next(code, n=1, retry_after=None, reset_in=None)` (429 with `Retry-After` and/or
`X-RateLimit-Reset`, wall-clock time), `garble_next(n=1, body=, content_type=, status=200,
forward=False, every_request=False)` and `clear_garbage()` (a 2xx that is not a Status, see
`servers.garbage`; status posts and edits only unless `every_request`), `clock` (a callable returning
unix time; `advance(seconds)` moves the default one), `delay`. What exists is in `statuses`
and `media`.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from servers.garbage import GarbageSwitch, GarblingServer
from servers.loopback import LoopbackServer, Reply, Request

IDEMPOTENCY_SECONDS = 3600
ACCOUNT = {"id": "109000000000000001", "username": "comune", "acct": "comune", "display_name": "Comune"}

# Mastodon's count, written for this fake from its rules (app/validators/status_length_validator.rb)
# rather than from the bridge's code: a URL runs to the next space, minus the punctuation
# Mastodon does not take as its end; its host needs a dot and a top-level domain of letters.
_URL = re.compile(r"(?<![A-Za-z0-9@$#])https?://([^\s/?#:]+)\S*", re.IGNORECASE)
_URL_NOT_LAST = set("!*\"'「」<>;:=,.$%[]~&|@?")
_MENTION = re.compile(r"(?<![=/\w])@(\w+(?:[.-]+\w+)*)@\w+(?:[.-]+\w+)*")


def status_length(text: str, url_length: int | None = 23) -> int:
    """How Mastodon counts `text` against its limit: each URL as `url_length` characters
    (None: in full), a remote mention as "@user", the rest in grapheme clusters."""
    rewritten: list[str] = []
    position = 0
    for match in sorted([*_URL.finditer(text), *_MENTION.finditer(text)], key=lambda m: m.start()):
        if match.start() < position:
            continue
        if match.re is _URL:
            url = _url_extent(match.group())
            host = match.group(1)
            if "." not in host or not re.fullmatch(r"[^\W\d_]{2,}", host.rsplit(".", 1)[-1]):
                continue
            replacement = url if url_length is None else "x" * url_length
            end = match.start() + len(url)
        else:
            after = text[match.end():]
            if after.startswith(("@", "://")):
                continue
            replacement, end = f"@{match.group(1)}", match.end()
        rewritten += [text[position:match.start()], replacement]
        position = end
    rewritten.append(text[position:])
    return graphemes("".join(rewritten))


def _url_extent(candidate: str) -> str:
    """`candidate` without the trailing characters Mastodon leaves out of a URL (a closing
    parenthesis only when it closes none opened in the URL)."""
    while candidate:
        last = candidate[-1]
        if last in _URL_NOT_LAST or (last == ")" and candidate.count("(") < candidate.count(")")):
            candidate = candidate[:-1]
        else:
            break
    return candidate


def graphemes(text: str) -> int:
    """Grapheme clusters, closely enough for tests: combining marks, variation selectors, skin
    tones and whatever a zero-width joiner glues on do not start a new one."""
    count, joined = 0, False
    for char in text:
        extends = (unicodedata.category(char).startswith("M") or "\ufe00" <= char <= "\ufe0f"
                   or "\U0001f3fb" <= char <= "\U0001f3ff" or char == "\u200d")
        if not extends and not joined:
            count += 1
        joined = char == "\u200d"
    return count


@dataclass(frozen=True, slots=True)
class MastodonEdit:
    status_id: str
    text: str
    media_ids: tuple[str, ...]
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MastodonStatus:
    id: str
    text: str
    visibility: str
    language: str | None
    media_ids: tuple[str, ...]
    idempotency_key: str | None
    created: float
    edited: float | None = None


@dataclass(slots=True)
class MastodonMedia:
    id: str
    filename: str
    content_type: str
    data: bytes
    description: str
    polls_left: int


class FakeMastodon(GarblingServer, LoopbackServer):
    """A fake Mastodon API for one account."""

    def __init__(self, *, token: str = "mastodon-test-token-0123456789", max_characters: int = 500) -> None:
        super().__init__()
        self.token = token
        self.max_characters = max_characters
        self.url_length: int | None = 23
        self._garbage = GarbageSwitch()
        self.processing_polls = 0
        self.reject_media = False
        self._now = 1_772_355_600.0
        self.clock: Callable[[], float] = lambda: self._now
        self._state = threading.Lock()
        self._failures: deque[tuple[int, float | None, float | None]] = deque()
        self._statuses: list[MastodonStatus] = []
        self._edits: list[MastodonEdit] = []
        self._edit_failures: deque[tuple[int, float | None, float | None]] = deque()
        self._deletions: list[str] = []
        self._delete_failures: deque[tuple[int, float | None, float | None]] = deque()
        self._media: dict[str, MastodonMedia] = {}
        self._keys: dict[str, tuple[float, MastodonStatus]] = {}
        self._ids = itertools.count(110_000_000_000_000_001)

    def advance(self, seconds: float) -> None:
        """Move the default clock forward."""
        with self._state:
            self._now += seconds

    def fail_next(self, code: int, n: int = 1, retry_after: float | None = None,
                  reset_in: float | None = None) -> None:
        """Make the next `n` status posts fail with `code`; for 429, `retry_after` sets the
        `Retry-After` header and `reset_in` the `X-RateLimit-Reset` time (seconds from `clock`)."""
        with self._state:
            self._failures.extend([(code, retry_after, reset_in)] * n)

    def fail_edits(self, code: int, n: int = 1, retry_after: float | None = None) -> None:
        """Make the next `n` status edits (PUT) fail with `code` (429: `Retry-After`)."""
        with self._state:
            self._edit_failures.extend([(code, retry_after, None)] * n)

    def fail_deletes(self, code: int, n: int = 1, retry_after: float | None = None) -> None:
        """Make the next `n` status deletions (DELETE) fail with `code` (429: `Retry-After`)."""
        with self._state:
            self._delete_failures.extend([(code, retry_after, None)] * n)

    @property
    def deletions(self) -> list[str]:
        with self._state:
            return list(self._deletions)

    @property
    def edits(self) -> list[MastodonEdit]:
        with self._state:
            return list(self._edits)

    @property
    def statuses(self) -> list[MastodonStatus]:
        with self._state:
            return list(self._statuses)

    @property
    def media(self) -> list[MastodonMedia]:
        with self._state:
            return list(self._media.values())

    # -- handling ----------------------------------------------------------------------------

    def _is_send(self, request: Request) -> bool:
        path = request.path.rstrip("/")
        return (request.method == "POST" and path == "/api/v1/statuses") or (
            request.method == "PUT" and path.startswith("/api/v1/statuses/"))

    def _handle(self, request: Request) -> Reply:
        if request.header("Authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "The access token is invalid"})
        path = request.path.rstrip("/")
        if request.method == "POST" and path == "/api/v1/statuses":
            return self._post_status(request)
        if request.method == "POST" and path == "/api/v2/media":
            return self._upload(request)
        if request.method == "GET" and path.startswith("/api/v1/media/"):
            return self._media_status(path.rsplit("/", 1)[-1])
        if request.method == "DELETE" and path.startswith("/api/v1/statuses/") and path.count("/") == 4:
            return self._delete_status(path.rsplit("/", 1)[-1])
        if request.method in ("GET", "PUT") and path.startswith("/api/v1/statuses/") and path.count("/") == 4:
            return self._one_status(request, path.rsplit("/", 1)[-1])
        if request.method == "GET" and path == "/api/v1/accounts/verify_credentials":
            return Reply(200, {**ACCOUNT, "url": "https://social.example/@comune"})
        return Reply(404, {"error": "Record not found"})

    def _post_status(self, request: Request) -> Reply:
        params = request.params()
        key = request.header("Idempotency-Key")
        now = self.clock()
        with self._state:
            failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                return self._failure(failure)
            if key is not None:
                seen = self._keys.get(key)
                if seen is not None and now - seen[0] < IDEMPOTENCY_SECONDS:
                    return Reply(200, _status_json(seen[1]))
            text = str(params.get("status", ""))
            media_ids = params.get("media_ids") or params.get("media_ids[]") or []
            if isinstance(media_ids, str):
                media_ids = [media_ids]
            if not text.strip() and not media_ids:
                return Reply(422, {"error": "Validation failed: Text can't be blank"})
            if status_length(text, self.url_length) > self.max_characters:
                limit = self.max_characters
                return Reply(422, {"error": f"Validation failed: Text character limit of {limit} exceeded"})
            for media_id in media_ids:
                media = self._media.get(str(media_id))
                if media is None:
                    return Reply(422, {"error": "Validation failed: Media attachments are invalid"})
                if media.polls_left > 0:
                    return Reply(422, {"error": "Cannot attach files that have not finished processing. "
                                                "Try again in a moment!"})
            status = MastodonStatus(
                id=str(next(self._ids)),
                text=text,
                visibility=str(params.get("visibility", "public")),
                language=params.get("language"),
                media_ids=tuple(str(m) for m in media_ids),
                idempotency_key=key,
                created=now,
            )
            self._statuses.append(status)
            if key is not None:
                self._keys[key] = (now, status)
            return Reply(200, _status_json(status))

    def _one_status(self, request: Request, status_id: str) -> Reply:
        with self._state:
            if request.method == "PUT":
                failure = self._edit_failures.popleft() if self._edit_failures else None
                if failure is not None:
                    return self._failure(failure)
            found = [s for s in self._statuses if s.id == status_id]
            if not found:
                return Reply(404, {"error": "Record not found"})
            status = found[0]
            if request.method == "GET":
                return Reply(200, _status_json(status))
            params = request.params()
            text = str(params.get("status", ""))
            media_ids = params.get("media_ids") or params.get("media_ids[]") or []
            if isinstance(media_ids, str):
                media_ids = [media_ids]
            if not text.strip() and not media_ids:
                return Reply(422, {"error": "Validation failed: Text can't be blank"})
            if status_length(text, self.url_length) > self.max_characters:
                limit = self.max_characters
                return Reply(422, {"error": f"Validation failed: Text character limit of {limit} exceeded"})
            if any(str(m) not in self._media for m in media_ids):
                return Reply(422, {"error": "Validation failed: Media attachments are invalid"})
            edited = replace(status, text=text, media_ids=tuple(str(m) for m in media_ids),
                             language=params.get("language", status.language), edited=self.clock())
            self._statuses[self._statuses.index(status)] = edited
            self._edits.append(MastodonEdit(status_id, text, edited.media_ids, dict(params)))
            return Reply(200, _status_json(edited))

    def _delete_status(self, status_id: str) -> Reply:
        with self._state:
            failure = self._delete_failures.popleft() if self._delete_failures else None
            if failure is not None:
                return self._failure(failure)
            found = [s for s in self._statuses if s.id == status_id]
            if not found:
                return Reply(404, {"error": "Record not found"})
            self._statuses.remove(found[0])
            self._deletions.append(status_id)
            return Reply(200, _status_json(found[0]))

    def _failure(self, failure: tuple[int, float | None, float | None]) -> Reply:
        code, retry_after, reset_in = failure
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        if reset_in is not None:
            # Wall-clock time, as the client compares it with its own clock; `clock` governs
            # only the idempotency window.
            reset = datetime.fromtimestamp(time.time() + reset_in, UTC)
            headers["X-RateLimit-Reset"] = reset.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            headers["X-RateLimit-Remaining"] = "0"
        messages = {401: "The access token is invalid", 403: "This action is not allowed",
                    422: "Validation failed: Text character limit of 500 exceeded",
                    429: "Too many requests", 500: "We're sorry, but something went wrong"}
        return Reply(code, {"error": messages.get(code, "Error")}, headers)

    def _upload(self, request: Request) -> Reply:
        upload = request.files.get("file")
        if upload is None:
            return Reply(422, {"error": "Validation failed: File can't be blank"})
        if self.reject_media or not upload.content_type.startswith("image/"):
            return Reply(422, {"error": "Validation failed: File content type is invalid"})
        with self._state:
            media = MastodonMedia(
                id=str(next(self._ids)),
                filename=upload.filename,
                content_type=upload.content_type,
                data=upload.data,
                description=request.form.get("description", ""),
                polls_left=self.processing_polls,
            )
            self._media[media.id] = media
            processing = media.polls_left > 0
        return Reply(202 if processing else 200, _media_json(media, ready=not processing))

    def _media_status(self, media_id: str) -> Reply:
        with self._state:
            media = self._media.get(media_id)
            if media is None:
                return Reply(404, {"error": "Record not found"})
            if media.polls_left > 0:
                media.polls_left -= 1
                return Reply(206, _media_json(media, ready=False))
        return Reply(200, _media_json(media, ready=True))


def _status_json(status: MastodonStatus) -> dict[str, Any]:
    return {
        "id": status.id,
        "created_at": datetime.fromtimestamp(status.created, UTC).isoformat(),
        "visibility": status.visibility,
        "language": status.language,
        "content": f"<p>{status.text}</p>",
        "url": f"https://social.example/@comune/{status.id}",
        "account": ACCOUNT,
        "media_attachments": [{"id": m, "type": "image"} for m in status.media_ids],
        "edited_at": datetime.fromtimestamp(status.edited, UTC).isoformat() if status.edited else None,
    }


def _media_json(media: MastodonMedia, *, ready: bool) -> dict[str, Any]:
    return {
        "id": media.id,
        "type": "image",
        "url": f"https://social.example/media/{media.id}" if ready else None,
        "description": media.description,
    }


@pytest.fixture
def mastodon_server() -> Iterator[FakeMastodon]:
    """A running `FakeMastodon` (500 characters, images processed at once), closed after."""
    with FakeMastodon() as server:
        yield server
