"""`channel-bridge status | head`: a reader that goes away early ends the command quietly, as
it ends any Unix tool, with no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).parent.parent
FEEDS = 1500  # about 150 KB of `status`: more than a pipe holds, so the writer must block


def many_feeds(directory: Path) -> Path:
    feeds = "".join(f'\n[[feeds]]\nid = "feed-{n}"\nurl = "https://www.comune.example.it/feed/{n}"\n'
                    for n in range(FEEDS))
    path = directory / "config.toml"
    path.write_text(f'[bridge]\nstate_dir = "state"\n[defaults]\nchannels = ["terminale"]\n{feeds}'
                    '\n[channels.terminale]\ntype = "console"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize("args", [["status"], ["status", "--json"]])
def test_a_reader_that_closes_early_gets_no_traceback(tmp_path: Path, args: list[str]) -> None:
    config = many_feeds(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CHANNEL_BRIDGE_CONFIG")}
    env["PYTHONPATH"] = str(REPO_ROOT.resolve())
    process = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(config), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    assert process.stdout is not None and process.stderr is not None
    head = process.stdout.read(200)  # what `head -c 200` reads, then it exits
    process.stdout.close()
    errors = process.stderr.read().decode()
    code = process.wait(timeout=60)

    assert head  # it had started writing
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
    assert errors == ""
    assert code == 141  # as a shell reports a tool ended by SIGPIPE
