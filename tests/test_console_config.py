"""`[console]`: off unless configured; `listen` and `session_timeout` validated with their place."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config

BASE = """\
[[feeds]]
id = "notizie"
name = "Notizie"
url = "feed.xml"
channels = ["console"]
link_domains = ["comune.example.it"]

[channels.console]
type = "console"
"""


def load(tmp_path: Path, console: str) -> object:
    (tmp_path / "feed.xml").write_text("<rss/>", encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(BASE + textwrap.dedent(console), encoding="utf-8")
    return load_config(path, env={})


def errors(tmp_path: Path, console: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, console)
    return caught.value.errors


def test_console_is_off_unless_configured(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.console.listen is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8470", ("127.0.0.1", 8470)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:8470", ("::1", 8470)),
    ("localhost:9000", ("localhost", 9000)),
])
def test_listen_address_and_port(tmp_path: Path, text: str, expected: tuple[str, int]) -> None:
    config = load(tmp_path, f'[console]\nlisten = "{text}"\nsession_timeout = "1h"\n')
    assert config.console.listen == expected  # type: ignore[attr-defined]
    assert config.console.session_timeout == timedelta(hours=1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["8470", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "console.lan:8470",
                                  "::1:8470", "[127.0.0.1]:8470", "127.0.0.1:port"])
def test_a_bad_listen_is_one_clear_error_with_its_place(tmp_path: Path, text: str) -> None:
    found = errors(tmp_path, f'[console]\nlisten = "{text}"\n')
    assert len(found) == 1
    assert found[0].startswith(f'console.listen: "{text}": expected ADDRESS:PORT')
    assert '"127.0.0.1:8470"' in found[0]


def test_listen_must_be_a_string_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    found = errors(tmp_path, '[console]\nlisten = 8470\nlisen = "x"\nsession_timeout = "1m"\n')
    assert found == [
        "console.listen: expected a string, got an integer 8470",
        'console.lisen: unknown key (did you mean "listen"?)',
        "console.session_timeout: must be at least 5m, got 1m",
    ]
