"""`[cards]` and each channel's `card` in the config, and what `check` says of the crest file."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from bridge.cards import CrestError, crest_problem, load_style
from bridge.cli import EXIT_INVALID, EXIT_OK, cmd_check
from bridge.config import DEFAULT_CARD_COLOUR, CardSettings, ConfigError, load_config, machine_problems

CREST = Path(__file__).parent / "fixtures" / "cards" / "stemma.png"

BASE = """\
[[feeds]]
id = "notizie"
name = "Notizie"
url = "https://www.comune.esempio.it/feed/"
channels = ["terminale"]

[channels.terminale]
type = "console"
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "config.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(directory: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(directory, text), env={})
    return caught.value.errors


def test_cards_settings_are_read_with_the_crest_beside_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE + """
        [cards]
        crest = "stemma.png"
        name = "Comune  di Esempio"
        colours = { default = "#112233", "Protezione civile" = "#B71C1C", eventi = "#2e7d32" }
        """), env={})
    assert config.cards == CardSettings(crest=tmp_path.resolve() / "stemma.png", crest_text="stemma.png",
                                        name="Comune di Esempio",
                                        colours={"protezione civile": "#b71c1c", "eventi": "#2e7d32"},
                                        default_colour="#112233")
    assert list(config.cards.colours) == ["protezione civile", "eventi"]  # the file's order, which decides


def test_without_cards_there_is_no_crest_and_the_default_colour(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), env={})
    assert config.cards == CardSettings()
    assert config.cards.default_colour == DEFAULT_CARD_COLOUR == "#0066cc"
    assert config.channels["terminale"].card == "auto"
    assert machine_problems(config) == []


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
def test_every_channel_takes_a_card_mode(tmp_path: Path, mode: str) -> None:
    config = load_config(write(tmp_path, BASE + f'card = "{mode}"\n'), env={})
    assert config.channels["terminale"].card == mode


@pytest.mark.parametrize(("text", "expected"), [
    (BASE + 'card = "sometimes"\n',
     ['channels.terminale.card: expected "auto", "always" or "never", got "sometimes"']),
    (BASE + "card = true\n", ["channels.terminale.card: expected a string, got a boolean true"]),
    (BASE + '[cards]\ncolours = { scuola = "giallo" }\n',
     ['cards.colours: "scuola": expected a colour "#rrggbb", got "giallo" '
      '(e.g. colours = { default = "#0066cc", "protezione civile" = "#b71c1c" })']),
    (BASE + '[cards]\ncolours = { default = "#12345" }\n',
     ['cards.colours: "default": expected a colour "#rrggbb", got "#12345" '
      '(e.g. colours = { default = "#0066cc", "protezione civile" = "#b71c1c" })']),
    (BASE + '[cards]\ncolours = "#0066cc"\n', ['cards.colours: expected a table, got a string "#0066cc"']),
    (BASE + '[cards]\ncrest = ""\n',
     ['cards.crest: must name an image file beside the config, e.g. crest = "stemma.png"']),
    (BASE + '[cards]\nname = " "\n', ["cards.name: must not be empty (leave it out to show each feed's name)"]),
    (BASE + '[cards]\ncrests = "stemma.png"\n', ['cards.crests: unknown key (did you mean "crest"?)']),
])
def test_bad_cards_settings_name_place_and_problem(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert errors_of(tmp_path, text) == expected


def test_a_missing_crest_is_a_check_error_that_says_where_it_looked(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE + '[cards]\ncrest = "stemma.png"\n'), env={})
    assert machine_problems(config) == [
        f'cards.crest: "stemma.png" does not exist (looked in {tmp_path.resolve()}/)']
    with pytest.raises(CrestError, match="does not exist"):
        load_style(config.cards)


@pytest.mark.parametrize(("content", "problem"), [
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "is not an image (a PNG, JPEG or WebP file is expected"),
    (b"", "is not an image (a PNG, JPEG or WebP file is expected"),
    (CREST.read_bytes()[:200], "cannot be read as an image"),  # a PNG cut short
])
def test_a_crest_that_is_not_an_image_is_a_check_error(tmp_path: Path, content: bytes, problem: str) -> None:
    (tmp_path / "stemma.png").write_bytes(content)
    config = load_config(write(tmp_path, BASE + '[cards]\ncrest = "stemma.png"\n'), env={})
    [found] = machine_problems(config)
    assert found.startswith('cards.crest: "stemma.png" ' + problem), found
    with pytest.raises(CrestError):
        load_style(config.cards)


def test_a_crest_as_large_as_a_photograph_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("1", (5000, 4000)).save(tmp_path / "stemma.png")
    config = load_config(write(tmp_path, BASE + '[cards]\ncrest = "stemma.png"\n'), env={})
    assert machine_problems(config) == ['cards.crest: "stemma.png" is 5000×4000 pixels: give a crest of at most '
                                        "a few hundred pixels a side"]


def test_a_crest_that_is_a_folder_is_a_check_error(tmp_path: Path) -> None:
    (tmp_path / "stemma").mkdir()
    config = load_config(write(tmp_path, BASE + '[cards]\ncrest = "stemma"\n'), env={})
    assert machine_problems(config) == [f'cards.crest: "stemma" is not a file ({tmp_path.resolve()}/stemma)']


def test_a_readable_crest_passes_and_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "stemma.png").write_bytes(CREST.read_bytes())
    config = load_config(write(tmp_path, BASE + '[cards]\ncrest = "stemma.png"\n'), env={})
    assert machine_problems(config) == []
    assert crest_problem(config.cards) is None
    style = load_style(config.cards)
    assert style.crest is not None and style.crest.size == (120, 144) and style.crest.mode == "RGBA"


def test_check_refuses_a_missing_crest_with_a_clear_message(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE + '[cards]\ncrest = "stemma.png"\n')
    assert cmd_check(path, io.StringIO()) == EXIT_INVALID
    assert f'cards.crest: "stemma.png" does not exist (looked in {tmp_path.resolve()}/)' in capsys.readouterr().err
    (tmp_path / "stemma.png").write_bytes(CREST.read_bytes())
    out = io.StringIO()
    assert cmd_check(path, out) == EXIT_OK
    assert "valid" in out.getvalue()
