"""The alert text over the real corpus: hard gates, fallback rate, speed (a benchmark, not a test).

Usage: .venv/bin/python bench/alerts.py [PATH_TO_items-real.jsonl] [--show N] [--fallbacks N]

Default path: ../shared/corpus/items-real.jsonl relative to the repository (never copied
into it). Each line becomes an Item as the parser would make it (title through
`clean_title` with the text as context, text = `html_to_text(raw description)`), then an alert with max_length 400
and the default template. Printed:

- the share of alerts passing each hard gate (target 100%): length, no HTML or entity, no
  boilerplate, summary ending at a sentence end or "…", no cut word, link present, every
  number of the alert found in the source (checked here independently of bridge.facts),
  identical bytes on a second run;
- the fallback rate to title + link, how summaries were made (sentences, lead line, cut);
- the link guard: items whose link is off their feed's domain or not a web address (the
  feed's domain is taken as the most common registrable domain of its links, the corpus
  has no feed URLs); the daemon holds them, so they make no alert here; and the
  addresses in titles and summaries: alerts with one off that domain (hard gate, 0), items
  held because their title is only such an address;
- alerts that must not exist (target 0 each): a summary ending in a cut line (a line closed
  with "." where its paragraph goes on in the source), a made-up link (an alert linking to
  something that is not the item's own http(s) link), a link-only text (no title and no
  summary);
- dates: of the items whose text names a calendar day, how many alerts (title + summary)
  name one too;
- milliseconds per item for `build_alert` (median, p99) and for `html_to_text`.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from bridge import render
from bridge.facts import is_verbatim, unsupported_facts
from bridge.inline_links import find_addresses
from bridge.item import Alert, Item
from bridge.links import link_problem, registrable_domain
from bridge.summary import AddressOnlyTitleError, build_alert, excess, lead_units
from bridge.text import clean_title, html_to_text, strip_boilerplate

MAX_LENGTH = 400
TAG_RE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^<>]*>")
ENTITY_RE = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);")
BOILERPLATE_RE = re.compile(
    r"leggi tutto|continua a leggere|leggi di pi[uù]|appeared first on|proviene da|tempo di lettura|"
    r"lorem\W+ipsum|\[\s*(?:…|\.\.\.)\s*\]",
    re.I,
)
# A listing page's date prefix: "MARTEDÌ, 18 AGOSTO 2026" in capitals, or a bare date line.
DATE_PREFIX_RE = re.compile(
    r"^(?:(?:LUNED|MARTED|MERCOLED|GIOVED|VENERD)Ì|SABATO|DOMENICA),? \d{1,2} [A-Z]+ \d{4}|"
    r"^(?:\w+,? )?\d{1,2} \w+ \d{4}(?:$|\n)",
)
END_RE = re.compile(r"(?:[.!?][\"”»’')\]]*|…)(?:\s*[^\w\s.!?,;:]+)*$")
NUMBER_RE = re.compile(r"\d+(?:[.,:/'’-]\d+)*")
WORD_RE = re.compile(r"\w+")
# A calendar day, independently of bridge.facts: "05/08/2026", "15/08", "27 settembre", "domenica 27".
MONTHS = "gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|dicembre"
WEEKDAYS = "luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica"
DATE_RE = re.compile(
    rf"(?<![\d/.-])\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:\d{{4}}|\d{{2}})(?![\d/-]|\.\d)|(?<![\d/])\d{{1,2}}/\d{{1,2}}(?![\d/])|"
    rf"\b\d{{1,2}}\s*[°º]?\s+(?:{MONTHS})\b|\b(?:{WEEKDAYS})\s+\d{{1,2}}\b",
    re.I,
)
SPACE_RE = re.compile(r"\s+")


def cut_line(summary: str, text: str) -> bool:
    """True when the summary ends with a "." that closes a line of `text` whose paragraph
    goes on (the source's next line follows it after a single line break)."""
    if not summary.endswith(".") or summary.endswith(".."):
        return False
    last = re.split(r"(?<=[.!?…])\s+", summary)[-1][:-1]
    flat_last = SPACE_RE.sub("", last)
    if not flat_last:
        return False
    for paragraph in re.split(r"\n\s*\n", text):
        lines = paragraph.split("\n")
        flat = [SPACE_RE.sub("", line) for line in lines]
        for line in flat[:-1]:
            if line.endswith(flat_last) and not line.endswith(flat_last + "."):
                return True
    return False


def load(path: Path) -> list[tuple[dict[str, str], Item]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for row in rows:
        text = html_to_text(row.get("raw_description_html", ""))
        item = Item(
            feed_id=row.get("comune_feed", "corpus"),
            title=clean_title(row.get("title", ""), text),
            link=row.get("link") or None,
            guid=None,
            text=text,
        )
        out.append((row, item))
    return out


def cut_word(summary: str, source: str) -> bool:
    """True when the summary's last word is not a whole word of the source."""
    words = WORD_RE.findall(summary)
    if not words:
        return False
    # Case aside: a shouted text is summarised in sentence case.
    return re.search(rf"(?<!\w){re.escape(words[-1])}(?!\w)", source, re.I) is None


def main(argv: list[str]) -> int:
    def option(name: str) -> int:
        return int(argv[argv.index(name) + 1]) if name in argv else 0

    show, fallbacks = option("--show"), option("--fallbacks")
    args = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or not argv[i - 1].startswith("--"))]
    default = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "items-real.jsonl"
    path = Path(args[0]) if args else default
    start = time.perf_counter()
    corpus = load(path)
    parse_ms = 1000 * (time.perf_counter() - start) / max(len(corpus), 1)

    # The feed's domain is its links' most common registrable domain (the corpus has no feed URLs).
    by_feed: dict[str, Counter[str]] = {}
    for _, item in corpus:
        host = urlsplit(item.link or "").hostname or ""
        by_feed.setdefault(item.feed_id, Counter())[registrable_domain(host) or host] += 1
    feed_urls = {feed: f"https://{domains.most_common(1)[0][0]}/" for feed, domains in by_feed.items()}

    alerts: list[tuple[dict[str, str], Item, Alert]] = []
    timings: list[float] = []
    rejected = 0
    address_titles = 0
    no_link = 0
    held: Counter[str] = Counter()
    for row, item in corpus:
        if item.link is None:
            no_link += 1  # held by the daemon: nothing to link to
            continue
        if link_problem(item.link, feed_url=feed_urls[item.feed_id]):
            held[item.feed_id] += 1  # held by the daemon's link guard: never an alert
            continue
        t0 = time.perf_counter()
        try:
            alert = build_alert(item, feed_name="Corpus", max_length=MAX_LENGTH, feed_url=feed_urls[item.feed_id])
        except AddressOnlyTitleError:
            address_titles += 1
            continue
        timings.append(1000 * (time.perf_counter() - t0))
        if excess(alert, max_length=MAX_LENGTH) > 0:
            rejected += 1  # the link alone is over the limit: short title + link, beyond it by design
            continue
        alerts.append((row, item, alert))

    must_not: Counter[str] = Counter()
    dated_items = dated_alerts = 0
    dated_misses: list[str] = []
    gates: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    failures: dict[str, list[str]] = {}
    for row, item, alert in alerts:
        text = render.plain(alert)
        body = f"{alert.title}\n{alert.summary}"
        source = f"{row.get('title', '')}\n{item.title}\n{item.text}"
        summary = alert.summary
        checks = {
            "length <= 400": len(text) <= MAX_LENGTH,
            "no HTML or entity": not TAG_RE.search(body) and not ENTITY_RE.search(body),
            "no boilerplate": not BOILERPLATE_RE.search(body) and not DATE_PREFIX_RE.search(summary),
            "ends at sentence end or …": not summary or bool(END_RE.search(summary)),
            "no cut word": not summary or not cut_word(summary, source),
            "link present": alert.link == item.link and text.endswith(alert.link),
            "every number from source": set(NUMBER_RE.findall(body)) <= set(NUMBER_RE.findall(source)),
            "identical on second run": render.whatsapp(
                build_alert(item, feed_name="Corpus", max_length=MAX_LENGTH, feed_url=feed_urls[item.feed_id])
            ) == render.whatsapp(alert),
            "no outside address": not any(
                link_problem(a.url, feed_url=feed_urls[item.feed_id]) for a in find_addresses(body)
            ),
        }
        link = alert.link or ""
        must_not["summary ending in a cut line"] += bool(summary) and cut_line(summary, strip_boilerplate(item.text))
        must_not["made-up link"] += link != item.link or not link.startswith(("https://", "http://"))
        must_not["link-only text"] += not alert.title.strip() and not summary.strip()
        if DATE_RE.search(strip_boilerplate(item.text)):  # a listing's publication date is not news
            dated_items += 1
            if DATE_RE.search(body):
                dated_alerts += 1
            elif len(dated_misses) < 3:
                dated_misses.append(text)
        for gate, ok in checks.items():
            gates[gate] += ok
            if not ok:
                failures.setdefault(gate, []).append(text)
        if not summary:
            kinds["fallback to title + link"] += 1
            units = lead_units(item.text, item.title)
            read = f"{source}\n{strip_boilerplate(item.text)}"
            if not item.text.strip():
                reasons["feed text empty"] += 1
            elif not units:
                reasons["no usable unit (title repeat, fragment, heading)"] += 1
            elif not unsupported_facts(units[0].text, read) and is_verbatim(units[0].text, read):
                reasons["no room beside title and link"] += 1
            else:
                reasons["fact guard"] += 1
        elif summary.endswith("…"):
            kinds["one sentence cut with …"] += 1
        elif summary.replace(" ", "") not in item.text.replace("\n", "").replace(" ", ""):
            kinds["lead line closed with ."] += 1
        else:
            kinds["whole sentences"] += 1

    n = len(alerts)
    print(f"items: {n} (+{rejected} with a link alone longer than max_length {MAX_LENGTH}: short title + link; "
          f"+{no_link} held: no link)")
    print("hard gates (share of alerts passing):")
    for gate in [
        "length <= 400",
        "no HTML or entity",
        "no boilerplate",
        "ends at sentence end or …",
        "no cut word",
        "link present",
        "every number from source",
        "identical on second run",
        "no outside address",
    ]:
        print(f"  {gate:<28} {100 * gates[gate] / n:6.2f}%  ({n - gates[gate]} failing)")
    print("alerts that must not exist (target 0):")
    for name in ["summary ending in a cut line", "made-up link", "link-only text"]:
        print(f"  {name:<28} {must_not[name]}")
    print(f"dates: {dated_alerts} of {dated_items} alerts of items that name a day carry one "
          f"({100 * dated_alerts / max(dated_items, 1):.1f}%)")
    print("summaries:")
    for kind, count in kinds.most_common():
        print(f"  {kind:<28} {100 * count / n:6.2f}%  ({count})")
    print("fallbacks, why (a thin item: the daemon may fetch the article page):")
    for reason, count in reasons.most_common():
        print(f"  {reason:<48} {100 * count / n:6.2f}%  ({count})")
    print(f"link guard: {sum(held.values())} items held (link off their feed's domain or not a web address), "
          f"in {len(held)} feeds")
    print(f"address guard: {address_titles} items held (title only an address off the feed's domain)")
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(0.99 * len(timings)))]
    print(f"build_alert ms/item: median {statistics.median(timings):.3f}  p99 {p99:.3f}  max {timings[-1]:.3f}")
    print(f"html_to_text + clean_title ms/item (parser side): {parse_ms:.3f}")
    for gate, texts in failures.items():
        for text in texts[:3]:
            print(f"--- FAIL {gate}\n{text}")
    for _, item, alert in alerts[:show]:
        print("-" * 60)
        print(repr(item.text[:300]))
        print(render.whatsapp(alert))
    shown = 0
    for _, item, alert in alerts:
        if shown >= fallbacks:
            break
        if not alert.summary and item.text:
            shown += 1
            print("-" * 60)
            print(f"{item.title!r}\n  {item.text[:300]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
