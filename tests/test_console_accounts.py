"""`channel-bridge user add|passwd|remove|list`: scrypt hashes in users.json (0600) in the state
directory, the password from standard input when it is not a terminal, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from console.harness import write_config

from bridge.console.accounts import AccountBook, verify_password


def user(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHANNEL_BRIDGE", "STATE_DIRECTORY"))}
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), "user", *args],
                          input=stdin, capture_output=True, text=True, timeout=60, env=env)


def test_add_list_passwd_remove(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = config.path
    added = user(path, "add", "m.rossi", "--role", "editor", stdin="una password lunga\n")
    assert (added.returncode, added.stdout) == (0, 'account "m.rossi" added (editor)\n'), added.stderr
    accounts_file = config.bridge.state_dir / "users.json"
    assert stat.S_IMODE(accounts_file.stat().st_mode) == 0o600
    stored = json.loads(accounts_file.read_text())["accounts"]["m.rossi"]
    assert stored["role"] == "editor" and stored["password"].startswith("scrypt$")
    assert "una password lunga" not in accounts_file.read_text()
    assert verify_password("una password lunga", stored["password"])
    assert not verify_password("una password lungA", stored["password"])

    listed = user(path, "list")
    assert listed.stdout.split()[:2] == ["m.rossi", "editor"]
    assert "scrypt" not in listed.stdout

    assert user(path, "passwd", "m.rossi", stdin="un'altra password\n").returncode == 0
    account = AccountBook(config.bridge.state_dir).get("m.rossi")
    assert account is not None and verify_password("un'altra password", account.password_hash)

    assert user(path, "remove", "m.rossi").returncode == 0
    assert AccountBook(config.bridge.state_dir).read() == {}


def test_bad_input_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = config.path
    assert user(path, "add", "m.rossi", "--role", "viewer", stdin="una password lunga\n").returncode == 0
    before = (config.bridge.state_dir / "users.json").read_bytes()
    cases = [
        (("add", "m.rossi", "--role", "viewer"), "una password lunga\n", 'the account "m.rossi" exists already'),
        (("add", "Mario Rossi", "--role", "viewer"), "una password lunga\n", 'cannot name an account'),
        (("add", "l.bianchi", "--role", "viewer"), "corta\n", "password too short: at least 10 characters"),
        (("add", "l.bianchi", "--role", "viewer"), "", "no password on standard input"),
        (("passwd", "nessuno"), "una password lunga\n", 'no account "nessuno"'),
        (("remove", "nessuno"), "", 'no account "nessuno"'),
    ]
    for args, stdin, message in cases:
        answer = user(path, *args, stdin=stdin)
        assert answer.returncode == 1, args
        assert answer.stderr.count("\n") == 1 and message in answer.stderr, (args, answer.stderr)
        assert "Traceback" not in answer.stderr
    assert (config.bridge.state_dir / "users.json").read_bytes() == before
    unknown_role = user(path, "add", "l.bianchi", "--role", "admin", stdin="una password lunga\n")
    assert unknown_role.returncode == 2 and "invalid choice: 'admin'" in unknown_role.stderr
