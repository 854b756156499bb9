"""`channel-bridge check` and `status` as an operator runs them: a real process, its exit code
and what it prints (SPEC 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).parent.parent
SECRET = "waha-api-key-s3cr3t-0123456789"

VALID = """\
[bridge]
state_dir = "state"

[defaults]
channels = ["whatsapp", "terminale"]

[[feeds]]
id = "notizie"
name = "Notizie dal Comune"
url = "https://www.comune.example.it/feed/?post_type=notizia"
backfill = 3

[[feeds]]
id = "protezione-civile"
url = "https://www.comune.example.it/feed/?argomenti=protezione-civile"
interval = "10s"
urgent = true
channels = ["whatsapp"]

[alerts]
quiet_hours = "22:00-07:00"
min_gap = "2m"

[channels.whatsapp]
type = "waha"
url = "http://127.0.0.1:3000"
chat_id = "120363000000000000@newsletter"
api_key = "env:WAHA_API_KEY"

[channels.terminale]
type = "console"
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "config.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def channel_bridge(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m bridge ARGS` with an environment free of the machine's bridge settings."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CHANNEL_BRIDGE_CONFIG", "CONFIGURATION_DIRECTORY", "STATE_DIRECTORY",
                       "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WAHA_API_KEY"}
    }
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT.resolve()), clean.get("PYTHONPATH")]))
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bridge", *map(str, args)],
        cwd=cwd, env=clean, capture_output=True, text=True, timeout=60, check=False,
    )


def test_check_valid_config_prints_summary_without_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    result = channel_bridge("--config", path, "check", cwd=tmp_path, env={"WAHA_API_KEY": SECRET})

    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    assert lines[0] == f"{path.resolve()}: valid"
    assert "feeds (2):" in lines
    assert "channels (2):" in lines
    assert any(line.split()[:5] == ["notizie", "every", "5m", "->", "whatsapp,"] for line in lines), out
    assert any(line.split()[:4] == ["protezione-civile", "every", "10s", "->"] for line in lines), out
    assert any(line.split()[:2] == ["whatsapp", "waha"] and "api_key=env:WAHA_API_KEY" in line for line in lines)
    assert any(line.split() == ["terminale", "console"] for line in lines), out
    assert "quiet hours 22:00-07:00" in out
    assert 'warning: feeds[1] (id="protezione-civile").interval: 10s is very short' in out
    assert SECRET not in out + result.stderr
    assert "Traceback" not in result.stderr


def test_check_invalid_config_names_every_error_and_exits_2(tmp_path: Path) -> None:
    text = VALID.replace('interval = "10s"', 'interval = "5 minuti"').replace(
        'min_gap = "2m"', 'min_gap = "2m"\nquiet_hour = "23:00-06:00"'
    )
    path = write(tmp_path, text)
    result = channel_bridge("--config", path, "check", cwd=tmp_path, env={"WAHA_API_KEY": SECRET})

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"channel-bridge: {path.resolve()}: 2 errors",
        '  - feeds[1] (id="protezione-civile").interval: expected a duration like "5m", got "5 minuti"',
        '  - alerts.quiet_hour: unknown key (did you mean "quiet_hours"?)',
    ]
    assert SECRET not in result.stdout + result.stderr


def test_check_missing_config_file_says_so_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = channel_bridge("--config", missing, "check", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    # The CLI prints a one-line header and then the error itself.
    assert result.stderr.splitlines() == [
        f"channel-bridge: {missing}: file not found (give the right path with --config)"
    ]


def test_check_unresolvable_secret_exits_2_naming_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    result = channel_bridge("--config", path, "check", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"channel-bridge: {path.resolve()}: channels.whatsapp.api_key: "
        "environment variable WAHA_API_KEY is not set (or is empty)"
    ]


def test_config_option_wins_over_environment_then_environment_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    env = {"WAHA_API_KEY": SECRET, "CHANNEL_BRIDGE_CONFIG": str(tmp_path / "other.toml")}

    chosen = channel_bridge("--config", path, "check", cwd=tmp_path, env=env)
    assert chosen.returncode == 0, chosen.stderr

    from_env = channel_bridge("check", cwd=tmp_path, env=env)
    assert from_env.returncode == 2
    assert f"{tmp_path / 'other.toml'}: file not found" in from_env.stderr


def test_status_on_a_fresh_state_dir(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    state_dir = tmp_path / "fresh-state"
    result = channel_bridge(
        "--config", path, "status", cwd=tmp_path, env={"WAHA_API_KEY": SECRET, "STATE_DIRECTORY": str(state_dir)}
    )

    assert result.returncode == 0, result.stderr
    first_words = [line.split()[:1] for line in result.stdout.splitlines()]
    for name in (["notizie"], ["protezione-civile"], ["whatsapp"], ["terminale"]):
        assert name in first_words, result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_status_and_history_need_no_secrets(tmp_path: Path) -> None:
    # root on the server has no $CREDENTIALS_DIRECTORY: commands that send nothing still work.
    path = write(tmp_path, VALID.replace('"env:WAHA_API_KEY"', '"credential:waha-api-key"'))
    for command in (["status"], ["history"], ["status", "--json"]):
        result = channel_bridge("--config", path, *command, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    refused = channel_bridge("--config", path, "run", "--once", cwd=tmp_path)
    assert refused.returncode == 2
    assert "credential:waha-api-key needs systemd's LoadCredential=" in refused.stderr


LOCAL = """\
[bridge]
state_dir = "state"

[[feeds]]
id = "esempio"
url = "{url}"
channels = ["terminale"]
{extra}
[channels.terminale]
type = "console"
"""


def test_check_refuses_a_local_feed_file_that_does_not_exist(tmp_path: Path) -> None:
    path = write(tmp_path, LOCAL.format(url="feeds/notizie.xml", extra='link_domains = ["comune.esempio.it"]'))
    result = channel_bridge("--config", path, "check", cwd=tmp_path)

    assert result.returncode == 2, result.stdout
    assert "valid" not in result.stdout
    assert f'feeds[0] (id="esempio").url: the file {tmp_path / "feeds" / "notizie.xml"} does not exist' in result.stderr
    assert "relative path is taken from the config file's directory" in result.stderr
    assert "Traceback" not in result.stderr

    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "notizie.xml").write_text("<rss/>", encoding="utf-8")
    assert channel_bridge("--config", path, "check", cwd=tmp_path).returncode == 0


def test_check_refuses_a_local_feed_without_link_domains(tmp_path: Path) -> None:
    (tmp_path / "notizie.xml").write_text("<rss/>", encoding="utf-8")
    path = write(tmp_path, LOCAL.format(url="notizie.xml", extra=""))
    result = channel_bridge("--config", path, "check", cwd=tmp_path)

    assert result.returncode == 2, result.stdout
    assert 'feeds[0] (id="esempio").link_domains: a local feed file has no web domain' in result.stderr
    assert 'link_domains = ["comune.esempio.it"]' in result.stderr  # the fix, written out


def test_check_refuses_a_waha_chat_that_is_not_a_channel(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("120363000000000000@newsletter", "393331234567@c.us"))
    result = channel_bridge("--config", path, "check", cwd=tmp_path, env={"WAHA_API_KEY": SECRET})

    assert result.returncode == 2, result.stdout
    assert ('channels.whatsapp.chat_id: "393331234567@c.us" is not a WhatsApp Channel: '
            'a Channel\'s id ends in "@newsletter"') in result.stderr
    assert "/api/SESSION/channels" in result.stderr
