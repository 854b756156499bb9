"""A fake Graph API for one Facebook Page, on loopback.

Every path starts with a version (`/v25.0/...`; the versions asked for are in `versions`). The
token comes as `Authorization: Bearer <token>` or `access_token=`; `token` is the Page's own
token (`/me` is the Page), `user_token` a person's (`/me` is that person, and posting answers
code 200). Anything else answers 400 `OAuthException` code 190; after `expire_token()` the
Page token answers code 190 subcode 463, "Session has expired", as Meta does.

Routes, parameters as form fields, multipart or the query, as the Graph API takes them:

- `POST /{page}/feed` (`message`, `link`) -> `{"id": "{page}_{n}"}`; neither -> code 100.
- `POST /{page}/photos` (`url` or a `source` file, `caption`, `alt_text_custom`,
  `published`) -> `{"id": photo id, "post_id": "{page}_{n}"}`; no image -> code 324;
  `reject_photos` -> code 324 "Missing or invalid image file".
- `GET /{page}/published_posts` (`fields`, `since` unix time, `limit`) -> `{"data": [...]}`,
  newest first, each `{"id", "message", "created_time"}`.
- `GET /{page}` and `GET /me` (`fields=id,name`) -> `{"id", "name"}`.
- `GET /{post}` (`fields=id,message,status_type`) -> the post (`status_type` "added_photos" for a
  photo post, else "mobile_status_update"); `POST /{post}` (`message`) and `DELETE /{post}`
  -> `{"success": true}`.
  An unknown id answers 400 code 100 subcode 33, "Unsupported get request".

Switches: `fail_next(code, n=1, subcode=None, status=400, regain_minutes=None,
retry_after=None)` (the next `n` posts, edits and deletions answer the Graph error `code`; a rate limit
with `regain_minutes` carries `X-Business-Use-Case-Usage` with `estimated_time_to_regain_access`);
`fail_reads(code, n=1)` (the next `n` reads of the posts); `expire_token()`; `reject_photos`;
`ignore_edits` (an edit answers success and changes nothing);
`hang_after_write` (seconds: a post is created, then the answer waits that long, longer than
the client's timeout: the crash during the request); `garble_next(...)` (a 2xx without a post
id, see `servers.garbage`); `clock` (a callable returning unix time: posts' `created_time`).
What the Page has is in `posts`, every edit in `edits`.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from servers.garbage import GarbageSwitch, GarblingServer
from servers.loopback import LoopbackServer, Reply, Request, Upload

PAGE_ID = "104857600000001"
PAGE_NAME = "Comune di Esempio"
USER_ID = "100000000000042"
_VERSION = re.compile(r"^/(v[0-9]+\.[0-9]+)(/.*)?$")


@dataclass(frozen=True, slots=True)
class FacebookPost:
    id: str
    message: str
    link: str | None
    created: float
    photo_url: str | None = None
    photo: Upload | None = None
    alt_text: str | None = None

    @property
    def is_photo(self) -> bool:
        return self.photo_url is not None or self.photo is not None


def graph_error(message: str, code: int, subcode: int | None = None, *,
                kind: str = "OAuthException", transient: bool = False) -> dict[str, Any]:
    """The Graph API's error body."""
    error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEfGh123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    return {"error": error}


_MESSAGES = {
    1: "An unknown error has occurred.",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    190: "Error validating access token: The session has been invalidated because the user changed "
         "their password or Facebook has changed the session for security reasons.",
    200: "(#200) The user hasn't authorized the application to perform this action",
    368: "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
    506: "(#506) Duplicate status message",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}


class FakeFacebook(GarblingServer, LoopbackServer):
    """A fake Graph API serving one Page."""

    def __init__(self, *, token: str = "EAAG-page-token-0123456789abcdef", page_id: str = PAGE_ID) -> None:
        super().__init__()
        self.token = token
        self.user_token = "EAAG-user-token-fedcba9876543210"
        self.page_id = page_id
        self.reject_photos = False
        self.hang_after_write = 0.0
        self.ignore_edits = False
        self._garbage = GarbageSwitch()
        self._expired = False
        self._now = 1_772_355_600.0
        self.clock: Callable[[], float] = lambda: self._now
        self._state = threading.Lock()
        self._failures: deque[Reply] = deque()
        self._read_failures: deque[Reply] = deque()
        self._posts: list[FacebookPost] = []
        self._edits: list[tuple[str, str]] = []
        self._versions: list[str] = []
        self._ids = itertools.count(1)

    # -- switches and records ------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the default clock forward."""
        with self._state:
            self._now += seconds

    def expire_token(self) -> None:
        """The Page token expires: every call with it answers code 190, subcode 463."""
        self._expired = True

    def fail_next(self, code: int, n: int = 1, *, subcode: int | None = None, status: int = 400,
                  regain_minutes: float | None = None, retry_after: float | None = None) -> None:
        """The next `n` posts and edits answer the Graph error `code` with HTTP `status`."""
        reply = self._failure(code, subcode, status, regain_minutes, retry_after)
        with self._state:
            self._failures.extend([reply] * n)

    def fail_reads(self, code: int, n: int = 1, *, status: int = 500) -> None:
        """The next `n` reads of the Page's posts answer the Graph error `code`."""
        reply = self._failure(code, None, status, None, None)
        with self._state:
            self._read_failures.extend([reply] * n)

    def add_post(self, message: str, *, created: float | None = None) -> FacebookPost:
        """A post the Page made by other means (by hand, before the bridge)."""
        with self._state:
            return self._new_post(message, None, created if created is not None else self.clock())

    @property
    def posts(self) -> list[FacebookPost]:
        with self._state:
            return list(self._posts)

    @property
    def edits(self) -> list[tuple[str, str]]:
        """(post id, new message) of every edit, in order."""
        with self._state:
            return list(self._edits)

    @property
    def versions(self) -> list[str]:
        with self._state:
            return list(self._versions)

    # -- handling ----------------------------------------------------------------------------

    def _is_send(self, request: Request) -> bool:
        return request.method in ("POST", "DELETE")

    def _handle(self, request: Request) -> Reply:
        match = _VERSION.match(request.path)
        if match is None:
            return Reply(400, graph_error("Unknown path components: " + request.path, 2500))
        with self._state:
            self._versions.append(match.group(1))
        parts = [p for p in (match.group(2) or "").split("/") if p]
        params = {**{k: v[-1] for k, v in request.query.items()}, **request.form}
        if isinstance(request.json, dict):
            params.update({k: str(v) for k, v in request.json.items()})
        auth = request.header("Authorization") or ""
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("access_token", "")
        if token == self.token and self._expired:
            return Reply(400, graph_error("Error validating access token: Session has expired on Tuesday, "
                                          "01-Dec-26 10:00:00 PST. The current time is Wednesday, "
                                          "02-Dec-26 04:00:00 PST.", 190, 463))
        if token not in (self.token, self.user_token):
            return Reply(400, graph_error("Invalid OAuth access token - Cannot parse access token", 190))
        user = token == self.user_token
        if request.method in ("POST", "DELETE"):
            with self._state:
                failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                return failure
        if parts == ["me"] and request.method == "GET":
            return Reply(200, {"id": USER_ID, "name": "Mario Rossi"} if user
                         else {"id": self.page_id, "name": PAGE_NAME})
        if parts and parts[0] == self.page_id:
            if len(parts) == 1 and request.method == "GET":
                return Reply(200, {"id": self.page_id, "name": PAGE_NAME})
            if len(parts) == 2 and request.method == "POST" and parts[1] in ("feed", "photos"):
                if user:
                    return Reply(403, graph_error(_MESSAGES[200], 200))
                return self._post(parts[1], params, request)
            if len(parts) == 2 and request.method == "GET" and parts[1] in ("published_posts", "feed"):
                return self._read_posts(params)
        if len(parts) == 1 or (len(parts) == 2 and parts[0] not in (self.page_id, "me")):
            # A post, or the edge of an object that is not here: Graph says it does not exist.
            return self._one_post(request.method, parts[0], params)
        return Reply(400, graph_error("Unknown path components: /" + "/".join(parts[1:]), 2500))

    def _post(self, edge: str, params: dict[str, str], request: Request) -> Reply:
        with self._state:
            if edge == "feed":
                message = params.get("message", "")
                link = params.get("link")
                if not message and not link:
                    return Reply(400, graph_error("(#100) Missing message or attachment", 100))
                post = self._new_post(message, link, self.clock())
                answer: dict[str, Any] = {"id": post.id}
            else:
                upload = request.files.get("source")
                url = params.get("url")
                if upload is None and not url:
                    return Reply(400, graph_error("(#324) Requires upload file", 324))
                if self.reject_photos or (upload is not None and not upload.content_type.startswith("image/")):
                    return Reply(400, graph_error("(#324) Missing or invalid image file", 324))
                post = self._new_post(params.get("caption", ""), None, self.clock())
                post = replace(post, photo_url=url, photo=upload, alt_text=params.get("alt_text_custom"))
                self._posts[-1] = post
                answer = {"id": str(900_000 + len(self._posts)), "post_id": post.id}
        if self.hang_after_write:
            # The post exists; the answer comes too late for the client (the crash mid-request).
            self._closing.wait(self.hang_after_write)
        return Reply(200, answer)

    def _new_post(self, message: str, link: str | None, created: float) -> FacebookPost:
        post = FacebookPost(id=f"{self.page_id}_{next(self._ids)}", message=message, link=link, created=created)
        self._posts.append(post)
        return post

    def _read_posts(self, params: dict[str, str]) -> Reply:
        with self._state:
            failure = self._read_failures.popleft() if self._read_failures else None
            if failure is not None:
                return failure
            since = float(params["since"]) if params.get("since", "").isdigit() else None
            limit = int(params.get("limit", "25"))
            posts = [p for p in reversed(self._posts) if since is None or p.created >= since][:limit]
        return Reply(200, {"data": [_post_json(p) for p in posts],
                           "paging": {"cursors": {"before": "QVFIUm", "after": "QVFIUn"}}})

    def _one_post(self, method: str, post_id: str, params: dict[str, str]) -> Reply:
        with self._state:
            found = [p for p in self._posts if p.id == post_id]
            if not found:
                return Reply(400, graph_error(
                    f"Unsupported {method.lower()} request. Object with ID '{post_id}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation.", 100, 33,
                    kind="GraphMethodException"))
            post = found[0]
            if method == "DELETE":
                self._posts.remove(post)
                return Reply(200, {"success": True})
            if method == "GET":
                return Reply(200, {**_post_json(post),
                                   "status_type": "added_photos" if post.is_photo else "mobile_status_update"})
            message = params.get("message")
            if message is None:
                return Reply(400, graph_error("(#100) Missing message", 100))
            if not self.ignore_edits:
                self._posts[self._posts.index(post)] = replace(post, message=message)
                self._edits.append((post_id, message))
        return Reply(200, {"success": True})

    def _failure(self, code: int, subcode: int | None, status: int, regain_minutes: float | None,
                 retry_after: float | None) -> Reply:
        headers: dict[str, str] = {}
        if regain_minutes is not None:
            usage = {self.page_id: [{"type": "pages", "call_count": 100, "total_cputime": 20, "total_time": 30,
                                     "estimated_time_to_regain_access": regain_minutes}]}
            headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        body = graph_error(_MESSAGES.get(code, f"(#{code}) Error"), code, subcode,
                           transient=code in (1, 2))
        return Reply(status, body, headers)


def _post_json(post: FacebookPost) -> dict[str, Any]:
    created = datetime.fromtimestamp(post.created, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    return {"id": post.id, "message": post.message, "created_time": created}


@pytest.fixture
def facebook_server() -> Iterator[FakeFacebook]:
    """A running `FakeFacebook`, closed after."""
    with FakeFacebook() as server:
        yield server
