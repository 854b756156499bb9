"""What the fake platforms share: a real HTTP(S) server on loopback that records requests.

A `LoopbackServer` is a stdlib `ThreadingHTTPServer` on 127.0.0.1, port 0, serving from a
daemon thread; a subclass answers each `Request` with a `Reply` in `handle`. Bounded: a
request body over `MAX_BODY` answers 413 unread, each connection times out after a few
seconds, and only the last `MAX_RECORDED` requests are kept.

`tls_context()` makes it speak HTTPS with the test certificate in tests/fixtures/tls (valid
for `localhost` and `127.0.0.1`); `client_tls_context()` is the matching client side.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 16 * 1024 * 1024
MAX_RECORDED = 1000
TLS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "tls"


def tls_context() -> ssl.SSLContext:
    """A server-side TLS context with the test certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS_DIR / "localhost.pem", TLS_DIR / "localhost.key")
    return context


def client_tls_context() -> ssl.SSLContext:
    """A client-side TLS context that trusts only the test certificate."""
    return ssl.create_default_context(cafile=str(TLS_DIR / "localhost.pem"))


@dataclass(frozen=True, slots=True)
class Upload:
    """One file part of a multipart/form-data body."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the fake received it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any = None  # the decoded JSON body, None when not JSON
    form: dict[str, str] = field(default_factory=dict)  # urlencoded or multipart text fields
    files: dict[str, Upload] = field(default_factory=dict)  # multipart file parts

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def params(self) -> dict[str, Any]:
        """The parameters wherever they came: JSON object, form fields, or the query."""
        if isinstance(self.json, dict):
            return dict(self.json)
        if self.form:
            return dict(self.form)
        return {key: values[-1] for key, values in self.query.items()}


@dataclass(slots=True)
class Reply:
    """An answer: a JSON value (or raw bytes with `content_type`), headers, status."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    raw: bytes | None = None
    send_length: bool = True  # False: no Content-Length, the body ends when the connection does


class LoopbackServer:
    """Base of the fakes. Subclasses implement `handle`; use as a context manager."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.RLock()
        self._tls = tls
        self._requests: deque[Request] = deque(maxlen=MAX_RECORDED)
        self._delay = 0.0
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        self._closing.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:40123` (https when serving TLS)."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- switches and records --------------------------------------------------------------

    @property
    def delay(self) -> float:
        """Seconds to wait before answering any request (after handling it)."""
        with self._lock:
            return self._delay

    @delay.setter
    def delay(self, value: float) -> None:
        with self._lock:
            self._delay = value

    @property
    def requests(self) -> list[Request]:
        """The requests received, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up or failing the TLS handshake is not the test's business."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = 5  # a client that stalls mid-request frees its thread

    def do_GET(self) -> None:  # http.server's naming
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

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
        if length > MAX_BODY:
            self._answer(Reply(413, {"error": "body too large"}))
            return
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            # The sender went away mid-body (a killed daemon): a real server never sees this
            # request whole, so it is neither recorded nor handled.
            self.close_connection = True
            return
        request = _parse(method, self.path, dict(self.headers.items()), raw)
        fake._record(request)
        reply = fake.handle(request)
        delay = fake.delay
        if delay > 0:
            fake._closing.wait(delay)
        self._answer(reply, head=method == "HEAD")

    def _answer(self, reply: Reply, head: bool = False) -> None:
        if reply.raw is not None:
            data = reply.raw
        elif reply.body is None:
            data = b""
        else:
            data = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            if data or reply.raw is not None:
                self.send_header("Content-Type", reply.content_type)
            if reply.send_length and "Content-Length" not in reply.headers:
                self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(data)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass  # the client gave up: nothing to answer


def _parse(method: str, target: str, headers: dict[str, str], raw: bytes) -> Request:
    split = urlsplit(target)
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "")
    decoded: Any = None
    form: dict[str, str] = {}
    files: dict[str, Upload] = {}
    if raw and content_type.startswith("application/json"):
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
    elif raw and content_type.startswith("application/x-www-form-urlencoded"):
        form = {key: values[-1] for key, values in parse_qs(raw.decode("utf-8", "replace")).items()}
    elif raw and content_type.startswith("multipart/form-data"):
        form, files = _multipart(content_type, raw)
    return Request(
        method=method,
        path=split.path,
        query=parse_qs(split.query),
        headers=lowered,
        body=raw,
        json=decoded,
        form=form,
        files=files,
    )


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, Upload]]:
    """Split a multipart/form-data body into text fields and file parts (stdlib email)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    form: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = Upload(filename, part.get_content_type(), data)
        else:
            form[name] = data.decode(part.get_content_charset() or "utf-8", "replace")
    return form, files
