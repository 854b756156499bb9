"""The history by month: each post in the file of its month, readers open only the months they
need, a writer remembers the recent ones, and the old single file is split without loss or
double, whenever a kill lands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.item import Alert
from bridge.poll import SEEN_RETENTION
from bridge.store import HISTORY_HORIZON, Delivery, History, Post, Store, history_path

NOW = datetime.now(UTC).replace(microsecond=0)
SITE = "https://www.comune.esempio.it"


def post(n: int, at: datetime, *, channel: str = "whatsapp") -> Post:
    return Post(delivery_id=f"d{n}", channel=channel, feed_id="notizie", title=f"Avviso {n}: via Roma chiusa",
                link=f"{SITE}/n/{n}", posted_at=at, remote_id=f"wamid-{n}")


def delivery(n: int, created: datetime = NOW) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=f"Avviso {n}: via Roma chiusa", summary="Testo.",
                  link=f"{SITE}/n/{n}")
    return Delivery(id=f"d{n}", channel="whatsapp", feed_id="notizie", alert=alert, created=created, order=float(n))


def months_ago(months: int) -> datetime:
    """Noon on the 15th, `months` months before this one."""
    year, month = divmod(NOW.year * 12 + NOW.month - 1 - months, 12)
    return datetime(year, month + 1, 15, 12, 0, tzinfo=UTC)


def write_legacy(state_dir: Path, posts: list[Post], *, tail: bytes = b"") -> None:
    """The single history.jsonl of the versions before the history was kept by month."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in posts)
    (state_dir / "history.jsonl").write_bytes(lines.encode() + tail)


def block(path: Path) -> None:
    """Make `path` a directory: reading it as a history file raises, so a test sees it opened."""
    path.unlink(missing_ok=True)
    path.mkdir()


def history_names(state_dir: Path) -> list[str]:
    return sorted(p.name for p in state_dir.iterdir() if p.name.startswith("history"))


def test_posts_go_to_the_file_of_their_month_and_history_since_opens_only_those_months(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    for n, months in enumerate((3, 2, 0), 1):
        store.add_deliveries([delivery(n)])
        store.record_post(store.deliveries()[0], f"wamid-{n}", months_ago(months))
    store.close()
    assert history_names(tmp_path) == sorted(history_path(tmp_path, months_ago(m)).name for m in (3, 2, 0))

    block(history_path(tmp_path, months_ago(3)))  # an older month: `--since` must not open it
    reader = Store.open(tmp_path, read_only=True)
    assert [p.delivery_id for p in reader.posts(since=months_ago(2))] == ["d2", "d3"]
    assert [p.delivery_id for p in reader.posts(since=months_ago(2) + timedelta(seconds=1))] == ["d3"]
    with pytest.raises(IsADirectoryError):
        list(reader.posts())  # the whole history does open it
    reader.close()


def test_status_opens_no_history_file(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1)])
    store.record_post(store.deliveries()[0], "wamid-1", NOW)
    store.close()
    block(history_path(tmp_path, NOW))
    block(tmp_path / "history.jsonl")
    reader = Store.open(tmp_path, read_only=True)  # what `status` opens
    assert reader.last_post("whatsapp") == NOW
    reader.close()


def test_a_writer_remembers_the_posts_of_the_horizon_and_opens_no_older_month(tmp_path: Path) -> None:
    assert HISTORY_HORIZON > SEEN_RETENTION  # posted ids outlive the seen keys that find items again
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1), delivery(2)])
    store.record_post(store.deliveries()[0], "wamid-1", NOW - HISTORY_HORIZON + timedelta(days=2))
    store.record_post(store.deliveries()[0], "wamid-2", NOW - timedelta(minutes=5))
    store.close()
    block(history_path(tmp_path, NOW - HISTORY_HORIZON - timedelta(days=62)))

    reopened = Store.open(tmp_path)
    assert reopened.add_deliveries([delivery(1), delivery(2)]) == []  # both known as posted
    assert reopened.posts_since("whatsapp", NOW - timedelta(hours=1)) == 1
    reopened.close()


def test_a_delivery_posted_long_ago_just_before_a_crash_is_still_found_at_open(tmp_path: Path) -> None:
    """Down since a crash between the history write and the outbox write, for longer than the
    horizon: the months back to the outbox's oldest delivery are read, so it is not sent again."""
    long_ago = NOW - HISTORY_HORIZON - timedelta(days=90)
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(1, long_ago), delivery(2)])
    outbox = {p.name: p.read_bytes() for p in tmp_path.glob("outbox*")}
    store.record_post(store.deliveries()[0], "wamid-1", long_ago + timedelta(minutes=1))
    store.close()
    for path in tmp_path.glob("outbox*"):
        path.unlink()
    for name, data in outbox.items():
        (tmp_path / name).write_bytes(data)  # as if killed before the outbox write

    reopened = Store.open(tmp_path)
    assert [d.id for d in reopened.deliveries()] == ["d2"]
    reopened.close()


def test_the_old_single_history_is_read_then_split_by_month(tmp_path: Path) -> None:
    posts = [post(1, months_ago(14)), post(2, months_ago(1)), post(3, months_ago(1) + timedelta(days=3)),
             post(4, NOW - timedelta(minutes=10))]
    write_legacy(tmp_path, posts)
    reader = Store.open(tmp_path, read_only=True)  # before any writer: the old file is the history
    assert list(reader.posts()) == posts
    assert list(reader.posts(since=months_ago(1))) == posts[1:]
    reader.close()

    store = Store.open(tmp_path)
    assert store.add_deliveries([delivery(4)]) == []  # posted, as the old file says
    store.close()
    assert history_names(tmp_path) == sorted({history_path(tmp_path, p.posted_at).name for p in posts})
    reader = Store.open(tmp_path, read_only=True)
    assert list(reader.posts()) == posts
    reader.close()


def test_unreadable_lines_of_the_old_history_are_kept_aside(tmp_path: Path) -> None:
    posts = [post(1, months_ago(2)), post(2, NOW)]
    write_legacy(tmp_path, posts[:1], tail=b"garbage, not a record\n" + json.dumps(posts[1].to_dict()).encode() + b"\n")
    Store.open(tmp_path).close()
    reader = Store.open(tmp_path, read_only=True)
    assert list(reader.posts()) == posts
    reader.close()
    assert b"garbage, not a record" in (tmp_path / "history.jsonl.unreadable-lines").read_bytes()
    assert not (tmp_path / "history.jsonl").exists()


# A writer opening the state, killed by itself just before its `kill_at`-th change of a directory
# entry (a rename or a removal): the moments between the writes of a split.
KILLED_OPEN = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from bridge.store import Store

    kill_at, changes = int(sys.argv[2]), 0

    def counted(real):
        def change(*args, **kwargs):
            global changes
            changes += 1
            if changes == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return change

    os.replace, os.unlink = counted(os.replace), counted(os.unlink)
    Store.open(Path(sys.argv[1])).close()
    """
)


def test_a_kill_at_any_moment_of_the_split_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    posts = [post(n, months_ago(month) + timedelta(hours=n)) for n, month in enumerate((5, 5, 3, 2, 2, 1, 0), 1)]
    posts.append(post(99, NOW - timedelta(minutes=1), channel="telegram"))
    posts.sort(key=lambda p: p.posted_at)  # the order `posts()` gives
    kills = 0
    for kill_at in range(1, 50):
        state = tmp_path / f"kill-{kill_at}"
        write_legacy(state, posts)
        done = subprocess.run([sys.executable, "-c", KILLED_OPEN, str(state), str(kill_at)],
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            break  # the open made fewer changes than that: every moment was tried
        assert done.returncode == -9, done.stderr
        kills += 1
        reader = Store.open(state, read_only=True)  # `history` right after the kill
        assert list(reader.posts()) == posts, f"kill before change {kill_at}"
        reader.close()
        store = Store.open(state)  # the next start finishes the split
        assert store.add_deliveries([delivery(99)]) == []
        store.close()
        assert "history.jsonl" not in history_names(state)
        reader = Store.open(state, read_only=True)
        assert list(reader.posts()) == posts, f"kill before change {kill_at}, then a start"
        reader.close()
    assert kills > len({p.posted_at.strftime("%Y-%m") for p in posts})  # each month's write, and the removal


def test_history_appends_to_the_file_of_each_posts_month(tmp_path: Path) -> None:
    history = History(tmp_path, read_only=False)
    history.append([post(1, months_ago(1))])
    history.append([post(2, NOW)])
    assert history.months() == sorted({months_ago(1).strftime("%Y-%m"), NOW.strftime("%Y-%m")})
    assert [p.delivery_id for p in History(tmp_path, read_only=True).read(since=NOW)] == ["d2"]
    assert os.listdir(tmp_path) and "history.jsonl" not in os.listdir(tmp_path)


def test_the_history_as_csv_turns_no_title_into_a_formula(tmp_path: Path) -> None:
    """A feed's title is outside text: `history --format csv` writes "=HYPERLINK(…)" as text
    (an apostrophe before it), as the console's export does (`bridge.spreadsheet`)."""
    import csv
    import io

    from bridge.cli import cmd_history
    from bridge.config import load_config
    from bridge.models import Post

    state = tmp_path / "state"
    state.mkdir()
    post = Post(delivery_id="d1", channel="schermo", feed_id="notizie", title='=HYPERLINK("https://x.example")',
                link="https://www.comune.esempio.it/n/1", posted_at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
                remote_id="-1", verified=None)
    (state / "history-2026-11.jsonl").write_text(json.dumps(post.to_dict()) + "\n", encoding="utf-8")
    config_path = tmp_path / "config.toml"
    config_path.write_text('[bridge]\nstate_dir = "state"\n\n[[feeds]]\nid = "notizie"\n'
                           'url = "https://www.comune.esempio.it/feed/"\nchannels = ["schermo"]\n\n'
                           '[channels.schermo]\ntype = "console"\n', encoding="utf-8")
    out = io.StringIO()
    assert cmd_history(load_config(config_path, {}), out, since=None, fmt="csv") == 0
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["title"] == "'" + post.title
    assert row["remote_id"] == "'-1"  # a leading minus too: a spreadsheet would compute it
    assert row["link"] == post.link
