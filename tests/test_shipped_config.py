"""The shipped config.toml does what the README promises: offline alerts on the terminal, and
the staff console once its two lines are uncommented."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from daemons import Daemon, bridge_command, bridge_environment
from waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_config_prints_three_alerts_then_nothing(tmp_path: Path) -> None:
    # The same file and sample feed, with the state in a temporary directory.
    shutil.copytree(ROOT / "bridge" / "sample", tmp_path / "bridge" / "sample")
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "NOTIFY_SOCKET", "JOURNAL_STREAM")}
    command = [sys.executable, "-m", "bridge", "--config", str(tmp_path / "config.toml"), "run", "--once"]
    elsewhere = tmp_path / "cwd"  # not tmp_path itself: its bridge/sample must not shadow the package
    elsewhere.mkdir()

    first = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    headers = [line for line in first.stdout.splitlines() if line.startswith("── Comune di Esempio")]
    assert len(headers) == 3, first.stdout
    assert "Allerta meteo arancione: scuole chiuse sabato 21 novembre" in first.stdout
    assert "https://www.comune.esempio.it/novita/" in first.stdout
    assert "held" not in first.stderr

    second = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=elsewhere)
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""


def test_the_shipped_config_with_its_console_line_uncommented_serves_the_four_pages(tmp_path: Path) -> None:
    # What the README tells an office to do: uncomment [console] and listen, add an account,
    # start the daemon, log in; the four pages show the sample's feed and its alerts.
    shutil.copytree(ROOT / "bridge" / "sample", tmp_path / "bridge" / "sample")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
    commented = '# [console]\n# listen = "127.0.0.1:8470"'
    assert commented in shipped
    config = tmp_path / "config.toml"
    config.write_text(shipped.replace(commented, f'[console]\nlisten = "127.0.0.1:{port}"'), encoding="utf-8")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    added = subprocess.run(bridge_command(config, "user", "add", "ufficio", "--role", "viewer"),
                           input="una password lunga abbastanza\n", capture_output=True, text=True, timeout=60,
                           env=bridge_environment(), cwd=elsewhere)
    assert added.returncode == 0, added.stderr
    with Daemon(config, tmp_path / "daemon.log", cwd=elsewhere, stdout=tmp_path / "stdout.txt") as daemon:
        assert daemon.wait_started(60), daemon.log()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, follow_redirects=True) as client:
            assert client.post("/login", data={"name": "ufficio", "password": "una password lunga abbastanza"},
                               ).status_code == 200
            assert wait_for(lambda: "Allerta meteo arancione" in client.get("/pubblicati").text, timeout=60), \
                daemon.log()
            stato = client.get("/")
            assert stato.status_code == 200 and "Comune di Esempio" in stato.text and "regolare" in stato.text
            coda = client.get("/coda")
            assert coda.status_code == 200 and "In coda" in coda.text
            pubblicati = client.get("/pubblicati").text
            assert pubblicati.count("https://www.comune.esempio.it/novita/") >= 3
            anteprima = client.get("/anteprima/feed", params={"feed": "esempio"})
            assert anteprima.status_code == 200, anteprima.text
            assert "Allerta meteo arancione" in anteprima.text and "già" in anteprima.text  # already posted
        assert daemon.stop() == 0
