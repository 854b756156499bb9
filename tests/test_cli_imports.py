"""Each command imports what it needs: `--version`, `check` and `status` answer without the
daemon's dependencies (their cost is measured by bench/cli_startup.py, not here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAEMON_ONLY = {"httpx", "httpcore", "feedparser", "apscheduler", "bs4", "publicsuffixlist"}


def imported(args: list[str], cwd: Path) -> set[str]:
    """The top-level packages `channel-bridge ARGS` imports, from `python -X importtime`."""
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CHANNEL_BRIDGE_CONFIG")}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "bridge", *args], capture_output=True,
                            text=True, timeout=60, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip().split(".")[0]
             for line in result.stderr.splitlines() if line.startswith("import time:") and "|" in line}
    assert "bridge" in names  # the report is there: an empty set would prove nothing
    return names


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "bridge" / "sample", tmp_path / "bridge" / "sample")
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    (tmp_path / "cwd").mkdir()
    return tmp_path / "config.toml"


def test_version_imports_no_dependency(tmp_path: Path) -> None:
    names = imported(["--version"], tmp_path)
    assert not names & (DAEMON_ONLY | {"tinydb", "structlog"}), names


@pytest.mark.parametrize("command", ["check", "status"])
def test_check_and_status_leave_the_daemon_dependencies_alone(shipped: Path, command: str) -> None:
    names = imported(["--config", str(shipped), command], shipped.parent / "cwd")
    assert not names & DAEMON_ONLY, names & DAEMON_ONLY
