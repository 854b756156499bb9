"""The console is served by the daemon itself (`channel-bridge run` with `[console] listen`):
it answers on its address while the daemon runs, shows the daemon's state, and stops with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from console.harness import PASSWORD
from waiting import wait_for

from bridge.console.accounts import AccountBook

SAMPLE = Path(__file__).parent.parent / "bridge" / "sample"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_daemon_serves_the_console_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    feed = next(SAMPLE.glob("*.xml"))
    (tmp_path / "config.toml").write_text(
        f'[bridge]\nstate_dir = "state"\n\n[[feeds]]\nid = "notizie"\nname = "Notizie dal Comune"\n'
        f'url = "{feed}"\nchannels = ["console"]\nlink_domains = ["comune.example.it"]\n\n'
        f'[channels.console]\ntype = "console"\n\n[console]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
    AccountBook(tmp_path / "state").add("m.rossi", "viewer", PASSWORD)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHANNEL_BRIDGE", "STATE_DIRECTORY", "NOTIFY"))}
    process = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(tmp_path / "config.toml"), "run"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert wait_for(healthy, timeout=60), "the console never answered"
        with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
            assert client.get("/", follow_redirects=False).status_code == 303
            assert client.post("/login", data={"name": "m.rossi", "password": PASSWORD}).status_code == 200
            assert wait_for(lambda: "regolare" in client.get("/").text, timeout=60)  # the first poll, seen live
            assert "Notizie dal Comune" in client.get("/").text
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "console listening" in stderr
    assert not healthy()
