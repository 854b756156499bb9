"""The control socket's server on a real event loop (in a thread), over a real store and, for
the sessions, a real console: its bounds (request size, requests per connection, connections,
time to send a request), its named errors, a caller of another uid refused, and the client's
one-line errors (permission denied, timeout)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from console.harness import FakeClockDaemon, ServedConsole, delivery, write_config
from waiting import wait_for

from bridge.console.accounts import AccountBook
from bridge.console.server import Console
from bridge.control.client import ControlRefused, ControlTimeout, ask
from bridge.control.protocol import (
    BAD_REQUEST,
    BUSY,
    FORBIDDEN,
    TIMEOUT,
    TOO_LARGE,
    TOO_MANY_REQUESTS,
    UNKNOWN_CHANNEL,
    UNKNOWN_COMMAND,
    VERSION_MISMATCH,
    Limits,
    encode_request,
)
from bridge.control.server import ControlServer
from bridge.store import Store

REPO = Path(__file__).parent.parent
NOBODY = 65534


@dataclass
class ControlledDaemon(FakeClockDaemon):
    """What the control commands read of the daemon; its console, when one is served."""

    console: Console | None = None

    def status_line(self) -> str:
        return "1 feed, 0 failing, queue 2, no post yet"


class Served:
    """A ControlServer on its own loop in a thread, at a short path in a 0700 directory."""

    def __init__(self, daemon: ControlledDaemon, limits: Limits) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="cb-", dir="/tmp"))
        self.path = self.directory / "control.sock"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = ControlServer(daemon, self.path, limits=limits)
        self.call(self.server.start())

    def call(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
        for child in self.directory.iterdir():
            child.unlink()
        self.directory.rmdir()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ControlledDaemon]:
    config = write_config(tmp_path)
    store = Store.open(config.bridge.state_dir)
    store.add_deliveries([delivery("w1", "whatsapp", "Lavori in via Roma", order=1.0),
                          delivery("w2", "whatsapp", "Mercato di Natale", order=2.0)])
    try:
        yield ControlledDaemon(config, store)
    finally:
        store.close()


def serve(daemon: ControlledDaemon, **limits: Any) -> Served:
    return Served(daemon, Limits(**limits))


def exchange(path: Path, data: bytes, *, end: bool = True) -> list[dict[str, Any]]:
    """Send `data` (then, with `end`, nothing more: the server sees the end of the requests),
    and read every reply until the server closes the connection (bounded)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(30)
        connection.connect(os.fsdecode(path))
        try:
            connection.sendall(data)
            if end:
                connection.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at once (busy, another user) and closed: its reply is still there to read
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return [json.loads(line) for line in received.splitlines()]


def test_ping_and_queue(daemon: ControlledDaemon) -> None:
    served = serve(daemon)
    try:
        ping = ask(served.path, "ping")
        assert (ping["pid"], ping["status"], ping["user"], ping["console"]) == (
            os.getpid(), "1 feed, 0 failing, queue 2, no post yet", "root" if os.geteuid() == 0 else ping["user"],
            False)
        rows = ask(served.path, "queue", {"channel": "whatsapp"})["rows"]
        assert [(r["id"], r["why"]) for r in rows] == [("w1", "ready"), ("w2", "behind")]
        with pytest.raises(ControlRefused) as unknown:
            ask(served.path, "queue", {"channel": "whatsap"})
        assert unknown.value.code == UNKNOWN_CHANNEL and "channels: whatsapp, telegram" in unknown.value.hint
    finally:
        served.close()
    assert not served.path.exists()


def test_bad_requests_are_answered_and_the_connection_goes_on(daemon: ControlledDaemon) -> None:
    served = serve(daemon)
    try:
        replies = exchange(served.path, b"not json\n" + b'{"version": 2, "command": "ping"}\n'
                           + encode_request("approve", {"id": "w1"}) + encode_request("queue", {"channel": 3})
                           + encode_request("end_sessions", {}) + encode_request("ping"))
    finally:
        served.close()
    assert [r.get("error") for r in replies] == [BAD_REQUEST, VERSION_MISMATCH, UNKNOWN_COMMAND, BAD_REQUEST,
                                                 BAD_REQUEST, None]
    assert all(r["version"] == 1 for r in replies) and replies[-1]["ok"] is True
    assert replies[2]["hint"] == "commands: ping, queue, end_sessions, act, delete, compose"


def test_a_request_too_large_is_refused_and_the_connection_closed(daemon: ControlledDaemon) -> None:
    served = serve(daemon, max_request=1024)
    try:
        replies = exchange(served.path, b'{"version": 1, "command": "' + b"x" * 5000 + b'"}\n' + encode_request("ping"))
        ok = exchange(served.path, encode_request("queue", {"channel": "w" * 900}))  # under the bound: answered
    finally:
        served.close()
    assert [r["error"] for r in replies] == [TOO_LARGE]
    assert ok[0]["error"] == UNKNOWN_CHANNEL


def test_requests_per_connection_are_bounded(daemon: ControlledDaemon) -> None:
    served = serve(daemon, max_requests=3)
    try:
        replies = exchange(served.path, encode_request("ping") * 5)
    finally:
        served.close()
    assert [r["ok"] for r in replies] == [True, True, True, False]
    assert replies[3]["error"] == TOO_MANY_REQUESTS


def test_a_request_not_sent_in_time_ends_the_connection(daemon: ControlledDaemon) -> None:
    served = serve(daemon, read_timeout=0.2)
    try:
        replies = exchange(served.path, b'{"version": 1, "comm', end=False)  # and nothing more, for ever
    finally:
        served.close()
    assert [r["error"] for r in replies] == [TIMEOUT]


def test_connections_at_once_are_bounded(daemon: ControlledDaemon) -> None:
    served = serve(daemon, max_connections=1)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as first:
            first.settimeout(30)
            first.connect(os.fsdecode(served.path))
            first.sendall(encode_request("ping"))
            assert json.loads(first.recv(65536))["ok"] is True  # served: it holds the one place
            assert [r["error"] for r in exchange(served.path, encode_request("ping"))] == [BUSY]
        # Its place is free again once the server has seen it close (at once, or nearly).
        assert wait_for(lambda: [r["ok"] for r in exchange(served.path, encode_request("ping"))] == [True], 15)
    finally:
        served.close()


def test_end_sessions_ends_only_that_accounts(tmp_path: Path, daemon: ControlledDaemon) -> None:
    AccountBook(daemon.config.bridge.state_dir).add("m.rossi", "viewer", "una password lunga")
    AccountBook(daemon.config.bridge.state_dir).add("l.bianchi", "viewer", "una password lunga")
    console = ServedConsole(daemon)
    daemon.console = console.console
    served = serve(daemon)
    try:
        rossi = console.login("m.rossi", "una password lunga")
        bianchi = console.login("l.bianchi", "una password lunga")
        assert ask(served.path, "end_sessions", {"account": "m.rossi"}) == {"ended": 1, "console": True}
        assert rossi.get("/").status_code == 303 and bianchi.get("/").status_code == 200
    finally:
        served.close()
        console.close()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs a caller as another user (nobody): needs root")


# The client needs only the standard library: Debian's python3 runs it for a user who cannot
# reach the test's own interpreter (under root's home, say).
SYSTEM_PYTHON = Path("/usr/bin/python3")


def as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    python = SYSTEM_PYTHON if SYSTEM_PYTHON.exists() else Path(sys.executable)
    return subprocess.run([str(python), "-c", code], user=NOBODY, group=NOBODY, extra_groups=[],
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, cwd="/",
                          capture_output=True, text=True, timeout=60, check=False)


@needs_root
def test_a_caller_of_another_uid_is_refused_even_when_the_files_let_it_in(daemon: ControlledDaemon) -> None:
    served = serve(daemon)
    try:
        served.directory.chmod(0o711)  # loosened after the start's check: only SO_PEERCRED stands
        served.path.chmod(0o666)
        result = as_nobody(
            "from pathlib import Path\nfrom bridge.control.client import ask, ControlRefused\n"
            f"try:\n    ask(Path({str(served.path)!r}), 'queue')\n"
            "except ControlRefused as exc:\n    print(exc.code, exc, exc.hint, sep='|')\n")
    finally:
        served.close()
    assert result.returncode == 0, result.stderr
    code, message, hint = result.stdout.strip().split("|")
    assert code == FORBIDDEN and message == "nobody may not use the control socket: only root and root"
    assert hint == "run the command as root (sudo channel-bridge ...)"


@needs_root
def test_the_directory_keeps_other_users_out(daemon: ControlledDaemon) -> None:
    served = serve(daemon)
    try:
        result = as_nobody(
            "from pathlib import Path\nfrom bridge.control.client import ask, ControlPermissionError\n"
            f"try:\n    ask(Path({str(served.path)!r}), 'ping')\n"
            "except ControlPermissionError as exc:\n    print(exc, exc.hint, sep='|')\n")
    finally:
        served.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"permission denied on the control socket {served.path}|"
                                     "run the command as root, or as the daemon's user")


def test_the_client_gives_up_on_a_daemon_that_does_not_answer(tmp_path: Path) -> None:
    directory = Path(tempfile.mkdtemp(prefix="cb-", dir="/tmp"))
    path = directory / "control.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stuck:
            stuck.bind(os.fsdecode(path))
            stuck.listen(1)  # connections wait in its backlog; nothing ever answers
            with pytest.raises(ControlTimeout) as late:
                ask(path, "ping", timeout=0.2)
        assert str(late.value) == "the daemon did not answer within 0.2 s"
    finally:
        path.unlink(missing_ok=True)
        directory.rmdir()
