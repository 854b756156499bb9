"""Web pages on loopback (IPv4 or IPv6), and a routed "internet" for the address guard's tests.

`PageServer(host)` is an HTTP server on `127.0.0.1` or `::1`, port 0, that answers GET with
the pages (`page`) and redirects (`redirect`) a test sets, 404 otherwise, and records every
request path: an internal service a feed must never reach is a `PageServer` whose `paths`
stay empty.

`RoutedNetwork` is an httpcore network backend standing in for the internet: it connects a
(public) address and port to a loopback server by route, refuses any other address as an
unreachable network would, and records every address it was asked to connect to. With it
the address guard's real connection path runs, with public addresses, without leaving
loopback. `FakeDNS` answers names from a table, a list of answers per name (the last one
repeats), and records every question.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import pytest

HTML = "text/html; charset=utf-8"
SECRET = "SEGRETO INTERNO: la password del router di servizio è scritta sul foglio giallo in segreteria."
SECRET_PAGE = f"<html><body><main><p>{SECRET}</p></main></body></html>"


class PageServer:
    """An HTTP/1.1 server on `host` (127.0.0.1 or ::1), on a free port, in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self._paths: list[str] = []
        handler = type("_BoundHandler", (_Handler,), {"pages": self})
        server_class = _IPv6Server if ":" in host else _IPv4Server
        self._httpd = server_class((host, 0), handler)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"page-server-{self.port}", daemon=True)
        self._thread.start()

    def __enter__(self) -> PageServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """The absolute URL of `path` here: "http://127.0.0.1:PORT/path" or "http://[::1]:PORT/path"."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def page(self, path: str, html: str = SECRET_PAGE, content_type: str = HTML) -> str:
        """Serve `html` at `path`; return its URL."""
        with self._lock:
            self._routes[path] = (200, {"Content-Type": content_type}, html.encode("utf-8"))
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        """Answer `path` with a redirect to `to`; return its URL."""
        with self._lock:
            self._routes[path] = (status, {"Location": to}, b"")
        return self.url(path)

    @property
    def paths(self) -> list[str]:
        """The paths of every request received, in order."""
        with self._lock:
            return list(self._paths)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _IPv4Server(ThreadingHTTPServer):
    daemon_threads = True


class _IPv6Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    pages: PageServer
    protocol_version = "HTTP/1.1"
    timeout = 5

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.pages._lock:
            self.pages._paths.append(self.path)
            status, headers, body = self.pages._routes.get(
                self.path, (404, {"Content-Type": "text/plain"}, b"not found\n"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class RoutedNetwork(httpcore.AsyncNetworkBackend):
    """The internet, for tests: `routes` maps (address, port) to a loopback (host, port)."""

    def __init__(self, routes: dict[tuple[str, int], tuple[str, int]]) -> None:
        self.routes = routes
        self.connects: list[tuple[str, int]] = []
        self._loopback = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        target = self.routes.get((host, port))
        if target is None:
            raise httpcore.ConnectError(f"no route to {host} port {port} (test network)")
        return await self._loopback.connect_tcp(target[0], target[1], timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self._loopback.sleep(seconds)


class FakeDNS:
    """A resolver from a table: name -> answers, one list per question (the last repeats).

    An IP address resolves to itself, as with the system resolver."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self._table = {name: list(answers) for name, answers in table.items()}
        self.questions: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.questions.append(host)
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        answers = self._table.get(host)
        if not answers:
            raise OSError(f"{host}: Name or service not known (test DNS)")
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    """A `PageServer` on 127.0.0.1, closed after the test."""
    with PageServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def page_server_v6() -> Iterator[PageServer]:
    """A `PageServer` on ::1 (the test is skipped where IPv6 loopback is missing)."""
    try:
        server = PageServer("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with server:
        yield server
