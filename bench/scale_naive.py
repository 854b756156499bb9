"""The naive baseline of `bench/scale.py`: a sequential `feedparser.parse(url)` loop.

Usage: python bench/scale_naive.py URLS_FILE STATE_FILE

One pass over the URLs (one per line), in order, one at a time: `feedparser.parse(url,
etag=..., modified=...)` with the validators of the previous pass, so an unchanged feed costs
a 304. The seen entry ids and the validators are kept in STATE_FILE (JSON, rewritten once at
the end). Prints one line: feeds, new entries, 304s, errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import feedparser


def run(urls: list[str], state: dict[str, Any]) -> tuple[int, int, int]:
    """One pass over `urls`, updating `state`; return (new entries, not modified, errors)."""
    new = not_modified = errors = 0
    for url in urls:
        known = state.setdefault(url, {"etag": None, "modified": None, "seen": []})
        parsed = feedparser.parse(url, etag=known["etag"], modified=known["modified"])
        status = parsed.get("status")
        if status == 304:
            not_modified += 1
            continue
        if status != 200:
            errors += 1
            continue
        seen = set(known["seen"])
        for entry in parsed.entries:
            key = entry.get("id") or entry.get("link")
            if key and key not in seen:
                seen.add(key)
                new += 1
        known.update(etag=parsed.get("etag"), modified=parsed.get("modified"), seen=sorted(seen))
    return new, not_modified, errors


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    urls = [line.strip() for line in Path(argv[1]).read_text().splitlines() if line.strip()]
    state_path = Path(argv[2])
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    new, not_modified, errors = run(urls, state)
    state_path.write_text(json.dumps(state))
    print(f"feeds={len(urls)} new={new} not_modified={not_modified} errors={errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
