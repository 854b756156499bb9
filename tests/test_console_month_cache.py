"""What the *Pubblicati* search keeps of past months' history files (`PastMonths`): a kept
month answers as its file does; a file changed behind it is read again; the current month is
always read; the memory bound drops the months used least recently; and over a generated
history every query finds the same posts, in the same order, with the digests and without."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from console.harness import ServedConsole, served

from bridge.console import published
from bridge.console.month_cache import PastMonths
from bridge.console.published import HistoryQuery
from bridge.models import Post
from bridge.store import History

ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
WORDS = ["lavori", "via", "roma", "scuole", "neve", "mercato", "città", "ßtraße", "perché", "Kelvin"]


def post(number: int, at: datetime, title: str, *, channel: str = "whatsapp", feed: str = "notizie") -> Post:
    return Post(delivery_id=f"d{number}", channel=channel, feed_id=feed, title=title,
                link=f"https://www.comune.example.it/n/{number}", posted_at=at,
                remote_id=f"true_1203@newsletter_{number}")


class Files:
    """A real history in monthly files, read as the console reads it (counting the months
    read), and the digests of its past months."""

    def __init__(self, state_dir: Path, posts: list[Post], budget: int = 1 << 30) -> None:
        self.history = History(state_dir, read_only=False)
        for p in posts:
            self.history.append([p])
        self.read: list[str] = []
        self.digests = PastMonths(self.history.month_path, self.history.read_month, lambda: NOW, budget)

    def __call__(self, month: str, keep: object = None) -> list[Post]:
        self.read.append(month)
        return sorted(self.history.read_month(month, keep), key=lambda p: p.posted_at)  # type: ignore[arg-type]

    def search(self, query: HistoryQuery, *, cached: bool = True) -> list[str]:
        page = published.search(query, self.history.months(), self, ROME, page_size=20,
                                digests=self.digests if cached else None)
        return [p.delivery_id for p in page.posts] + (["more"] if page.has_next else [])


def monthly(months: int, per_month: int, start: datetime = datetime(2026, 1, 3, 9, tzinfo=UTC)) -> list[Post]:
    return [post(m * per_month + n, start + timedelta(days=30 * m, hours=n), f"Chiusura scuole per neve {n}")
            for m in range(months) for n in range(per_month)]


def test_a_kept_month_answers_as_its_file_does_and_is_not_read_again(tmp_path: Path) -> None:
    files = Files(tmp_path, [*monthly(5, 30), post(999, datetime(2026, 12, 2, 9, tzinfo=UTC), "Mercato")])
    assert files.search(HistoryQuery(text="niente")) == []
    assert files.digests.reads == 5  # every past month, once; December is the current one
    files.read.clear()
    assert files.search(HistoryQuery(text="niente")) == []
    assert files.read == ["2026-12"] and files.digests.reads == 5  # only the current month is read
    assert files.search(HistoryQuery(text="neve 7")) == files.search(HistoryQuery(text="neve 7"), cached=False)
    assert files.search(HistoryQuery(feed="eventi")) == [] and files.search(HistoryQuery(channel="telegram")) == []


def test_the_current_month_is_always_read(tmp_path: Path) -> None:
    files = Files(tmp_path, monthly(1, 3, start=datetime(2026, 12, 1, 9, tzinfo=UTC)))
    assert files.digests("2026-12") is None and files.digests("2027-01") is None
    files.history.append([post(99, datetime(2026, 12, 7, 9, tzinfo=UTC), "Mercato di Natale")])
    assert files.search(HistoryQuery(text="mercato")) == ["d99"]
    assert files.digests.kept() == []


def test_a_file_edited_by_hand_is_read_again(tmp_path: Path) -> None:
    files = Files(tmp_path, monthly(3, 10))
    assert files.search(HistoryQuery(text="gelata")) == []
    path = files.history.month_path("2026-02")
    text = path.read_text(encoding="utf-8")
    # The same length: only the file's times tell the edit.
    path.write_text(text.replace("per neve 4", "gelata!! 4", 1), encoding="utf-8")
    assert os.stat(path).st_size == len(text.encode())
    assert files.search(HistoryQuery(text="gelata")) == ["d14"]
    with path.open("a", encoding="utf-8") as log_file:  # a record added late, after a clock jump
        log_file.write(text.splitlines()[0].replace('"d10"', '"d500"').replace("per neve 0", "gelata 0") + "\n")
    assert files.search(HistoryQuery(text="gelata")) == ["d14", "d500"]
    path.unlink()
    assert files.search(HistoryQuery(text="gelata")) == []
    assert files.digests("2026-02") is None and "2026-02" not in files.digests.kept()


def test_a_file_written_while_it_is_read_is_not_kept(tmp_path: Path) -> None:
    history = History(tmp_path, read_only=False)
    history.append(monthly(1, 5))
    path = history.month_path("2026-01")

    def read_while_written(month: str) -> list[Post]:
        found = history.read_month(month)
        with path.open("a", encoding="utf-8") as log_file:
            log_file.write(path.read_text(encoding="utf-8").splitlines()[0].replace('"d0"', '"d9"') + "\n")
        return found

    digests = PastMonths(history.month_path, read_while_written, lambda: NOW)
    assert digests("2026-01") is None and digests.kept() == []  # the search reads the file itself


def test_the_bound_drops_the_months_used_least_recently(tmp_path: Path) -> None:
    files = Files(tmp_path, monthly(6, 40))
    one = files.digests("2026-01")
    assert one is not None
    files.digests.budget = one.nbytes * 3 + one.nbytes // 2  # room for three months' digests
    for month in ("2026-01", "2026-02", "2026-03", "2026-01", "2026-04"):
        files.digests(month)
    assert files.digests.kept() == ["2026-03", "2026-01", "2026-04"]
    assert files.digests.nbytes <= files.digests.budget
    files.digests.budget = one.nbytes // 2  # no month fits: none is kept, every search reads
    files.digests("2026-05")
    assert "2026-05" not in files.digests.kept()
    assert files.search(HistoryQuery(text="neve 3")) == files.search(HistoryQuery(text="neve 3"), cached=False)


def test_every_query_finds_the_same_with_the_digests_and_without(tmp_path: Path) -> None:
    chance = random.Random(13)
    start = datetime(2025, 10, 1, tzinfo=UTC)
    posts = []
    for n in range(900):
        at = start + timedelta(minutes=chance.randrange(0, 60 * 24 * 430))  # into the current month
        title = " ".join(chance.choice(WORDS) for _ in range(chance.randrange(1, 5)))
        posts.append(post(n, at, title.upper() if n % 7 == 0 else title,
                          channel=chance.choice(["whatsapp", "telegram"]),
                          feed=chance.choice(["notizie", "eventi", "bandi"])))
    files = Files(tmp_path, posts, budget=200_000)  # a bound that drops months as the queries go
    for _ in range(300):
        days = sorted(start.date() + timedelta(days=chance.randrange(0, 430)) for _ in range(2))
        query = HistoryQuery(
            text=" ".join(chance.sample([*WORDS, "niente", "ROMA", "ss", "k", "rom"], chance.randrange(0, 3))),
            feed=chance.choice(["", "", "notizie", "bandi", "altro"]),
            channel=chance.choice(["", "", "whatsapp", "telegram"]),
            first_day=days[0] if chance.random() < 0.3 else None,
            last_day=days[1] if chance.random() < 0.3 else None,
            page=chance.choice([1, 1, 2, 5]))
        assert files.search(query) == files.search(query, cached=False), query


def test_the_page_skips_past_months_and_sees_a_hand_edit(tmp_path: Path) -> None:
    site: ServedConsole
    for site in served(tmp_path):
        store = site.daemon.store
        history = History(store.state_dir, read_only=False)
        history.append(monthly(4, 5, start=datetime(2026, 8, 3, 9, tzinfo=UTC)))
        client = site.login()
        assert client.get("/pubblicati", params={"q": "gelata"}).status_code == 200
        assert site.console.past_months.reads == 4  # August to November, each read once
        assert "gelata" not in client.get("/pubblicati", params={"q": "gelata"}).text.split("<tbody>")[-1]
        assert site.console.past_months.reads == 4
        path = store.month_file("2026-09")
        path.write_text(path.read_text(encoding="utf-8").replace("per neve 2", "gelata! 2"), encoding="utf-8")
        page = client.get("/pubblicati", params={"q": "gelata"}).text
        assert "gelata! 2" in page and site.console.past_months.reads == 5
