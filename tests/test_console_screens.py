"""Each console page can be shot as a PNG in the real browser (tests/console/screens.py, the
code of `make screenshots`): a page that fails to render, or renders another page, fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from console.browser import chromium
from console.harness import served
from console.screens import PAGES, VIEWPORT, ScreenshotError, expect_page, png_size, shoot


def test_every_page_has_its_screenshot(tmp_path: Path) -> None:
    written = shoot(tmp_path / "docs")
    assert [path.name for path in written] == [name for name, _, _ in PAGES]
    for path in written:
        width, height = png_size(path)
        assert width == VIEWPORT["width"] and height >= VIEWPORT["height"]
    # the documentation shows each of them
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    guide = (Path(__file__).parent.parent / "docs" / "guida-operatori.md").read_text(encoding="utf-8")
    for name, _, _ in PAGES:
        assert f"(docs/{name})" in readme, name
        assert f"({name})" in guide, name
        assert (Path(__file__).parent.parent / "docs" / name).is_file(), f"docs/{name}: run make screenshots"


def test_a_page_that_is_not_the_one_expected_is_not_shot(tmp_path: Path) -> None:
    for site in served(tmp_path):
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{site.url}/coda")  # no session: the login page instead
            with pytest.raises(ScreenshotError, match="not the page 'In coda'"):
                expect_page(page, "In coda")
    not_png = tmp_path / "x.png"
    not_png.write_bytes(b"<html>")
    with pytest.raises(ScreenshotError, match="is not a PNG"):
        png_size(not_png)
