"""The control socket of the real daemon (`channel-bridge run` as a subprocess): `queue` asks
the running daemon and reads the state only when none runs, saying which; the socket's
directory is 0700 and the socket 0600; a socket left by a killed daemon is replaced; a path
that is not a socket, or a directory open to others, is refused and the daemon runs on;
`user passwd` and `user remove` end the account's console sessions at once."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from console.harness import NOW, PASSWORD, delivery
from daemons import Daemon, bridge_command, bridge_environment
from test_console_daemon import free_port
from waiting import wait_for

from bridge.console.accounts import AccountBook
from bridge.store import Store

SAMPLE = next((Path(__file__).parent.parent / "bridge" / "sample").glob("*.xml"))
LATER = datetime(2099, 1, 1, 9, 0, tzinfo=NOW.tzinfo)  # a retry no run of this test reaches


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory of mode 0700 for the socket (a Unix socket's path is at most 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="cb-", dir="/tmp") as name:
        yield Path(name)


def write_config(tmp_path: Path, control: Path, *, console_port: int | None = None) -> Path:
    text = (f'[bridge]\nstate_dir = "state"\ncontrol_socket = "{control}"\n\n'
            f'[[feeds]]\nid = "notizie"\nname = "Notizie dal Comune"\nurl = "{SAMPLE}"\nchannels = ["console"]\n'
            f'link_domains = ["comune.example.it"]\ninterval = "1h"\n\n[channels.console]\ntype = "console"\n')
    if console_port is not None:
        text += f'\n[console]\nlisten = "127.0.0.1:{console_port}"\n'
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    store = Store.open(tmp_path / "state")
    try:  # what waits and why is decided without the clock: a retry far ahead, one behind it
        store.add_deliveries([
            delivery("c1", "console", "Lavori in via Roma", order=1.0, attempts=2, next_attempt=LATER,
                     last_error="HTTP 502"),
            delivery("c2", "console", "Mercato di Natale", order=2.0),
        ])
    finally:
        store.close()
    return path


def command(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bridge_command(config, *args), env=bridge_environment(without=("RUNTIME_DIRECTORY",)),
                          capture_output=True, text=True, timeout=60, input=stdin, check=False)


def start(config: Path, tmp_path: Path, log: str = "daemon.log") -> Daemon:
    daemon = Daemon(config, tmp_path / log, env=bridge_environment(without=("RUNTIME_DIRECTORY",)))
    assert daemon.wait_started(), daemon.log()
    return daemon


def test_queue_asks_the_running_daemon_and_reads_the_state_when_none_runs(tmp_path: Path, socket_dir: Path) -> None:
    path = socket_dir / "control.sock"
    config = write_config(tmp_path, path)
    with start(config, tmp_path) as daemon:
        live = command(config, "queue")
        assert live.returncode == 0, live.stderr
        lines = live.stdout.splitlines()
        assert lines[0] == f"from the running daemon (pid {daemon.pid})"
        assert "nuovo tentativo dopo un errore: HTTP 502" in lines[2] and "in coda dietro 1 avviso" in lines[3]
        rows = json.loads(command(config, "queue", "--json").stdout)
        assert [(r["id"], r["state"], r["why"]) for r in rows] == [
            ("c1", "retrying", "retry"), ("c2", "pending", "behind")]
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        info = path.stat()
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
        assert daemon.stop() == 0
    assert not path.exists(), "the daemon removes its socket when it stops"
    offline = command(config, "queue")
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.splitlines()[0] == "from the state on disk: the daemon is not running"
    assert offline.stdout.splitlines()[1:] == lines[1:]
    assert json.loads(command(config, "queue", "--json").stdout) == rows  # the same shape, either way


def test_unknown_channel_asked_of_the_daemon_is_one_line_and_exit_2(tmp_path: Path, socket_dir: Path) -> None:
    config = write_config(tmp_path, socket_dir / "control.sock")
    with start(config, tmp_path) as daemon:
        result = command(config, "queue", "--channel", "whatsap")
        daemon.stop()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        'channel-bridge: no channel "whatsap" in the config or in the queue; channels: console']


def test_a_socket_left_by_a_killed_daemon_is_replaced(tmp_path: Path, socket_dir: Path) -> None:
    path = socket_dir / "control.sock"
    config = write_config(tmp_path, path)
    first = start(config, tmp_path)
    first.kill()  # SIGKILL: the socket file stays, nobody answers on it
    assert stat.S_ISSOCK(path.lstat().st_mode)
    gone = command(config, "queue")
    assert gone.stdout.splitlines()[0] == "from the state on disk: the daemon is not running", gone.stderr
    with start(config, tmp_path, "second.log") as second:
        assert "stale control socket replaced" in second.log(), second.log()
        assert command(config, "queue").stdout.splitlines()[0] == f"from the running daemon (pid {second.pid})"
        second.stop()


def test_a_path_that_is_not_a_socket_is_left_alone_and_the_daemon_runs_on(tmp_path: Path, socket_dir: Path) -> None:
    path = socket_dir / "control.sock"
    path.write_text("a file of the operator's\n", encoding="utf-8")
    config = write_config(tmp_path, path)
    with start(config, tmp_path) as daemon:
        assert "control socket not served" in daemon.log() and "exists and is not a socket" in daemon.log()
        result = command(config, "queue")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == (
            f"from the state on disk: the daemon (pid {daemon.pid}) does not answer on its control socket "
            f"{path} (see its log)")
        daemon.stop()
    assert path.read_text(encoding="utf-8") == "a file of the operator's\n"


def test_a_directory_open_to_others_is_refused(tmp_path: Path, socket_dir: Path) -> None:
    socket_dir.chmod(0o755)
    config = write_config(tmp_path, socket_dir / "control.sock")
    with start(config, tmp_path) as daemon:
        assert "is open to other users (mode 0755" in daemon.log(), daemon.log()
        daemon.stop()
    assert not (socket_dir / "control.sock").exists()


def test_the_socket_is_in_the_state_directory_by_default(tmp_path: Path) -> None:
    config = write_config(tmp_path, Path("unused"))
    config.write_text(config.read_text(encoding="utf-8").replace('control_socket = "unused"\n', ""),
                      encoding="utf-8")
    run_dir = Path(tempfile.mkdtemp(prefix="cb-run-", dir="/tmp"))
    short = run_dir / "s"
    (tmp_path / "state").rename(short)  # short enough for a socket's path
    config.write_text(config.read_text(encoding="utf-8").replace('state_dir = "state"', f'state_dir = "{short}"'),
                      encoding="utf-8")
    try:
        with start(config, tmp_path) as daemon:
            assert stat.S_ISSOCK((short / "control.sock").stat().st_mode)
            assert command(config, "queue").stdout.splitlines()[0] == f"from the running daemon (pid {daemon.pid})"
            daemon.stop()
    finally:
        for child in sorted(run_dir.rglob("*"), reverse=True):
            child.unlink() if not child.is_dir() or child.is_symlink() else child.rmdir()
        run_dir.rmdir()


def test_passwd_and_remove_end_the_accounts_console_sessions_at_once(tmp_path: Path, socket_dir: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, socket_dir / "control.sock", console_port=port)
    book = AccountBook(tmp_path / "state")
    book.add("m.rossi", "viewer", PASSWORD)
    book.add("l.bianchi", "viewer", PASSWORD)
    url = f"http://127.0.0.1:{port}"
    with start(config, tmp_path) as daemon:
        assert wait_for(lambda: "console listening" in daemon.log(), 30), daemon.log()

        def logged_in(name: str) -> httpx.Client:
            client = httpx.Client(base_url=url, timeout=30)
            assert client.post("/login", data={"name": name, "password": PASSWORD}).status_code == 303
            assert client.get("/").status_code == 200
            return client

        rossi, bianchi = logged_in("m.rossi"), logged_in("l.bianchi")
        changed = command(config, "user", "passwd", "m.rossi", stdin="un'altra password lunga\n")
        assert changed.returncode == 0, changed.stderr
        assert changed.stdout.splitlines() == ['password of "m.rossi" changed',
                                               "its console sessions ended at once (1 open)"]
        assert rossi.get("/").status_code == 303, "the old session still opens pages"
        assert bianchi.get("/").status_code == 200, "another account's session ended too"
        removed = command(config, "user", "remove", "l.bianchi")
        assert removed.stdout.splitlines() == ['account "l.bianchi" removed',
                                               "its console sessions ended at once (1 open)"], removed.stderr
        assert bianchi.get("/").status_code == 303
        assert "console sessions ended" in daemon.log() and "root" in daemon.log()
        rossi.close()
        bianchi.close()
        daemon.stop()
    after = command(config, "user", "passwd", "m.rossi", stdin="una terza password lunga\n")
    assert after.returncode == 0, after.stderr
    assert after.stdout.splitlines()[-1] == "the daemon is not running: no console session is open"


def test_a_daemon_of_another_protocol_version_is_one_line(tmp_path: Path, socket_dir: Path) -> None:
    path = socket_dir / "control.sock"
    config = write_config(tmp_path, path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(os.fsdecode(path))
        listener.listen(1)
        asking = subprocess.Popen(bridge_command(config, "queue"), env=bridge_environment(), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        listener.settimeout(30)
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b'{"version": 2, "ok": true, "result": {}}\n')
        out, err = asking.communicate(timeout=60)
    assert asking.returncode == 1 and out == ""
    assert err.strip().splitlines() == [
        "channel-bridge: the running daemon speaks control protocol version 2, this command version 1; "
        "restart the daemon after an upgrade: systemctl restart channel-bridge"]
