"""The shipped config.toml does what the README promises: offline alerts on the terminal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
