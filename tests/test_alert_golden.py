"""Golden tests: feed-shaped item -> `render.whatsapp` text, one fixture pair per case.

Each `tests/fixtures/alerts/<case>.json` holds an item as a feed parser would see it (raw
title, raw description/content HTML) modelled on a real CMS feed shape, optionally a
"template" and, for a thin item, an "article_page" from fixtures/articles; the expected
WhatsApp message is `<case>.whatsapp.txt` beside it. The item goes through the same text
functions as the parser (`clean_title`, `html_to_text`), then `build_alert`.

To accept new outputs after a deliberate change: `UPDATE_GOLDEN=1 pytest tests/test_alert_golden.py`,
then review the diff of the .txt files before committing.
"""

from __future__ import annotations

import difflib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bridge import render
from bridge.article import extract_lead
from bridge.item import Item
from bridge.summary import build_alert
from bridge.template import DEFAULT_TEMPLATE, parse_template
from bridge.text import clean_title, html_to_text

FIXTURES = Path(__file__).parent / "fixtures" / "alerts"
ARTICLES = Path(__file__).parent / "fixtures" / "articles"
CASES = sorted(FIXTURES.glob("*.json"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def load_item(data: dict[str, Any]) -> Item:
    published = data.get("published")
    content_html = data.get("content_html", "")
    text = html_to_text(data.get("description_html", ""))
    return Item(
        feed_id=data["feed_id"],
        title=clean_title(data["title_raw"], text),
        link=data["link"],
        guid=data.get("guid"),
        text=text,
        content=html_to_text(content_html) if content_html else "",
        html=content_html or data.get("description_html", ""),
        published=datetime.fromisoformat(published) if published else None,
        categories=tuple(data.get("categories", ())),
        image_url=data.get("image_url"),
    )


def test_fixtures_present() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[path.stem for path in CASES])
def test_whatsapp_golden(case: Path) -> None:
    spec = json.loads(case.read_text(encoding="utf-8"))
    max_length = spec.get("max_length", 400)
    template = parse_template(spec["template"]) if "template" in spec else DEFAULT_TEMPLATE
    # A thin item's article page, as `bridge.article.ArticleReader` would have read it.
    article = ""
    if "article_page" in spec:
        article = extract_lead((ARTICLES / spec["article_page"]).read_text(encoding="utf-8"))
    alert = build_alert(
        load_item(spec["item"]),
        feed_name=spec["feed_name"],
        max_length=max_length,
        urgent=spec.get("urgent", False),
        article=article,
        template=template,
    )
    assert len(render.plain(alert, template)) <= max_length
    actual = render.whatsapp(alert, template) + "\n"
    expected_path = case.with_suffix(".whatsapp.txt")
    if UPDATE:
        expected_path.write_text(actual, encoding="utf-8")
    if not expected_path.exists():
        pytest.fail(f"missing {expected_path.name}; run with UPDATE_GOLDEN=1 to create it")
    expected = expected_path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{expected_path.name} (expected)",
                tofile="render.whatsapp (actual)",
            )
        )
        pytest.fail(f"golden mismatch for {case.stem}:\n{diff}", pytrace=False)
