"""A fake Bluesky PDS on loopback, following the XRPC lexicons the bridge uses.

Routes (all under `/xrpc/`; errors are XRPC's `{"error", "message"}`):

- `POST com.atproto.server.createSession` `{identifier, password}` -> `{did, handle, accessJwt,
  refreshJwt, active}` when `identifier` is `account_handle` and `password` is `app_password`, else 401
  `AuthenticationRequired` "Invalid identifier or password"; an account's own `password`
  answers 401 `AuthFactorTokenRequired` (two-factor sign-in, which app passwords skip).
  Counted in `logins`.
- `POST com.atproto.server.refreshSession` (Bearer refresh JWT) -> a new pair; the old refresh
  JWT stops working. An expired one answers 400 `ExpiredToken`, an unknown one 400 `InvalidToken`.
- `GET com.atproto.server.getSession`, `GET com.atproto.repo.describeRepo?repo=` -> the account.
- `POST com.atproto.repo.createRecord` `{repo, collection, rkey, record}` -> `{uri, cid,
  validationStatus}`. As the lexicon of app.bsky.feed.post says: the record key must be a
  TID, the text at most 300 grapheme clusters and 3000 bytes, every facet's byte span inside
  the text, every blob of the embed uploaded (else 400 `InvalidRequest`). A key already taken
  answers as today's reference PDS does, 500 `InternalServerError` (`duplicate_answer =
  "explicit"`: 409 `RecordAlreadyExists`, as newer servers do).
- `GET com.atproto.repo.getRecord?repo=&collection=&rkey=` -> `{uri, cid, value}`, or 400
  `RecordNotFound`.
- `POST com.atproto.repo.deleteRecord` `{repo, collection, rkey}` -> `{commit}`, also for a
  record that is not there (in `deleted`).
- `POST com.atproto.repo.uploadBlob` (raw bytes, their Content-Type) -> `{blob}`; over 1 MB
  400 `BlobTooLarge`.

Every call but the session's carries `Authorization: Bearer <access JWT>`: an expired one
answers 400 `ExpiredToken`, an unknown one 400 `InvalidToken`.

Switches: `fail_next(code, n=1, retry_after=None, reset_in=None)` (createRecord; 429 with
`Retry-After` and/or `RateLimit-Reset`, a unix time), `fail_logins(code, n=1, reset_in=None)`,
`fail_deletes(code, n=1, retry_after=None)`, `expire_access()`, `expire_refresh()`,
`born_expired` (every access JWT expired as given), `revoke(new_password)` (the app password
revoked: its sessions end), `crash_after_write(n=1, hang=)` (the record is written, then the
answer waits `hang` seconds: the client times out, as if the process died mid-request),
`duplicate_answer`, `delay`. What exists is in `records` and `blobs`; `logins`, `refreshes`
count the sessions made, `deleted` the keys deleted.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from servers.loopback import LoopbackServer, Reply, Request
from servers.mastodon import graphemes

DID = "did:plc:comuneesempio0000000000"
HANDLE = "comune-esempio.bsky.social"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
ACCOUNT_PASSWORD = "the-account-password"
POST = "app.bsky.feed.post"
_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


@dataclass(frozen=True, slots=True)
class BlueskyRecord:
    rkey: str
    uri: str
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BlueskyBlob:
    cid: str
    mime_type: str
    data: bytes


class FakeBluesky(LoopbackServer):
    """A fake PDS holding one account."""

    def __init__(self, *, account_handle: str = HANDLE, app_password: str = APP_PASSWORD) -> None:
        super().__init__()
        self.account_handle = account_handle
        self.app_password = app_password
        self.duplicate_answer = "internal"
        self.born_expired = False  # every access JWT is expired as it is given (a clock far off)
        self._state = threading.Lock()
        self._ids = itertools.count(1)
        self._access: set[str] = set()
        self._refresh: set[str] = set()
        self._expired: set[str] = set()
        self._records: dict[str, BlueskyRecord] = {}
        self._blobs: dict[str, BlueskyBlob] = {}
        self._failures: deque[tuple[int, float | None, float | None]] = deque()
        self._login_failures: deque[tuple[int, float | None, float | None]] = deque()
        self._delete_failures: deque[tuple[int, float | None, float | None]] = deque()
        self.deleted: list[str] = []
        self._crashes: deque[float] = deque()
        self.logins = 0
        self.refreshes = 0

    # -- switches ------------------------------------------------------------------------------

    def fail_next(self, code: int, n: int = 1, retry_after: float | None = None, reset_in: float | None = None) -> None:
        with self._state:
            self._failures.extend([(code, retry_after, reset_in)] * n)

    def fail_deletes(self, code: int, n: int = 1, retry_after: float | None = None) -> None:
        with self._state:
            self._delete_failures.extend([(code, retry_after, None)] * n)

    def fail_logins(self, code: int, n: int = 1, reset_in: float | None = None) -> None:
        with self._state:
            self._login_failures.extend([(code, None, reset_in)] * n)

    def expire_access(self) -> None:
        """Every access JWT given so far is now expired."""
        with self._state:
            self._expired |= self._access
            self._access.clear()

    def expire_refresh(self) -> None:
        """Every refresh JWT given so far is now expired (and the access JWTs with them)."""
        with self._state:
            self._expired |= self._access | self._refresh
            self._access.clear()
            self._refresh.clear()

    def revoke(self, new_password: str) -> None:
        """The app password is revoked (a new one is `new_password`): its sessions end."""
        with self._state:
            self.app_password = new_password
            self._access.clear()
            self._refresh.clear()

    def crash_after_write(self, n: int = 1, hang: float = 3.0) -> None:
        with self._state:
            self._crashes.extend([hang] * n)

    @property
    def records(self) -> list[BlueskyRecord]:
        with self._state:
            return list(self._records.values())

    @property
    def blobs(self) -> list[BlueskyBlob]:
        with self._state:
            return list(self._blobs.values())

    # -- handling ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith("/xrpc/"):
            return Reply(404, raw=b"<html><title>Not Found</title></html>", content_type="text/html")
        nsid = request.path.removeprefix("/xrpc/")
        if request.method == "POST" and nsid == "com.atproto.server.createSession":
            return self._create_session(request)
        if request.method == "POST" and nsid == "com.atproto.server.refreshSession":
            return self._refresh_session(request)
        refused = self._check_access(request)
        if refused is not None:
            return refused
        if request.method == "GET" and nsid == "com.atproto.server.getSession":
            return Reply(200, {"handle": self.account_handle, "did": DID, "active": True,
                               "email": "urp@comune.example.it"})
        if request.method == "GET" and nsid == "com.atproto.repo.describeRepo":
            return Reply(200, {"handle": self.account_handle, "did": DID, "handleIsCorrect": True,
                               "collections": [POST], "didDoc": {"id": DID}})
        if request.method == "POST" and nsid == "com.atproto.repo.createRecord":
            return self._create_record(request)
        if request.method == "GET" and nsid == "com.atproto.repo.getRecord":
            return self._get_record(request)
        if request.method == "POST" and nsid == "com.atproto.repo.deleteRecord":
            return self._delete_record(request)
        if request.method == "POST" and nsid == "com.atproto.repo.uploadBlob":
            return self._upload(request)
        return Reply(404, {"error": "MethodNotImplemented", "message": "Method Not Implemented"})

    def _tokens(self) -> tuple[str, str]:
        number = next(self._ids)
        access, refresh = f"access-jwt-{number}", f"refresh-jwt-{number}"
        (self._expired if self.born_expired else self._access).add(access)
        self._refresh.add(refresh)
        return access, refresh

    def _session(self, access: str, refresh: str) -> dict[str, Any]:
        return {"did": DID, "handle": self.account_handle, "accessJwt": access, "refreshJwt": refresh, "active": True,
                "email": "urp@comune.example.it"}

    def _create_session(self, request: Request) -> Reply:
        params = request.params()
        with self._state:
            self.logins += 1
            failure = self._login_failures.popleft() if self._login_failures else None
            if failure is not None:
                return _failure(failure)
            if params.get("identifier") != self.account_handle or params.get("password") not in (
                    self.app_password, ACCOUNT_PASSWORD):
                return Reply(401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
            if params.get("password") == ACCOUNT_PASSWORD:
                return Reply(401, {"error": "AuthFactorTokenRequired",
                                   "message": "A sign in code has been sent to your email address"})
            return Reply(200, self._session(*self._tokens()))

    def _refresh_session(self, request: Request) -> Reply:
        token = _bearer(request)
        with self._state:
            if token in self._expired:
                return Reply(400, {"error": "ExpiredToken", "message": "Token has expired"})
            if token not in self._refresh:
                return Reply(400, {"error": "InvalidToken", "message": "Token has been revoked"})
            self._refresh.discard(token)
            self.refreshes += 1
            return Reply(200, self._session(*self._tokens()))

    def _check_access(self, request: Request) -> Reply | None:
        token = _bearer(request)
        with self._state:
            if token in self._access:
                return None
            if token in self._expired:
                return Reply(400, {"error": "ExpiredToken", "message": "Token has expired"})
        if token is None:
            return Reply(401, {"error": "AuthenticationRequired", "message": "Authentication Required"})
        return Reply(400, {"error": "InvalidToken", "message": "Token could not be verified"})

    def _create_record(self, request: Request) -> Reply:
        params = request.params()
        with self._state:
            failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                return _failure(failure)
            problem = self._invalid(params)
            if problem is not None:
                return Reply(400, {"error": "InvalidRequest", "message": problem})
            rkey = str(params["rkey"])
            if rkey in self._records:
                if self.duplicate_answer == "explicit":
                    return Reply(409, {"error": "RecordAlreadyExists",
                                       "message": f"Record already exists at at://{DID}/{POST}/{rkey}"})
                return Reply(500, {"error": "InternalServerError", "message": "Internal Server Error"})
            record = BlueskyRecord(rkey, f"at://{DID}/{POST}/{rkey}", dict(params["record"]))
            self._records[rkey] = record
            hang = self._crashes.popleft() if self._crashes else None
        if hang is not None:
            self._closing.wait(hang)
        return Reply(200, {"uri": record.uri, "cid": _cid(repr(record.value).encode()),
                           "validationStatus": "valid"})

    def _invalid(self, params: dict[str, Any]) -> str | None:
        """Why the lexicon refuses this create, or None."""
        if params.get("repo") not in (DID, self.account_handle):
            return f"Could not find repo: {params.get('repo')}"
        if params.get("collection") != POST:
            return "Invalid collection"
        if not isinstance(params.get("rkey"), str) or not _TID.match(params["rkey"]):
            return "Invalid record key: app.bsky.feed.post takes a TID"
        record = params.get("record")
        if not isinstance(record, dict) or record.get("$type") != POST:
            return "Invalid app.bsky.feed.post record: $type"
        text = record.get("text")
        if not isinstance(text, str) or not isinstance(record.get("createdAt"), str):
            return "Record must have the properties \"text\", \"createdAt\""
        if graphemes(text) > 300 or len(text.encode("utf-8")) > 3000:
            return "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"
        size = len(text.encode("utf-8"))
        for facet in record.get("facets", []):
            index = facet.get("index", {})
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
                return "Invalid app.bsky.feed.post record: facet index out of the text"
        embed = record.get("embed")
        if embed is not None:
            blobs = [embed.get("external", {}).get("thumb")] if embed.get("$type") == "app.bsky.embed.external" \
                else [image.get("image") for image in embed.get("images", [])]
            for blob in blobs:
                if blob is not None and blob.get("ref", {}).get("$link") not in self._blobs:
                    return "Could not find blob"
        return None

    def _get_record(self, request: Request) -> Reply:
        params = request.params()
        with self._state:
            record = self._records.get(str(params.get("rkey"))) if params.get("collection") == POST else None
        if record is None or params.get("repo") not in (DID, self.account_handle):
            return Reply(400, {"error": "RecordNotFound",
                               "message": f"Could not locate record: at://{DID}/{POST}/{params.get('rkey')}"})
        return Reply(200, {"uri": record.uri, "cid": _cid(repr(record.value).encode()), "value": record.value})

    def _delete_record(self, request: Request) -> Reply:
        params = request.params()
        with self._state:
            failure = self._delete_failures.popleft() if self._delete_failures else None
            if failure is not None:
                return _failure(failure)
            if params.get("repo") not in (DID, self.account_handle):
                return Reply(400, {"error": "InvalidRequest", "message": f"Could not find repo: {params.get('repo')}"})
            # Deleting what is not there succeeds too, as on the reference PDS.
            self._records.pop(str(params.get("rkey")), None)
            self.deleted.append(str(params.get("rkey")))
        return Reply(200, {"commit": {"cid": _cid(str(params).encode()), "rev": "3mfrdl2oobc2z"}})

    def _upload(self, request: Request) -> Reply:
        if len(request.body) > 1_000_000:
            return Reply(400, {"error": "BlobTooLarge", "message": "This file is too large"})
        mime_type = request.header("Content-Type") or "*/*"
        blob = BlueskyBlob(_cid(request.body), mime_type, request.body)
        with self._state:
            self._blobs[blob.cid] = blob
        return Reply(200, {"blob": {"$type": "blob", "ref": {"$link": blob.cid}, "mimeType": mime_type,
                                    "size": len(request.body)}})


def _bearer(request: Request) -> str | None:
    value = request.header("Authorization") or ""
    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


def _cid(data: bytes) -> str:
    return "bafkrei" + hashlib.sha256(data).hexdigest()[:52]


def _failure(failure: tuple[int, float | None, float | None]) -> Reply:
    code, retry_after, reset_in = failure
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    if reset_in is not None:
        # A unix time on the wall clock, as the PDS's rate limiter sends it.
        headers.update({"RateLimit-Limit": "300", "RateLimit-Remaining": "0",
                        "RateLimit-Reset": str(int(time.time() + reset_in)), "RateLimit-Policy": "300;w=86400"})
    names = {429: ("RateLimitExceeded", "Rate Limit Exceeded"), 500: ("InternalServerError", "Internal Server Error"),
             502: ("UpstreamFailure", "Upstream Failure"), 503: ("NotEnoughResources", "Service Unavailable"),
             400: ("InvalidRequest", "Invalid request"), 401: ("AuthenticationRequired", "Authentication Required")}
    error, message = names.get(code, ("Error", "Error"))
    return Reply(code, {"error": error, "message": message}, headers)


@pytest.fixture
def bluesky_server() -> Iterator[FakeBluesky]:
    """A running `FakeBluesky`, closed after."""
    with FakeBluesky() as server:
        yield server
