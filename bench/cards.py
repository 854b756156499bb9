"""The image cards of the corpus's first alerts, for a person to look at (a benchmark, not a test;
tests/test_cards.py holds the golden pictures and what a card may say).

Usage: .venv/bin/python bench/cards.py [PATH_TO_items-real.jsonl] [--count 20] [--out DIR]
                                      [--name "Comune di Esempio"] [--crest FILE]

Default path: ../shared/corpus/items-real.jsonl relative to the repository (never copied into
it). Each of the first `--count` items becomes an alert as the daemon makes it (`build_alert`,
title through `clean_title`, the text from the raw description), urgent when its title or lead
names one of the shipped config's `urgent_keywords`, and its card is drawn at both sizes
("square" 1080×1080, "link" 1200×630) with `--name` and `--crest` as `[cards]` would give them
(default: no name, so each card shows its feed's name, and the made-up crest of the tests).
The corpus has no dates, so neither have its cards.

Written: DIR/NN-square.png and DIR/NN-link.png (default: a new temporary folder), and alt.txt
with each card's alt text. Printed: the folder, and milliseconds per card (median, max) for
each size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bridge.cards import SIZES, CardSize, alt_text, draw_card, load_style
from bridge.config import AlertSettings, CardSettings, FeedConfig
from bridge.item import Alert, Item
from bridge.summary import AddressOnlyTitleError, build_alert
from bridge.text import clean_title, html_to_text
from bridge.verdict import is_urgent

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "items-real.jsonl"
CREST = REPO / "tests" / "fixtures" / "cards" / "stemma.png"
# As the shipped config.toml has them.
URGENT_KEYWORDS = ("allerta", "protezione civile", "evacuazione", "chiusura scuole", "scuole chiuse")


def alerts(path: Path, count: int) -> list[Alert]:
    """The first `count` alerts the corpus at `path` makes (items without a link make none)."""
    settings = AlertSettings(urgent_keywords=URGENT_KEYWORDS)
    out: list[Alert] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if len(out) == count:
            break
        if not line.strip():
            continue
        row = json.loads(line)
        text = html_to_text(row.get("raw_description_html", ""))
        item = Item(feed_id=row.get("comune_feed", "corpus"), title=clean_title(row.get("title", ""), text),
                    link=row.get("link") or None, guid=None, text=text)
        if item.link is None:
            continue
        feed = FeedConfig(id=item.feed_id, name=item.feed_id, url="https://corpus.invalid/", interval=timedelta(0),
                          channels=(), max_age=timedelta(0), backfill=0)
        try:
            out.append(build_alert(item, feed_name=item.feed_id, urgent=is_urgent(item, feed, settings)))
        except AddressOnlyTitleError:
            continue
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=CORPUS)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--name", default=None, help="the comune's name on the cards ([cards] name)")
    parser.add_argument("--crest", type=Path, default=CREST, help="the crest file ([cards] crest)")
    args = parser.parse_args(argv)
    if not args.corpus.exists():
        print(f"the corpus is not at {args.corpus}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="cards-"))
    out.mkdir(parents=True, exist_ok=True)
    style = load_style(CardSettings(crest=args.crest.resolve(), name=args.name))
    timings: dict[str, list[float]] = {size: [] for size in SIZES}
    descriptions = []
    chosen = alerts(args.corpus, args.count)
    for number, alert in enumerate(chosen, 1):
        size: CardSize
        for size in ("square", "link"):
            start = time.perf_counter()
            png = draw_card(alert, size=size, style=style)
            timings[size].append(1000 * (time.perf_counter() - start))
            (out / f"{number:02d}-{size}.png").write_bytes(png)
        descriptions.append(f"{number:02d}{' (urgente)' if alert.urgent else ''}: {alt_text(alert)}")
    (out / "alt.txt").write_text("\n".join(descriptions) + "\n", encoding="utf-8")
    print(f"{len(chosen)} alerts, {2 * len(chosen)} cards in {out}")
    for size, values in timings.items():
        if values:
            print(f"  {size:<6} {SIZES[size][0]}×{SIZES[size][1]}: {statistics.median(values):.1f} ms per card "
                  f"(median), {max(values):.1f} ms max")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
