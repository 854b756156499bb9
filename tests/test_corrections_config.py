"""`corrections` in the config: its values checked with their place, the precedence of the
feed (or [defaults]) over the channel, and the default: "ask" where approval mode applies,
"edit" elsewhere (`bridge.corrections.correction_mode`, the one answer for the daemon, the
command line and the console)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bridge.config import Config, ConfigError, parse_config
from bridge.corrections import correction_mode


def config(extra_feed: str = "", extra_channel: str = "", defaults: str = "") -> Config:
    text = (f"[defaults]\n{defaults}\n"
            f'[[feeds]]\nid = "notizie"\nurl = "https://www.comune.esempio.it/feed/"\nchannels = ["wa"]\n{extra_feed}\n'
            f'[channels.wa]\ntype = "waha"\nurl = "http://127.0.0.1:1"\nchat_id = "1@newsletter"\n{extra_channel}\n')
    return parse_config(tomllib.loads(text), path=Path("/nowhere/config.toml"), env={}, resolve_secrets=False)


def mode(cfg: Config) -> str:
    return correction_mode(cfg.feed("notizie"), cfg.channels["wa"])


@pytest.mark.parametrize(("extra_feed", "extra_channel", "defaults", "expected"), [
    ("", "", "", "edit"),  # no approval mode: the post is corrected in place
    ("approve = true", "", "", "ask"),  # approval mode: an editor decides
    ("", "approve = true", "", "ask"),
    ("", "", "approve = true", "ask"),
    ('corrections = "post"', "", "", "post"),
    ('corrections = "off"', 'corrections = "edit"', "", "off"),  # the feed's wins
    ("", 'corrections = "post"', "", "post"),
    ("", 'corrections = "post"', 'corrections = "off"', "off"),  # [defaults] is the feed's
    ('corrections = "edit"', "", 'corrections = "off"', "edit"),
    ("approve = true", 'corrections = "edit"', "", "edit"),  # set, it wins over approval mode
])
def test_the_mode_of_a_feed_on_a_channel(extra_feed: str, extra_channel: str, defaults: str, expected: str) -> None:
    assert mode(config(extra_feed, extra_channel, defaults)) == expected


def test_without_a_feed_or_a_channel_the_default_is_edit() -> None:
    assert correction_mode(None, None) == "edit"


@pytest.mark.parametrize(("where", "prefix"), [
    ("feed", 'feeds[0] (id="notizie").corrections'),
    ("channel", "channels.wa.corrections"),
    ("defaults", "defaults.corrections"),
])
def test_other_values_are_refused_with_their_place(where: str, prefix: str) -> None:
    setting = 'corrections = "rettifica"'
    with pytest.raises(ConfigError) as caught:
        config(**{{"feed": "extra_feed", "channel": "extra_channel", "defaults": "defaults"}[where]: setting})
    [error] = [e for e in caught.value.errors if "corrections" in e]
    assert error.startswith(prefix), error
    assert 'expected "edit", "post", "ask" or "off", got "rettifica"' in error


def test_a_value_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        config(extra_feed="corrections = true")
    assert any(e.startswith('feeds[0] (id="notizie").corrections') for e in caught.value.errors), caught.value.errors
