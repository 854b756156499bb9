"""A fake WAHA (WhatsApp HTTP API) on loopback, following SPEC 6 and WAHA's OpenAPI.

It is a real HTTP server (stdlib `ThreadingHTTPServer` on 127.0.0.1, port 0, in a daemon
thread), so a daemon run as a subprocess can post to `FakeWaha.url` while the test reads
`FakeWaha.posts`.

Routes:

- `POST /api/sendText` `{"session","chatId","text","linkPreview"?,"id"?}` -> 201
- `POST /api/sendImage` `{"session","chatId","file":{"mimetype","url"|"data","filename"?},
  "caption"?,"id"?}` -> 201
- `GET /api/{session}/new-message-id` -> `{"id"}`; a send whose body carries `"id"` uses it
  as the message id, as WAHA does with pre-generated ids.
- `GET /api/{session}/chats/{chatId}/messages?limit=N[&offset=K][&sortOrder=asc|desc]` ->
  the visible posts of that chat, newest first by default, as WAMessage objects
  (`id`, `timestamp`, `from`, `to`, `fromMe`, `body`, `hasMedia`, `ack`...). Their `id` is
  the serialized form `true_{chatId}_{id}`, like WAHA's; the bare id is the part after the
  last `_`.
- `GET /api/sessions/{session}` -> `{"name","status",...}`.
- `GET /api/{session}/chats/{chatId}/messages/{messageId}` (serialized or bare id) -> that
  visible post as a WAMessage, or 404 "Message not found";
- `PUT /api/{session}/chats/{chatId}/messages/{messageId}` `{"text","linkPreview"?,
  "linkPreviewHighQuality"?}` (EditMessageRequest) -> 200 with the edited message in the
  engine's shape; the post's text becomes `text` and the edit is in `edits`. An image post
  answers 400 (the fake, like WAHA's edit, changes text messages only).
- `DELETE /api/{session}/chats/{chatId}/messages/{messageId}` -> 200 with an empty body (WAHA's
  OpenAPI documents no body); the post leaves the read-back and is in `deletions`; a message
  the chat does not have answers 404 "Message not found".
- `GET /api/{session}/channels/{id}/messages/preview?downloadMedia=false&limit=N` (both query
  parameters required, as WAHA's OpenAPI has them; else 400) -> the newest N visible posts of
  that channel, newest first, as ChannelMessage objects `{"reactions": {emoji: n},
  "viewCount": n, "message": WAMessage}`; the message id is `false_{chatId}_{id}`, as WAHA
  shows a channel's posts to a reader. The counts are 0 and `{}` until `set_engagement`.

Behaviour: `X-Api-Key` must equal `api_key` when one is set (else 401
`{"message":"Unauthorized","statusCode":401}`); an unknown session answers 404; a send with
missing or mistyped fields answers 400; a send while `status` is not "WORKING" answers 422
`{"error":"Session status is not as expected...","status":...,"expected":["WORKING"]}`.

Fault switches (all thread-safe, settable while the server runs):

- `engine`: "NOWEB" | "WEBJS" | "plain", the shape of the 201 body;
- `status`: the session status;
- `fail_next(n, code, retry_after=None)`: the next n sends answer `code` (500, 429, 400...);
- `drop_next(n)`: the next n sends answer 201 but never show up in the read-back
  ("201 but never visible", a known WAHA failure); they are still in `posts` with
  `visible=False`;
- `delay`: seconds to wait before answering any request. A send is recorded *before* the
  wait, so a client that times out leaves a post behind, as a slow real gateway would;
- `fail_edits(n, code, retry_after=None)`: the next n edits (PUT) answer `code`; `ignore_edits(n)`:
  the next n answer 200 but leave the text as it was (an edit WhatsApp did not apply);
  `garble_next` applies to edits as to sends;
- `fail_deletes(n, code, retry_after=None)`: the next n deletions (DELETE) answer `code`;
- `fail_reads(n, code)`: the next n read-backs (chat messages) answer `code`;
- `pregenerated_ids`: False makes `new-message-id` answer NestJS's "Cannot GET" 404, like a
  WAHA version without the route;
- `garble_next(n=1, body=, content_type=, status=200, forward=False, every_request=False)`
  and `clear_garbage()`: the next n sends (None: all until cleared; `every_request`: every
  route) answer a 2xx that is not WAHA's, a proxy's login page by default; with `forward` the
  request is handled first, so a send is posted and only its answer is lost (see
  `servers.garbage`).
- `seed_post(chat_id, text, kind="text")`: a post already on the channel, as a send would have
  left it (`kind="image"`: an image with that caption);
- `set_engagement(message_id, views, reactions)`: the counts the preview shows for a post (by
  its bare id);
- `fail_previews(n, code, retry_after=None)`: the next n previews answer `code` (500, 429 with
  `Retry-After`...); `garble_previews(n, body, content_type)`: the next n answer 200 with
  `body` (a proxy's login page by default); `preview_delay`: seconds a preview waits before
  answering (a client's timeout); a wrong `X-Api-Key` answers 401 as everywhere.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from servers.garbage import LOGIN_PAGE, Garbage, GarbageSwitch, Garbling

Engine = Literal["NOWEB", "WEBJS", "plain"]

# The WhatsApp account the fake session is logged in as.
OWN_JID = "390000000000@c.us"


@dataclass(frozen=True, slots=True)
class WahaPost:
    """One send WAHA accepted (answered 2xx)."""

    kind: Literal["text", "image"]
    session: str
    chat_id: str
    text: str  # the message text, or the image caption
    id: str  # bare message id: the client's pre-generated one, or generated here
    serialized_id: str  # `true_{chat_id}_{id}`, as read-back lists it
    time: float  # unix time of acceptance
    visible: bool  # False when dropped by `drop_next`: answered 201, never readable
    api_key: str | None  # the X-Api-Key header it came with
    body: dict[str, Any]  # the JSON body exactly as received

    @property
    def chatId(self) -> str:  # the name WAHA's JSON uses
        return self.chat_id


@dataclass(frozen=True, slots=True)
class WahaEdit:
    """One edit WAHA accepted (answered 200)."""

    session: str
    chat_id: str
    message_id: str  # bare id of the edited post
    text: str
    applied: bool  # False when `ignore_edits` kept the old text
    body: dict[str, Any]  # the JSON body exactly as received


@dataclass(frozen=True, slots=True)
class WahaRequest:
    """Any request the fake received, answered or not."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: Any  # decoded JSON, the raw text when not JSON, None when empty
    status: int  # the code it was answered with


class FakeWaha(Garbling):
    """A fake WAHA server. Use as a context manager, or `start()` then `close()`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        session: str = "default",
        status: str = "WORKING",
        engine: Engine = "NOWEB",
        delay: float = 0.0,
    ) -> None:
        self._lock = threading.Lock()
        self._api_key = api_key
        self._session = session
        self._status = status
        self._engine: Engine = engine
        self._delay = delay
        # Seconds to wait before answering a send only (after recording it): a send in flight.
        self.send_delay = 0.0
        self._failures: deque[tuple[int, float | None]] = deque()
        self._drops = 0
        self._read_failures: deque[int] = deque()
        self.pregenerated_ids = True
        self._engagement: dict[str, tuple[int, dict[str, int]]] = {}
        self._preview_failures: deque[tuple[int, float | None]] = deque()
        self._preview_garbage: deque[tuple[bytes, str]] = deque()
        self.preview_delay = 0.0
        self._garbage = GarbageSwitch()
        self._posts: list[WahaPost] = []
        self._edits: list[WahaEdit] = []
        self._deletions: list[str] = []
        self._delete_failures: deque[tuple[int, float | None]] = deque()
        self._edit_failures: deque[tuple[int, float | None]] = deque()
        self._ignored_edits = 0
        self._requests: list[WahaRequest] = []
        self._ids = itertools.count(1)
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeWaha:
        """Listen on 127.0.0.1 on a free port and serve in a daemon thread; return self."""
        self._closing.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port; wakes any request waiting out `delay`."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeWaha:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:40123` (what goes in the channel's `url`)."""
        if self._server is None:
            raise RuntimeError("FakeWaha is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- switches ------------------------------------------------------------------------

    @property
    def api_key(self) -> str | None:
        with self._lock:
            return self._api_key

    @api_key.setter
    def api_key(self, value: str | None) -> None:
        with self._lock:
            self._api_key = value

    @property
    def session(self) -> str:
        with self._lock:
            return self._session

    @session.setter
    def session(self, value: str) -> None:
        with self._lock:
            self._session = value

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @status.setter
    def status(self, value: str) -> None:
        with self._lock:
            self._status = value

    @property
    def engine(self) -> Engine:
        with self._lock:
            return self._engine

    @engine.setter
    def engine(self, value: Engine) -> None:
        if value not in ("NOWEB", "WEBJS", "plain"):
            raise ValueError(f"unknown engine {value!r}")
        with self._lock:
            self._engine = value

    @property
    def delay(self) -> float:
        with self._lock:
            return self._delay

    @delay.setter
    def delay(self, value: float) -> None:
        with self._lock:
            self._delay = value

    def fail_next(self, n: int, code: int, retry_after: float | None = None) -> None:
        """Make the next `n` sends answer `code` (with `Retry-After` when given)."""
        with self._lock:
            self._failures.extend([(code, retry_after)] * n)

    def clear_failures(self) -> None:
        """Forget the failures `fail_next` queued: the gateway is back."""
        with self._lock:
            self._failures.clear()

    def drop_next(self, n: int) -> None:
        """Make the next `n` sends answer 201 but never appear in the read-back."""
        with self._lock:
            self._drops += n

    def fail_edits(self, n: int, code: int, retry_after: float | None = None) -> None:
        """Make the next `n` edits answer `code` (with `Retry-After` when given)."""
        with self._lock:
            self._edit_failures.extend([(code, retry_after)] * n)

    def ignore_edits(self, n: int) -> None:
        """Make the next `n` edits answer 200 and leave the post's text unchanged."""
        with self._lock:
            self._ignored_edits += n

    @property
    def edits(self) -> list[WahaEdit]:
        """Every accepted edit, oldest first (a copy)."""
        with self._lock:
            return list(self._edits)

    def fail_deletes(self, n: int, code: int, retry_after: float | None = None) -> None:
        """Make the next `n` deletions answer `code` (with `Retry-After` when given)."""
        with self._lock:
            self._delete_failures.extend([(code, retry_after)] * n)

    @property
    def deletions(self) -> list[str]:
        """The bare ids of every post deleted, oldest first (a copy)."""
        with self._lock:
            return list(self._deletions)

    def fail_reads(self, n: int, code: int) -> None:
        """Make the next `n` read-backs of a chat's messages answer `code`."""
        with self._lock:
            self._read_failures.extend([code] * n)

    def set_engagement(self, message_id: str, views: int, reactions: dict[str, int] | None = None) -> None:
        """Make the preview show `views` and `reactions` for the post whose bare id is
        `message_id` (as `WahaPost.id`)."""
        with self._lock:
            self._engagement[message_id] = (views, dict(reactions or {}))

    def seed_post(self, chat_id: str, text: str, *, message_id: str | None = None,
                  session: str | None = None, kind: Literal["text", "image"] = "text") -> WahaPost:
        """Put a post on `chat_id` as if a send had made it (visible, with `message_id` or a
        fresh id; `kind` "image": an image with `text` as its caption); return it."""
        return self._record(kind, session or self.session, chat_id, text, message_id or self.new_message_id(),
                            None, {"chatId": chat_id, "text": text})

    def fail_previews(self, n: int, code: int, retry_after: float | None = None) -> None:
        """Make the next `n` channel previews answer `code` (with `Retry-After` when given)."""
        with self._lock:
            self._preview_failures.extend([(code, retry_after)] * n)

    def garble_previews(self, n: int, body: bytes = LOGIN_PAGE,
                        content_type: str = "text/html; charset=utf-8") -> None:
        """Make the next `n` channel previews answer 200 with `body`, which is not WAHA's."""
        with self._lock:
            self._preview_garbage.extend([(body, content_type)] * n)

    @property
    def previews(self) -> list[WahaRequest]:
        """The channel preview requests received, in arrival order."""
        return [r for r in self.requests if r.method == "GET" and "/messages/preview" in r.path]

    # -- what happened -------------------------------------------------------------------

    @property
    def posts(self) -> list[WahaPost]:
        """Every accepted send, oldest first (a copy), dropped ones included."""
        with self._lock:
            return list(self._posts)

    @property
    def visible_posts(self) -> list[WahaPost]:
        """The accepted sends that the read-back shows, oldest first."""
        with self._lock:
            return [post for post in self._posts if post.visible]

    @property
    def requests(self) -> list[WahaRequest]:
        """Every request received, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def new_message_id(self) -> str:
        """Return a fresh message id in WhatsApp's style (what new-message-id hands out)."""
        with self._lock:
            return f"3EB0{next(self._ids):016X}"

    # -- used by the handler -------------------------------------------------------------

    def _log(self, request: WahaRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_read_failure(self) -> int | None:
        with self._lock:
            return self._read_failures.popleft() if self._read_failures else None

    def _take_preview_failure(self) -> tuple[int, float | None] | None:
        with self._lock:
            return self._preview_failures.popleft() if self._preview_failures else None

    def _take_preview_garbage(self) -> tuple[bytes, str] | None:
        with self._lock:
            return self._preview_garbage.popleft() if self._preview_garbage else None

    def _counts(self, message_id: str) -> tuple[int, dict[str, int]]:
        with self._lock:
            views, reactions = self._engagement.get(message_id, (0, {}))
            return views, dict(reactions)

    def _take_failure(self) -> tuple[int, float | None] | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _record(self, kind: Literal["text", "image"], session: str, chat_id: str, text: str,
                message_id: str, api_key: str | None, body: dict[str, Any]) -> WahaPost:
        with self._lock:
            visible = self._drops == 0
            if not visible:
                self._drops -= 1
            post = WahaPost(
                kind=kind,
                session=session,
                chat_id=chat_id,
                text=text,
                id=message_id,
                serialized_id=f"true_{chat_id}_{message_id}",
                time=time.time(),
                visible=visible,
                api_key=api_key,
                body=body,
            )
            self._posts.append(post)
            return post

    def _find_post(self, session: str, chat_id: str, message_id: str) -> WahaPost | None:
        bare = message_id.rsplit("_", 1)[-1]
        with self._lock:
            for post in self._posts:
                if post.visible and post.session == session and post.chat_id == chat_id and post.id == bare:
                    return post
        return None

    def _edit(self, post: WahaPost, text: str, body: dict[str, Any]) -> WahaPost:
        """Record an edit of `post` and return the post as it now is."""
        with self._lock:
            applied = self._ignored_edits == 0
            if not applied:
                self._ignored_edits -= 1
            self._edits.append(WahaEdit(post.session, post.chat_id, post.id, text, applied, body))
            if not applied:
                return post
            index = self._posts.index(post)
            self._posts[index] = edited = dataclasses.replace(post, text=text)
            return edited

    def _delete(self, post: WahaPost) -> None:
        """Take `post` out of the chat."""
        with self._lock:
            self._deletions.append(post.id)
            self._posts[self._posts.index(post)] = dataclasses.replace(post, visible=False)

    def _take_delete_failure(self) -> tuple[int, float | None] | None:
        with self._lock:
            return self._delete_failures.popleft() if self._delete_failures else None

    def _take_edit_failure(self) -> tuple[int, float | None] | None:
        with self._lock:
            return self._edit_failures.popleft() if self._edit_failures else None

    def _wait_send_delay(self) -> None:
        delay = self.send_delay
        if delay > 0:
            self._closing.wait(delay)

    def _wait_delay(self) -> None:
        delay = self.delay
        if delay > 0:
            self._closing.wait(delay)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeWaha


Reply = tuple[int, Any, dict[str, str]]


def _error(code: int, message: str) -> Reply:
    """A NestJS-style error body, the shape WAHA uses."""
    return code, {"statusCode": code, "message": message, "error": HTTPStatus(code).phrase}, {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        body_ok = True
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body, body_ok = raw.decode("utf-8", "replace"), False
        is_send = (method == "POST" and "/api/send" in self.path) or method == "PUT"
        garbage: Garbage | None = fake._garbage.take(send=is_send)
        if method == "GET" and "/messages/preview" in self.path:
            if garbage is None:
                preview_garbage = fake._take_preview_garbage()
                if preview_garbage is not None:
                    garbage = Garbage(200, *preview_garbage)
            if fake.preview_delay > 0:
                fake._closing.wait(fake.preview_delay)
        if garbage is None or garbage.forward:
            code, payload, headers = self._route(fake, method, body, body_ok)
        if garbage is not None:
            code, headers = garbage.status, {}
        fake._log(
            WahaRequest(method, self.path, dict(self.headers.items()), body, code)
        )
        fake._wait_delay()
        if is_send:
            fake._wait_send_delay()
        if garbage is not None:
            data = garbage.body
        else:
            data = b"" if payload is None else json.dumps(payload).encode()
        content_type = "application/json; charset=utf-8" if garbage is None else garbage.content_type
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:
            pass  # the client gave up (its timeout shorter than `delay`): nothing to answer

    def _route(self, fake: FakeWaha, method: str, body: Any, body_ok: bool) -> Reply:
        split = urlsplit(self.path)
        parts = [unquote(part) for part in split.path.strip("/").split("/")]
        query = parse_qs(split.query)
        if not parts or parts[0] != "api":
            return _error(404, f"Cannot {method} {split.path}")
        wanted = fake.api_key
        if wanted and self.headers.get("X-Api-Key") != wanted:
            return 401, {"message": "Unauthorized", "statusCode": 401}, {}
        rest = parts[1:]
        if method == "POST" and rest in (["sendText"], ["sendImage"]):
            return self._send(fake, "text" if rest == ["sendText"] else "image", body, body_ok)
        if method == "GET" and len(rest) == 2 and rest[0] == "sessions":
            return self._session_info(fake, rest[1])
        if method == "GET" and len(rest) == 2 and rest[1] == "new-message-id":
            if not fake.pregenerated_ids:
                return _error(404, f"Cannot GET {split.path}")
            if rest[0] != fake.session:
                return _unknown_session(rest[0])
            return 200, {"id": fake.new_message_id()}, {}
        if method == "GET" and len(rest) == 5 and rest[1] == "channels" and rest[3:] == ["messages", "preview"]:
            failure = fake._take_preview_failure()
            if failure is not None:
                return _failure(fake, *failure)
            return self._preview(fake, rest[0], rest[2], query)
        if method == "DELETE" and len(rest) == 5 and rest[1] == "chats" and rest[3] == "messages":
            return self._delete_message(fake, rest[0], rest[2], rest[4])
        if method in ("GET", "PUT") and len(rest) == 5 and rest[1] == "chats" and rest[3] == "messages":
            return self._one_message(fake, method, rest[0], rest[2], rest[4], body, body_ok)
        if method == "GET" and len(rest) == 4 and rest[1] == "chats" and rest[3] == "messages":
            read_failure = fake._take_read_failure()
            if read_failure is not None:
                return _failure(fake, read_failure, None)
            return self._messages(fake, rest[0], rest[2], query)
        return _error(404, f"Cannot {method} {split.path}")

    def _send(self, fake: FakeWaha, kind: Literal["text", "image"], body: Any,
              body_ok: bool) -> Reply:
        failure = fake._take_failure()
        if failure is not None:
            return _failure(fake, *failure)
        if not body_ok or not isinstance(body, dict):
            return _error(400, "Body must be a JSON object")
        problems = _validate(kind, body)
        if problems:
            return 400, {"statusCode": 400, "message": problems, "error": "Bad Request"}, {}
        session = body.get("session", "default")
        if session != fake.session:
            return _unknown_session(session)
        status = fake.status
        if status != "WORKING":
            return _not_working(status)
        given = body.get("id")
        message_id = given if isinstance(given, str) and given else fake.new_message_id()
        text = body["text"] if kind == "text" else body.get("caption", "")
        post = fake._record(kind, session, body["chatId"], text, message_id,
                            self.headers.get("X-Api-Key"), body)
        return 201, _success_body(fake.engine, post), {}

    def _one_message(self, fake: FakeWaha, method: str, session: str, chat_id: str, message_id: str,
                     body: Any, body_ok: bool) -> Reply:
        if method == "PUT":
            failure = fake._take_edit_failure()
            if failure is not None:
                return _failure(fake, *failure)
        if session != fake.session:
            return _unknown_session(session)
        if method == "PUT":
            if not body_ok or not isinstance(body, dict):
                return _error(400, "Body must be a JSON object")
            problems = []
            if not isinstance(body.get("text"), str) or not body["text"]:
                problems.append("text must be a non-empty string")
            for flag in ("linkPreview", "linkPreviewHighQuality"):
                if flag in body and not isinstance(body[flag], bool):
                    problems.append(f"{flag} must be a boolean value")
            if problems:
                return 400, {"statusCode": 400, "message": problems, "error": "Bad Request"}, {}
            if fake.status != "WORKING":
                return _not_working(fake.status)
        post = fake._find_post(session, chat_id, message_id)
        if post is None:
            return _error(404, "Message not found")
        if method == "GET":
            return 200, _wa_message(post), {}
        if post.kind != "text":
            return _error(400, "Only text messages can be edited")
        return 200, _success_body(fake.engine, fake._edit(post, body["text"], body)), {}

    def _delete_message(self, fake: FakeWaha, session: str, chat_id: str, message_id: str) -> Reply:
        failure = fake._take_delete_failure()
        if failure is not None:
            return _failure(fake, *failure)
        if session != fake.session:
            return _unknown_session(session)
        if fake.status != "WORKING":
            return _not_working(fake.status)
        post = fake._find_post(session, chat_id, message_id)
        if post is None:
            return _error(404, "Message not found")
        fake._delete(post)
        return 200, None, {}

    def _session_info(self, fake: FakeWaha, session: str) -> Reply:
        if session != fake.session:
            return _unknown_session(session)
        status = fake.status
        me = {"id": OWN_JID, "pushName": "Comune"} if status == "WORKING" else None
        return 200, {
            "name": session,
            "status": status,
            "me": me,
            "engine": {"engine": fake.engine if fake.engine != "plain" else "GOWS"},
            "presence": None,
            "timestamps": {"activity": None},
            "config": {"webhooks": []},
        }, {}

    def _messages(self, fake: FakeWaha, session: str, chat_id: str,
                  query: dict[str, list[str]]) -> Reply:
        if session != fake.session:
            return _unknown_session(session)
        try:
            limit = int(float(query.get("limit", ["10"])[0]))
            offset = int(float(query.get("offset", ["0"])[0]))
        except ValueError:
            return _error(400, "limit and offset must be numbers")
        order = query.get("sortOrder", ["desc"])[0]
        posts = [p for p in fake.visible_posts if p.session == session and p.chat_id == chat_id]
        if order != "asc":
            posts.reverse()  # newest first; ties keep arrival order reversed
        return 200, [_wa_message(post) for post in posts[offset:offset + limit]], {}


    def _preview(self, fake: FakeWaha, session: str, channel_id: str,
                 query: dict[str, list[str]]) -> Reply:
        missing = [name for name in ("downloadMedia", "limit") if name not in query]
        if missing:
            return 400, {"statusCode": 400, "message": [f"{name} should not be empty" for name in missing],
                         "error": "Bad Request"}, {}
        try:
            limit = int(float(query["limit"][0]))
        except ValueError:
            return _error(400, "limit must be a number")
        if session != fake.session:
            return _unknown_session(session)
        if fake.status != "WORKING":
            return _not_working(fake.status)
        posts = [p for p in fake.visible_posts if p.session == session and p.chat_id == channel_id]
        posts.reverse()
        answer = []
        for post in posts[:limit]:
            views, reactions = fake._counts(post.id)
            message = _wa_message(post)
            message.update(id=f"false_{post.chat_id}_{post.id}", fromMe=False, **{"from": post.chat_id})
            answer.append({"reactions": reactions, "viewCount": views, "message": message})
        return 200, answer, {}


def _validate(kind: Literal["text", "image"], body: dict[str, Any]) -> list[str]:
    """Return class-validator style messages for the fields the OpenAPI requires."""
    problems = []
    if not isinstance(body.get("chatId"), str) or not body["chatId"]:
        problems.append("chatId must be a non-empty string")
    if "session" in body and not isinstance(body["session"], str):
        problems.append("session must be a string")
    if "id" in body and body["id"] is not None and not isinstance(body["id"], str):
        problems.append("id must be a string")
    if kind == "text":
        if not isinstance(body.get("text"), str) or not body["text"]:
            problems.append("text must be a non-empty string")
        if "linkPreview" in body and not isinstance(body["linkPreview"], bool):
            problems.append("linkPreview must be a boolean value")
    else:
        file = body.get("file")
        if not isinstance(file, dict):
            problems.append("file must be an object")
        else:
            if not isinstance(file.get("mimetype"), str):
                problems.append("file.mimetype must be a string")
            if not isinstance(file.get("url"), str) and not isinstance(file.get("data"), str):
                problems.append("file must have url or data")
        if "caption" in body and not isinstance(body["caption"], str):
            problems.append("caption must be a string")
    return problems


def _unknown_session(session: str) -> Reply:
    return _error(
        404,
        f"We didn't find a session with name '{session}'. "
        f"Please start it first by using POST /api/sessions/{session}/start request",
    )


def _not_working(status: str) -> Reply:
    return 422, {
        "error": "Session status is not as expected. Try again later or restart the session",
        "session": "default",
        "status": status,
        "expected": ["WORKING"],
    }, {}


def _failure(fake: FakeWaha, code: int, retry_after: float | None) -> Reply:
    """The answer of a `fail_next` send, in the shape WAHA gives that code."""
    if code == 401:
        reply: Reply = (401, {"message": "Unauthorized", "statusCode": 401}, {})
    elif code == 404:
        reply = _unknown_session(fake.session)
    elif code == 422:
        status = fake.status
        reply = _not_working(status if status != "WORKING" else "STARTING")
    elif code == 500:
        reply = (500, {"statusCode": 500, "message": "Internal server error"}, {})
    else:
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        reply = (code, {"statusCode": code, "message": phrase, "error": phrase}, {})
    if retry_after is not None:
        reply[2]["Retry-After"] = f"{retry_after:g}"
    return reply


def _success_body(engine: Engine, post: WahaPost) -> dict[str, Any]:
    """The 201 body of a send, in the shape the engine gives (SPEC 6)."""
    timestamp = int(post.time)
    if engine == "NOWEB":
        content = (
            {"extendedTextMessage": {"text": post.text}}
            if post.kind == "text"
            else {"imageMessage": {"caption": post.text}}
        )
        return {
            "key": {"remoteJid": post.chat_id, "fromMe": True, "id": post.id},
            "message": content,
            "messageTimestamp": str(timestamp),
            "status": "PENDING",
        }
    if engine == "WEBJS":
        return {
            "id": {
                "fromMe": True,
                "remote": post.chat_id,
                "id": post.id,
                "_serialized": post.serialized_id,
            },
            "body": post.text,
            "type": "chat" if post.kind == "text" else "image",
            "timestamp": timestamp,
            "from": OWN_JID,
            "to": post.chat_id,
            "fromMe": True,
            "ack": 0,
            "hasMedia": post.kind == "image",
        }
    return {"id": post.serialized_id}


def _wa_message(post: WahaPost) -> dict[str, Any]:
    """A read-back entry: WAHA's WAMessage schema."""
    return {
        "id": post.serialized_id,
        "timestamp": int(post.time),
        "from": OWN_JID,
        "fromMe": True,
        "source": "api",
        "to": post.chat_id,
        "participant": None,
        "body": post.text,
        "hasMedia": post.kind == "image",
        "media": None,
        "mediaUrl": None,
        "ack": 1,
        "ackName": "SERVER",
    }


@pytest.fixture
def waha_server() -> Iterator[FakeWaha]:
    """A running `FakeWaha` (no api key, session "default" WORKING, NOWEB), closed after."""
    with FakeWaha() as server:
        yield server
