"""Quick measure of the summariser over the real corpus (not part of the test suite).

Usage: .venv/bin/python bench/alerts_quick.py [PATH_TO_items-real.jsonl] [--show N]

Default path: ../shared/corpus/items-real.jsonl relative to the repository. Builds an Item
per line (text = html_to_text(raw description)), an alert with max_length 400, and checks the
hard gates: length, no HTML tag or entity left, summary ending with a sentence end, summary
sentences verbatim in the source text. Prints the figures and the time per item.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from bridge import render
from bridge.item import Item
from bridge.summary import LinkTooLongError, build_alert
from bridge.text import clean_title, html_to_text

MAX_LENGTH = 400
TAG_RE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^<>]*>")
ENTITY_RE = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);")
END_RE = re.compile(r"[.!?][\"”»’')\]]*(?:\s*[^\w\s.!?,;:]+)*$")


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    show = int(argv[argv.index("--show") + 1]) if "--show" in argv else 0
    if show:
        args = [a for a in args if a != str(show)]
    default = Path(__file__).resolve().parents[1].parent / "shared/corpus/items-real.jsonl"
    path = Path(args[0]) if args else default
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    items = []
    for n, row in enumerate(rows):
        items.append(
            Item(
                feed_id=row.get("comune_feed", "corpus"),
                title=clean_title(row.get("title", "")),
                link=row.get("link") or f"https://example.invalid/{n}",
                guid=None,
                text=html_to_text(row.get("raw_description_html", "")),
            )
        )

    start = time.perf_counter()
    alerts = []
    kept = []
    rejected = 0
    for item in items:
        try:
            alerts.append(build_alert(item, feed_name="Corpus", max_length=MAX_LENGTH))
            kept.append(item)
        except LinkTooLongError:
            rejected += 1
    elapsed = time.perf_counter() - start
    items = kept

    too_long = tags = entities = bad_end = not_verbatim = with_summary = two = 0
    for item, alert in zip(items, alerts, strict=True):
        text = render.plain(alert)
        too_long += len(text) > MAX_LENGTH
        body = f"{alert.title}\n{alert.summary}"
        tags += bool(TAG_RE.search(body))
        entities += bool(ENTITY_RE.search(body))
        if alert.summary:
            with_summary += 1
            bad_end += not END_RE.search(alert.summary)
            flat = " ".join(item.text.split())
            # Sentences glued without a space in the source ("temporali.In") are joined
            # with one in the summary: compare without spaces.
            not_verbatim += alert.summary.replace(" ", "") not in flat.replace(" ", "")
            two += alert.summary.count(". ") >= 1

    n = len(items)
    print(f"items:                 {n} (+{rejected} rejected: link longer than max_length)")
    print(f"with summary:          {with_summary} ({100 * with_summary / n:.1f}%)")
    print(f"  of which 2+ sent.~:  {two}")
    print(f"alerts > {MAX_LENGTH} chars:     {too_long}")
    print(f"HTML tags left:        {tags}")
    print(f"entities left:         {entities}")
    print(f"summary bad ending:    {bad_end}")
    print(f"summary not verbatim:  {not_verbatim}")
    print(f"build_alert:           {1000 * elapsed / n:.3f} ms/item")
    start = time.perf_counter()
    for row in rows:
        html_to_text(row.get("raw_description_html", ""))
    print(f"html_to_text:          {1000 * (time.perf_counter() - start) / n:.3f} ms/item")
    for item, alert in list(zip(items, alerts, strict=True))[:show]:
        print("-" * 60)
        print(repr(item.text[:300]))
        print(render.whatsapp(alert))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
