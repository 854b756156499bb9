"""The packed seen-key index against a plain dict model, through merges and deletions."""

from __future__ import annotations

import random
import tracemalloc

from bridge.seen import SeenIndex


def test_records_per_feed_and_channel() -> None:
    index = SeenIndex()
    index.mark("wa", "l:1", "notizie", 100)
    index.mark("wa", "l:1", "eventi", 200)
    index.mark("tg", "l:1", "notizie", 300)
    assert index.seen_by("wa", "l:1") == {"notizie": 100, "eventi": 200}
    assert index.seen_by("tg", "l:1") == {"notizie": 300}
    assert index.seen_by("wa", "l:2") == {}
    assert index.last_seen("wa", "l:1", "eventi") == 200
    assert index.last_seen("wa", "l:1", "altro") is None
    index.mark("wa", "l:1", "notizie", 400)  # a refresh, not a second record
    assert index.seen_by("wa", "l:1") == {"notizie": 400, "eventi": 200}
    assert (len(index), index.count("notizie"), index.count("eventi")) == (3, 2, 1)
    assert index.oldest("notizie") == 100  # a lower bound: refreshes never raise it
    index.forget("wa", "l:1", "notizie")
    index.forget("wa", "l:1", "notizie")  # twice is harmless
    index.forget("wa", "l:9", "mai-visto")
    assert index.seen_by("wa", "l:1") == {"eventi": 200}
    assert index.count("notizie") == 1
    index.forget("tg", "l:1", "notizie")
    assert index.count("notizie") == 0 and index.oldest("notizie") is None


def test_times_outside_32_bits_are_clamped_not_refused() -> None:
    index = SeenIndex()
    index.mark("wa", "a", "f", -5)
    index.mark("wa", "b", "f", 2**40)
    assert index.last_seen("wa", "a", "f") == 0
    assert index.last_seen("wa", "b", "f") == 2**32 - 2


def test_random_operations_match_a_dict_model() -> None:
    rng = random.Random(20261122)
    index = SeenIndex()
    model: dict[tuple[str, str, str], int] = {}
    keys = [f"l:{n}" for n in range(3000)]
    feeds = ["a", "b", "c"]
    for step in range(40_000):
        channel, key, feed = rng.choice(("wa", "tg")), rng.choice(keys), rng.choice(feeds)
        if rng.random() < 0.35:
            index.forget(channel, key, feed)
            model.pop((channel, key, feed), None)
        else:
            index.mark(channel, key, feed, step)
            model[(channel, key, feed)] = step
        if rng.random() < 0.0005:
            index.merge()  # as a store flush does, at any moment
        if step % 4999 == 0:  # a full comparison now and then, through grow and backward shifts
            expected: dict[tuple[str, str], dict[str, int]] = {}
            for (c, k, f), t in model.items():
                expected.setdefault((c, k), {})[f] = t
            for channel in ("wa", "tg"):
                for key in keys:
                    assert index.seen_by(channel, key) == expected.get((channel, key), {})
    assert len(index) == len(model)
    for feed in feeds:
        assert index.count(feed) == sum(1 for (_, _, f) in model if f == feed)
        oldest = index.oldest(feed)
        assert oldest is not None and oldest <= min(t for (_, _, f), t in model.items() if f == feed)


def test_a_merged_index_takes_about_16_bytes_a_record() -> None:
    tracemalloc.start()
    try:
        index = SeenIndex()
        for feed in range(500):
            for item in range(60):
                index.mark("whatsapp", f"g:{feed:05d}-{item:02d}", f"comune-{feed:05d}", 1_795_000_000)
        index.merge()
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index) == 30_000
    # 16 bytes a record, plus the feed table; dicts of strings took ~200 bytes a key.
    assert size < 22 * len(index), size
    assert index.seen_by("whatsapp", "g:00499-59") == {"comune-00499": 1_795_000_000}


def test_an_index_loaded_unsorted_then_sorted_answers_and_changes_like_one_built_by_marks() -> None:
    rng = random.Random(7)
    rows = {f"feed-{f}": [("wa", f"l:{rng.randrange(400)}", rng.randrange(1, 10**6)) for _ in range(60)]
            for f in range(30)}
    loaded, marked = SeenIndex(), SeenIndex()
    for feed, records in rows.items():
        unique = {(c, k): t for c, k, t in records}  # a feed file holds a key once
        loaded.load(feed, [(c, k, t) for (c, k), t in unique.items()])
        for (c, k), t in unique.items():
            marked.mark(c, k, feed, t)
    loaded.sort()
    for key in (f"l:{n}" for n in range(400)):
        assert loaded.seen_by("wa", key) == marked.seen_by("wa", key)
    for index in (loaded, marked):
        index.forget("wa", "l:5", "feed-3")
        index.mark("wa", "l:5", "feed-3", 42)
        index.mark("wa", "l:999", "feed-0", 43)
        index.merge()
    assert loaded.seen_by("wa", "l:5") == marked.seen_by("wa", "l:5")
    assert loaded.seen_by("wa", "l:999") == {"feed-0": 43}
    assert len(loaded) == len(marked)
    assert all(loaded.count(feed) == marked.count(feed) for feed in rows)
