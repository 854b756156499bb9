"""The actors of a crash run (`test_crash.Actor`): people acting on the bridge through its command
line while the daemon is SIGKILLed and restarted, and what must hold once everything drained.

`Editors` acts on the alerts of a feed in approval mode (`approve = true`, WhatsApp only) with
the real commands, `channel-bridge queue approve ID [--text ...] | hold ID | drop ID --reason R`,
at seeded random instants, sometimes a second editor on the same alert at the same moment.
Each action ends in one of three ways: acknowledged (exit 0: durable before the answer),
refused with a message (someone got there first, or it does not apply), or unanswered (no
daemon, or the daemon killed mid-request: non-zero, no claim). At the end, with the last
daemon running, what still waits is approved; once it drained:

- every alert ends as its last action that took effect says: approved (with or without a new
  text) -> posted exactly once, with the edited text when edited; dropped -> never posted;
  nothing is posted that no approval (nor `approve_timeout`) released, and nothing was posted
  while held (the history's time of each post against the audit trail's);
- every acknowledged action is in the audit trail once as applied, by the Unix user running
  the command, from `cli`; an unanswered one is either applied once or followed by its
  "non applicata" entry, never half (the alert's fate follows the applied entries only).

`Composer` composes alerts (`channel-bridge send`: acknowledged -> posted exactly once) and
`Corrector` changes the date of published items of a feed with `corrections = "edit"` (each
post edited in place, never posted twice, no "Rettifica" where WhatsApp edits); `ACTORS` names
the actors `bench/crash.py --actions` runs, each an `Actor` with its own `check`.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from test_crash import SITE, Actor, CrashReport, Stream, World

from bridge.approval import normalize_text
from bridge.audit import NOT_APPLIED

SECTION = "approva"  # the approval feed's items: {SITE}/approva/N/
ACKNOWLEDGED = "acknowledged"
REFUSED = "refused"
UNANSWERED = "unanswered"
KINDS = ("approve", "edit", "hold", "drop")  # edit: approve --text
AUDITED = {"approve": "approve", "edit": "approve", "hold": "hold", "drop": "drop"}  # the audit trail's name
# What a command says when the daemon never answered: nothing may be claimed of the action.
NO_ANSWER = ("the daemon is not running", "closed the control connection", "did not answer",
             "did not accept the connection")
SETTLE = 300.0  # seconds the final approvals may take before the run is declared stuck
WORDS = ("redazione", "ufficio", "sindaco", "cantiere", "viabilità", "residenti", "tecnici", "comando")


@dataclass(frozen=True)
class Attempt:
    """One command an editor ran, and how it ended."""

    kind: str  # one of KINDS
    alert_id: str
    link: str
    outcome: str  # ACKNOWLEDGED, REFUSED or UNANSWERED
    message: str  # its one line (stdout when acknowledged, else stderr)
    text: str | None = None  # an edit's text
    final: bool = False  # made by `settle`, with the last daemon running


def classify(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """The outcome of one action command and its message."""
    if done.returncode == 0:
        return ACKNOWLEDGED, done.stdout.strip()
    message = done.stderr.strip()
    if any(phrase in message for phrase in NO_ANSWER):
        return UNANSWERED, message
    return REFUSED, message


def effective(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The audit entries whose action took effect: a NOT_APPLIED entry cancels its alert's entry
    just before it (and is no action itself)."""
    kept: list[dict[str, Any] | None] = []
    last: dict[str, int] = {}
    for entry in entries:
        if entry["action"] == NOT_APPLIED:
            index = last.pop(entry["alert_id"], None)
            if index is not None:
                kept[index] = None
            continue
        last[entry["alert_id"]] = len(kept)
        kept.append(entry)
    return [entry for entry in kept if entry is not None]


class Editors:
    """Editors approving, editing, holding and dropping the alerts of a feed in approval mode
    (see the module docstring); `every`: seconds between the feed's new items."""

    def __init__(self, *, seed: int, every: float = 1.5, limit: int = 40, pause: tuple[float, float] = (0.2, 1.0),
                 second: float = 0.4) -> None:
        self.rng = random.Random(seed)
        self.every = every
        self.limit = limit  # the feed's items, at most
        self.pause = pause  # seconds between two actions
        self.second = second  # the chance that a second editor acts on the same alert at once
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.attempts: list[Attempt] = []
        self.links: dict[str, str] = {}  # alert id -> item link, as the queue lists them
        self.stream: Stream | None = None
        self.posted_while_held: list[str] = []
        self.unsettled = False  # `settle` gave up: something still waited after SETTLE seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- Actor -------------------------------------------------------------------------------

    def config(self, world: World) -> str:
        return f"""
[[feeds]]
id = "{SECTION}"
name = "Da approvare"
url = "{world.feeds.url(f'/{SECTION}.xml')}"
channels = ["whatsapp"]
approve = true
"""

    def prepare(self, world: World) -> None:
        self.stream = Stream(world.feeds, every=self.every, limit=self.limit, path=f"/{SECTION}.xml", section=SECTION)
        self.stream.publish(2)  # recorded by the first poll, never posted

    def start(self, world: World) -> None:
        assert self.stream is not None
        self.stream.first_new = self.stream.count + 1
        self.stream.start()
        self._thread = threading.Thread(target=self._run, args=(world,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        if self.stream is not None:
            self.stream.stop()

    def settle(self, world: World) -> None:
        """Approve whatever still waits (awaiting or held) until every item of the feed is posted
        or dropped; first, note any held alert already posted."""
        assert self.stream is not None
        wanted = self.stream.new_links()
        held = {entry["alert_id"] for entry in self._last_effective(world).values() if entry["action"] == "hold"}
        posted = set(self._posted(world))
        self.posted_while_held = sorted(self.links.get(ident, ident) for ident in held
                                        if self.links.get(ident) in posted)
        quiet = 0
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            rows = self._rows(world)
            waiting = [row for row in rows if row["state"] in ("awaiting", "held")]
            for row in waiting:
                self._act(world, "approve", row, final=True)
            dropped = {self.links.get(e["alert_id"]) for e in self._last_effective(world).values()
                       if e["action"] == "drop"}
            done = set(self._posted(world)) | dropped
            if wanted <= done and not waiting:
                quiet += 1
                if quiet >= 3:  # the same three times in a row: nothing more comes
                    return
            else:
                quiet = 0
            self._stop.wait(0.5)
        self.unsettled = True

    def check(self, world: World, report: CrashReport) -> None:
        assert self.stream is not None
        problems = report.action_problems
        audit = world.command("audit", "--format", "json")
        assert audit.returncode == 0, audit.stderr
        entries = [e for e in json.loads(audit.stdout) if e["feed_id"] == SECTION]
        applied = effective(entries)
        posts = Counter(self._posted(world))
        texts: dict[str, list[str]] = {}
        for post in world.waha.posts:
            for line in post.text.splitlines():
                if line.startswith(f"{SITE}/{SECTION}/"):
                    texts.setdefault(line, []).append(post.text)
        for attempt in self.attempts:
            report.actions[f"{attempt.kind} {attempt.outcome}" + (" (final)" if attempt.final else "")] += 1

        # Every acknowledged action applied exactly once, by its author; an unanswered one at most once.
        by_request: Counter[tuple[str, str]] = Counter()
        for entry in applied:
            if entry["who"] == self.user and entry["where"] == "cli":
                by_request[(entry["alert_id"], entry["action"])] += 1
            elif entry["action"] not in ("timeout-send", "timeout-drop"):
                problems.append(f"{entry['alert_id']}: {entry['action']} by {entry['who']} from {entry['where']}, "
                                "which no editor asked for")
        acked: Counter[tuple[str, str]] = Counter()
        unanswered: Counter[tuple[str, str]] = Counter()
        for attempt in self.attempts:
            key = (attempt.alert_id, AUDITED[attempt.kind])
            if attempt.outcome == ACKNOWLEDGED:
                acked[key] += 1
            elif attempt.outcome == UNANSWERED:
                unanswered[key] += 1
            elif not attempt.message.startswith("channel-bridge: ") or attempt.alert_id not in attempt.message:
                problems.append(f"{attempt.kind} {attempt.alert_id} refused without a clear message: "
                                f"{attempt.message[-300:]!r}")
        applied_unanswered = 0
        for key in acked.keys() | unanswered.keys() | by_request.keys():
            if not acked[key] <= by_request[key] <= acked[key] + unanswered[key]:
                problems.append(f"{key[1]} on {key[0]}: {acked[key]} acknowledged, {unanswered[key]} unanswered, "
                                f"{by_request[key]} applied in the audit trail")
            applied_unanswered += max(0, min(by_request[key] - acked[key], unanswered[key]))
        cancelled = sum(1 for e in entries if e["action"] == NOT_APPLIED)

        # Each alert as its last applied action says.
        history: dict[str, list[dict[str, Any]]] = {}
        for entry in applied:
            history.setdefault(entry["alert_id"], []).append(entry)
        released: set[str] = set()
        dropped = 0
        for ident, steps in history.items():
            link = self.links.get(ident)
            if link is None:
                problems.append(f"{ident}: acted on, but never listed by the queue")
                continue
            last = steps[-1]["action"]
            if last in ("approve", "timeout-send"):
                released.add(link)
                if posts[link] != 1:
                    problems.append(f"{link}: approved, posted {posts[link]} times")
                edits = [e for e in steps
                         if e["action"] == "approve" and e["after"]["summary"] != e["before"]["summary"]]
                if edits and posts[link] == 1:
                    expected = edits[-1]["after"]["summary"]
                    asked = {normalize_text(a.text) for a in self.attempts if a.alert_id == ident and a.text}
                    if expected not in asked:
                        problems.append(f"{link}: the audit trail's edited text is none the editors gave")
                    if expected not in texts[link][0]:
                        problems.append(f"{link}: edited, posted without the edited text")
            elif last in ("drop", "timeout-drop"):
                dropped += 1
                if posts[link]:
                    problems.append(f"{link}: dropped, posted {posts[link]} times")
            else:
                problems.append(f"{link}: left {last} after the final approvals")
        acted = {self.links.get(ident) for ident in history}
        problems.extend(f"{link}: posted {count} times, neither approved nor timed out"
                        for link, count in sorted(posts.items()) if link not in acted)
        problems.extend(f"{link}: held, yet posted before an approval" for link in self.posted_while_held)
        # At the moment of each post (the history's, the daemon's clock as the audit's), the
        # alert's last applied action was an approval: nothing held or dropped went out.
        posted_history = world.command("history", "--format", "json")
        assert posted_history.returncode == 0, posted_history.stderr
        for record in json.loads(posted_history.stdout):
            if record["feed_id"] != SECTION:
                continue
            at = datetime.fromisoformat(record["posted_at"])
            before = [e for e in history.get(record["delivery_id"], []) if datetime.fromisoformat(e["at"]) <= at]
            if not before or before[-1]["action"] not in ("approve", "timeout-send"):
                problems.append(f"{record['link']}: posted at {record['posted_at']} while "
                                + (f"{before[-1]['action']} by {before[-1]['who']}" if before else "never approved"))
        if self.unsettled:
            problems.append(f"the approval feed had not drained {SETTLE:g} s after the final approvals began")
        wanted = self.stream.new_links()
        lost = sorted(link for link in wanted if not posts[link]
                      and not any(self.links.get(i) == link and s[-1]["action"] in ("drop", "timeout-drop")
                                  for i, s in history.items()))
        report.lost[f"{SECTION} (whatsapp)"] = lost
        report.duplicates[f"{SECTION} (whatsapp)"] = sum(n - 1 for link, n in posts.items() if n > 1)

        def count(kind: str, outcome: str) -> int:
            return sum(1 for a in self.attempts if a.kind == kind and a.outcome == outcome and not a.final)

        # Cut mid-request: the daemon took the connection, then died; the others found none running.
        cut = sum(1 for a in self.attempts if a.outcome == UNANSWERED and NO_ANSWER[0] not in a.message)
        finals = sum(1 for a in self.attempts if a.final and a.outcome == ACKNOWLEDGED)
        report.action_lines += [
            f"approval feed:          {len(wanted)} items published, {len(released & wanted)} posted, "
            f"{dropped} dropped ({finals} approved at the end)",
            "actions acknowledged:   " + ", ".join(f"{kind} {count(kind, ACKNOWLEDGED)}" for kind in KINDS),
            "refused with a message: " + ", ".join(f"{kind} {count(kind, REFUSED)}" for kind in KINDS),
            "unanswered (killed):    " + ", ".join(f"{kind} {count(kind, UNANSWERED)}" for kind in KINDS)
            + f" ({cut} cut mid-request); {applied_unanswered} applied, {cancelled} recorded \"non applicata\"",
        ]

    # -- the editors at work -----------------------------------------------------------------

    def _run(self, world: World) -> None:
        while not self._stop.wait(self.rng.uniform(*self.pause)):
            rows = [row for row in self._rows(world) if row["state"] in ("awaiting", "held", "pending")]
            if not rows:
                continue
            # A few editors at once, on alerts of the same listing; now and then two on one alert.
            acts: list[tuple[str, dict[str, Any]]] = []
            for row in self.rng.sample(rows, min(len(rows), self.rng.randint(1, 3))):
                acts.append((self.rng.choices(KINDS, weights=(4, 2, 2, 1.5))[0], row))
                if self.rng.random() < self.second:
                    acts.append((self.rng.choices(KINDS, weights=(3, 2, 2, 2))[0], row))
            editors = [threading.Thread(target=self._act, args=(world, kind, row)) for kind, row in acts]
            for editor in editors:
                editor.start()
            for editor in editors:
                editor.join()

    def _act(self, world: World, kind: str, row: dict[str, Any], *, final: bool = False) -> None:
        ident, link = str(row["id"]), str(row["link"])
        number = link.rstrip("/").rsplit("/", 1)[1]
        text = None
        args = ["queue", "approve" if kind == "edit" else kind, ident]
        if kind == "edit":
            text = (f"Avviso {number}, testo rivisto ({self.rng.choice(WORDS)} e {self.rng.choice(WORDS)}): "
                    "la strada resta chiusa per i lavori alla rete idrica.")
            args += ["--text", text]
        elif kind == "drop":
            args += ["--reason", "notizia doppia"]
        try:
            done = world.command(*args)
            outcome, message = classify(done)
        except subprocess.TimeoutExpired:
            outcome, message = UNANSWERED, "no answer within the command's time"
        with self._lock:
            self.attempts.append(Attempt(kind, ident, link, outcome, message, text, final))

    def _rows(self, world: World) -> list[dict[str, Any]]:
        """The approval feed's rows of `queue --json` (from the daemon, or the state when none runs)."""
        try:
            done = world.command("queue", "--json")
        except subprocess.TimeoutExpired:
            return []
        if done.returncode != 0:
            return []
        try:
            rows = [row for row in json.loads(done.stdout) if row.get("feed") == SECTION and row.get("id")]
        except ValueError:
            return []
        with self._lock:
            self.links.update({str(row["id"]): str(row["link"]) for row in rows})
        return rows

    def _last_effective(self, world: World) -> dict[str, dict[str, Any]]:
        audit = world.command("audit", "--format", "json")
        if audit.returncode != 0:
            return {}
        last: dict[str, dict[str, Any]] = {}
        for entry in effective([e for e in json.loads(audit.stdout) if e["feed_id"] == SECTION]):
            last[entry["alert_id"]] = entry
        return last

    @staticmethod
    def _posted(world: World) -> list[str]:
        return [line for post in world.waha.posts for line in post.text.splitlines()
                if line.startswith(f"{SITE}/{SECTION}/")]




COMPOSED = "composto"  # the composed alerts' links: {SITE}/composto/N/


@dataclass(frozen=True)
class Composed:
    """One `channel-bridge send` an editor ran, and how it ended."""

    number: int
    outcome: str  # ACKNOWLEDGED, REFUSED or UNANSWERED
    message: str

    @property
    def link(self) -> str:
        return f"{SITE}/{COMPOSED}/{self.number}/"

    @property
    def title(self) -> str:
        return f"Avviso composto {self.number}: ponte chiuso"


class Composer:
    """An editor composing alerts (`channel-bridge send --title ... --text ... --link ...
    --channel whatsapp`) at seeded random instants while the daemon is killed: an acknowledged
    one is posted exactly once and is in the audit trail once, by the Unix user, from `cli`; an
    unanswered one (no daemon, or killed mid-request) is posted at most once, and as often as
    the audit trail applied it; a refused one never."""

    def __init__(self, *, seed: int, limit: int = 30, pause: tuple[float, float] = (0.5, 1.5)) -> None:
        self.rng = random.Random(seed)
        self.limit = limit
        self.pause = pause
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.sent: list[Composed] = []
        self.unsettled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def config(self, world: World) -> str:
        return ""  # a composed alert needs no feed: its link is on the feeds' domains

    def prepare(self, world: World) -> None:
        pass

    def start(self, world: World) -> None:
        self._thread = threading.Thread(target=self._run, args=(world,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def settle(self, world: World) -> None:
        """Wait until every acknowledged alert is posted."""
        wanted = {c.link for c in self.sent if c.outcome == ACKNOWLEDGED}
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            if wanted <= set(self._posted(world)):
                return
            self._stop.wait(0.5)
        self.unsettled = True

    def check(self, world: World, report: CrashReport) -> None:
        problems = report.action_problems
        posts = Counter(self._posted(world))
        audit = world.command("audit", "--format", "json")
        assert audit.returncode == 0, audit.stderr
        applied = Counter(e["title"] for e in effective(json.loads(audit.stdout))
                          if e["action"] == "compose" and e["who"] == self.user and e["where"] == "cli")
        for composed in self.sent:
            report.actions[f"compose {composed.outcome}"] += 1
            posted, audited = posts[composed.link], applied[composed.title]
            if composed.outcome == ACKNOWLEDGED and (posted, audited) != (1, 1):
                problems.append(f"{composed.link}: acknowledged, posted {posted} times, in the audit trail {audited}")
            elif composed.outcome == UNANSWERED and not posted == audited <= 1:
                problems.append(f"{composed.link}: unanswered, posted {posted} times, in the audit trail {audited}")
            elif composed.outcome == REFUSED and (posted, audited) != (0, 0):
                # Refused (a daemon starting up says so without taking it): nothing may come of it.
                problems.append(f"{composed.link}: refused ({composed.message[-200:]!r}), yet posted {posted} times, "
                                f"in the audit trail {audited}")
        asked = {c.link for c in self.sent}
        problems.extend(f"{link}: posted, never composed" for link in posts if link not in asked)
        if self.unsettled:
            problems.append(f"the composed alerts had not drained {SETTLE:g} s after the kills")
        report.lost[f"{COMPOSED} (whatsapp)"] = sorted(c.link for c in self.sent
                                                      if c.outcome == ACKNOWLEDGED and not posts[c.link])
        report.duplicates[f"{COMPOSED} (whatsapp)"] = sum(n - 1 for n in posts.values() if n > 1)
        counts = Counter(c.outcome for c in self.sent)
        report.action_lines.append(
            f"composed alerts:        {counts[ACKNOWLEDGED]} acknowledged, {counts[REFUSED]} refused, "
            f"{counts[UNANSWERED]} unanswered "
            f"({sum(1 for c in self.sent if c.outcome == UNANSWERED and posts[c.link])} of them posted), "
            f"{sum(1 for c in self.sent if posts[c.link])} posted in all")

    def _run(self, world: World) -> None:
        number = 0
        while number < self.limit and not self._stop.wait(self.rng.uniform(*self.pause)):
            number += 1
            composed = Composed(number, UNANSWERED, "")
            args = ["send", "--title", composed.title, "--text",
                    f"Il ponte numero {number} resta chiuso per una verifica della struttura.",
                    "--link", composed.link, "--channel", "whatsapp"]
            try:
                outcome, message = classify(world.command(*args))
            except subprocess.TimeoutExpired:
                outcome, message = UNANSWERED, "no answer within the command's time"
            self.sent.append(Composed(number, outcome, message))

    @staticmethod
    def _posted(world: World) -> list[str]:
        return [line for post in world.waha.posts for line in post.text.splitlines()
                if line.startswith(f"{SITE}/{COMPOSED}/")]


CORRECTED = "rettifiche"  # the corrected feed's items: {SITE}/rettifiche/N/
BEFORE, AFTER = "12 dicembre", "13 dicembre"


class Corrector:
    """The comune's web office correcting posted news while the daemon is killed: a feed with
    `corrections = "edit"` gains items and, at seeded random instants, changes the date of one
    already published ("12 dicembre" -> "13 dicembre", title and text). Each item is posted
    exactly once; each changed item ends with the new date on WhatsApp (its post edited in
    place, or posted with it when the change came first); no "Rettifica" post (WAHA edits
    text posts); nothing edited that did not change."""

    def __init__(self, *, seed: int, limit: int = 30, every: float = 1.5, change: float = 0.5) -> None:
        self.rng = random.Random(seed)
        self.limit = limit
        self.every = every
        self.change = change  # the chance, each turn, that an item changes instead of a new one coming
        self.count = 0
        self.first_new = 1
        self.changed: set[int] = set()
        self.now = datetime.now().astimezone().replace(microsecond=0)
        self.unsettled = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._feeds: Any = None

    def config(self, world: World) -> str:
        return f"""
[[feeds]]
id = "{CORRECTED}"
name = "Assemblee"
url = "{world.feeds.url(f'/{CORRECTED}.xml')}"
channels = ["whatsapp"]
corrections = "edit"
"""

    def _item(self, n: int) -> dict[str, Any]:
        day = AFTER if n in self.changed else BEFORE
        return {"title": f"Assemblea {n} sul piano del traffico: il {day}",
                "link": f"{SITE}/{CORRECTED}/{n}/", "guid": f"{SITE}/?{CORRECTED}={n}",
                "description": f"L'assemblea numero {n} sul piano del traffico si tiene il {day} in sala consiliare.",
                "pubDate": self.now - timedelta(minutes=10) + timedelta(seconds=n)}

    def _publish(self) -> None:
        from servers.feeds import rss

        with self._lock:
            self._feeds.set_feed(f"/{CORRECTED}.xml", rss([self._item(n) for n in range(self.count, 0, -1)]))

    def prepare(self, world: World) -> None:
        self._feeds = world.feeds
        self.count = 2  # recorded by the first poll, never posted
        self._publish()

    def start(self, world: World) -> None:
        self.first_new = self.count + 1
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            candidates = [n for n in range(self.first_new, self.count + 1) if n not in self.changed]
            if candidates and (self.count >= self.limit or self.rng.random() < self.change):
                self.changed.add(self.rng.choice(candidates))
            elif self.count < self.limit:
                self.count += 1
            else:
                continue
            self._publish()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _texts(self, world: World) -> dict[int, list[str]]:
        """Each item's posts on WhatsApp, their text as it is now (edits applied)."""
        texts: dict[int, list[str]] = {}
        for post in world.waha.posts:
            for line in post.text.splitlines():
                if line.startswith(f"{SITE}/{CORRECTED}/"):
                    texts.setdefault(int(line.rstrip("/").rsplit("/", 1)[1]), []).append(post.text)
        return texts

    def _done(self, world: World) -> bool:
        texts = self._texts(world)
        return all(n in texts and (n not in self.changed or AFTER in texts[n][0])
                   for n in range(self.first_new, self.count + 1))

    def settle(self, world: World) -> None:
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            if self._done(world):
                return
            self._stop.wait(0.5)
        self.unsettled = True

    def check(self, world: World, report: CrashReport) -> None:
        problems = report.action_problems
        texts = self._texts(world)
        wanted = range(self.first_new, self.count + 1)
        edits = Counter(edit.message_id for edit in world.waha.edits)
        ids = {post.id: post for post in world.waha.posts}
        edited_items = {n for message_id in edits for n, posted in texts.items()
                        if message_id in ids and ids[message_id].text in posted}
        for n in wanted:
            posted = texts.get(n, [])
            if len(posted) != 1:
                problems.append(f"{SITE}/{CORRECTED}/{n}/: posted {len(posted)} times")
            elif n in self.changed and AFTER not in posted[0]:
                problems.append(f"{SITE}/{CORRECTED}/{n}/: changed at the source, still says {BEFORE} on WhatsApp")
        problems.extend(f"{SITE}/{CORRECTED}/{n}/: edited, never changed at the source"
                        for n in sorted(edited_items - self.changed))
        rettifiche = [post.text for post in world.waha.posts if post.text.lstrip("*").startswith("Rettifica")]
        problems.extend(f"a Rettifica post where WhatsApp edits: {text[:80]!r}" for text in rettifiche)
        if self.unsettled:
            problems.append(f"the corrected feed had not drained {SETTLE:g} s after the kills")
        report.actions["correction (changed at the source)"] += len(self.changed)
        report.actions["correction (post edited)"] += len(edited_items)
        report.lost[f"{CORRECTED} (whatsapp)"] = sorted(f"{SITE}/{CORRECTED}/{n}/" for n in wanted if n not in texts)
        report.duplicates[f"{CORRECTED} (whatsapp)"] = sum(len(p) - 1 for p in texts.values() if len(p) > 1)
        report.action_lines.append(
            f"corrected feed:         {len(wanted)} items published, {len(self.changed & set(wanted))} changed "
            f"after publication, {len(edited_items)} posts edited in place ({sum(edits.values())} edit requests)")


# The actors `bench/crash.py --actions` runs, by name: the editors, a composer
# (`channel-bridge send`) and the web office correcting posted news.
ACTORS: dict[str, Callable[[int, int], Actor]] = {  # name -> (seed, kills) -> the actor
    "editors": lambda seed, kills: Editors(seed=seed, limit=max(40, kills)),
    "composer": lambda seed, kills: Composer(seed=seed + 1, limit=max(30, kills)),
    "corrector": lambda seed, kills: Corrector(seed=seed + 2, limit=max(30, kills)),
}
