"""The seen-key index: for each channel and identity key, which feeds showed it and when.

The store consults it for every item of every poll and keeps it for every feed it has ever
polled: 8,000 feeds of 20 items hold about 500,000 keys. As Python dicts of strings and ints
that costs about 200 bytes a key (90 MB). Here a record is a 64-bit digest of (channel, key),
a feed number and a time, in three flat arrays sorted by digest: 16 bytes a record, looked up
by binary search. New records wait in a small dict until there are enough of them (or the
store flushes) to be merged in at C speed; forgotten ones are marked and dropped at the merge.

The full keys live in the feeds' files (`feeds/<id>.json`), which the store reads back whenever
it rewrites one. Two different keys could share a digest: with 500,000 keys the chance that any
pair does is about one in 150 million, and the cost would be one item taken as already seen.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable

_GONE = 0xFFFFFFFF  # the time of a forgotten record, until the next merge drops it
_MIN_PENDING = 2048  # records kept aside before a merge, at least; else 1/32 of the index


def _digest(channel: str, key: str) -> int:
    raw = hashlib.blake2b(f"{channel}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(raw, "little", signed=True)


def _stamp(value: int) -> int:
    """Epoch seconds as an unsigned 32-bit value (good until 2106)."""
    return min(max(value, 0), _GONE - 1)


class SeenIndex:
    """(channel, key, feed) -> last seen, epoch seconds; one record per feed showing a key."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._feed_ids: list[str] = []
        self._feed_numbers: dict[str, int] = {}
        self._counts = array("I")  # per feed number: its records
        self._oldest = array("I")  # per feed number: a lower bound of its records' times
        # The merged records, sorted by digest; forgotten ones have the time _GONE.
        self._digests = array("q")
        self._feeds = array("I")
        self._stamps = array("I")
        self._gone: set[int] = set()  # their positions
        # Records not merged yet: digest -> feed number -> time.
        self._pending: dict[int, dict[int, int]] = {}
        self._pending_count = 0

    def __len__(self) -> int:
        return len(self._digests) - len(self._gone) + self._pending_count

    # -- queries ------------------------------------------------------------------------

    def seen_by(self, channel: str, key: str) -> dict[str, int]:
        """The feeds that showed `key` for `channel`, with when they last did."""
        digest = _digest(channel, key)
        digests, stamps = self._digests, self._stamps
        found = {}
        at = bisect_left(digests, digest)
        while at < len(digests) and digests[at] == digest:
            if stamps[at] != _GONE:
                found[self._feed_ids[self._feeds[at]]] = stamps[at]
            at += 1
        for number, stamp in self._pending.get(digest, {}).items():
            found[self._feed_ids[number]] = stamp
        return found

    def last_seen(self, channel: str, key: str, feed_id: str) -> int | None:
        """When `feed_id` last showed `key` for `channel`; None if it never did."""
        number = self._feed_numbers.get(feed_id)
        if number is None:
            return None
        digest = _digest(channel, key)
        at = self._find(digest, number)
        if at >= 0:
            stamp = self._stamps[at]
            return None if stamp == _GONE else stamp
        return self._pending.get(digest, {}).get(number)

    def count(self, feed_id: str) -> int:
        number = self._feed_numbers.get(feed_id)
        return 0 if number is None else self._counts[number]

    def oldest(self, feed_id: str) -> int | None:
        """No record of `feed_id` is older than this (it may be older than the oldest one)."""
        number = self._feed_numbers.get(feed_id)
        if number is None or self._counts[number] == 0:
            return None
        return self._oldest[number]

    # -- changes --------------------------------------------------------------------------

    def mark(self, channel: str, key: str, feed_id: str, stamp: int) -> None:
        """Record that `feed_id` showed `key` for `channel` at `stamp`."""
        number = self._number(feed_id)
        stamp = _stamp(stamp)
        digest = _digest(channel, key)
        at = self._find(digest, number)
        if at >= 0:
            if self._stamps[at] == _GONE:
                self._gone.discard(at)
                self._added(number, stamp)
            self._stamps[at] = stamp
            return
        pending = self._pending.setdefault(digest, {})
        if number not in pending:
            self._pending_count += 1
            self._added(number, stamp)
        pending[number] = stamp
        if self._pending_count > max(_MIN_PENDING, len(self._digests) // 32):
            self.merge()

    def forget(self, channel: str, key: str, feed_id: str) -> None:
        """Drop the record of `feed_id` showing `key` for `channel`, if there is one."""
        number = self._feed_numbers.get(feed_id)
        if number is None:
            return
        digest = _digest(channel, key)
        at = self._find(digest, number)
        if at >= 0 and self._stamps[at] != _GONE:
            self._stamps[at] = _GONE
            self._gone.add(at)
        elif number in (pending := self._pending.get(digest, {})):
            del pending[number]
            if not pending:
                del self._pending[digest]
            self._pending_count -= 1
        else:
            return
        self._counts[number] -= 1
        if self._counts[number] == 0:
            self._oldest[number] = _GONE

    def set_oldest(self, feed_id: str, stamp: int) -> None:
        """Tighten the lower bound kept for `feed_id` (after reading its records back)."""
        number = self._feed_numbers.get(feed_id)
        if number is not None:
            self._oldest[number] = _stamp(stamp)

    def load(self, feed_id: str, records: Iterable[tuple[str, str, int]]) -> None:
        """Add the (channel, key, time) records of a feed's file, unsorted, then `sort()` once
        after the last feed: opening a store, before any other change."""
        number = self._number(feed_id)
        # One pass in a comprehension, the counts once per feed: a start reads every feed's
        # records (8,000 feeds hold 500,000), and a loop of method calls per record doubles it.
        blake2b, from_bytes, top = hashlib.blake2b, int.from_bytes, _GONE - 1
        rows = [(from_bytes(blake2b(f"{channel}\n{key}".encode(), digest_size=8).digest(), "little", signed=True),
                 min(max(stamp, 0), top)) for channel, key, stamp in records]
        if not rows:
            return
        added = array("I", [stamp for _, stamp in rows])
        self._digests.extend(array("q", [digest for digest, _ in rows]))
        self._feeds.extend(array("I", [number]) * len(rows))
        self._stamps.extend(added)
        self._counts[number] += len(rows)
        self._oldest[number] = min(self._oldest[number], min(added))

    def sort(self) -> None:
        """Order the records added by `load`."""
        order = sorted(range(len(self._digests)), key=self._digests.__getitem__)
        self._digests, self._feeds, self._stamps = (
            array(column.typecode, map(column.__getitem__, order))
            for column in (self._digests, self._feeds, self._stamps)
        )

    def merge(self) -> None:
        """Merge the pending records in and drop the forgotten ones, copying whole slices."""
        if not self._pending and not self._gone:
            return
        old = (self._digests, self._feeds, self._stamps)
        new = (array("q"), array("I"), array("I"))
        # Where each pending record goes (before the merged records >= its digest), and which
        # merged records are dropped; at one position, the insertion comes first.
        events = sorted(
            [(bisect_left(old[0], d), 0, d, n, t) for d, numbers in self._pending.items() for n, t in numbers.items()]
            + [(at, 1, 0, 0, 0) for at in self._gone]
        )
        start = 0
        for at, dropped, *record in events:
            for column, column_new in zip(old, new, strict=True):
                column_new.extend(column[start:at])
            if dropped:
                start = at + 1
            else:
                for value, column_new in zip(record, new, strict=True):
                    column_new.append(value)
                start = at
        for column, column_new in zip(old, new, strict=True):
            column_new.extend(column[start:])
        self._digests, self._feeds, self._stamps = new
        self._gone = set()
        self._pending = {}
        self._pending_count = 0

    # -- helpers --------------------------------------------------------------------------

    def _number(self, feed_id: str) -> int:
        number = self._feed_numbers.get(feed_id)
        if number is None:
            number = self._feed_numbers[feed_id] = len(self._feed_ids)
            self._feed_ids.append(feed_id)
            self._counts.append(0)
            self._oldest.append(_GONE)
        return number

    def _added(self, number: int, stamp: int) -> None:
        self._counts[number] += 1
        self._oldest[number] = min(self._oldest[number], stamp)

    def _find(self, digest: int, number: int) -> int:
        """The position of (digest, feed) among the merged records (forgotten or not), or -1."""
        digests, feeds = self._digests, self._feeds
        at = bisect_left(digests, digest)
        while at < len(digests) and digests[at] == digest:
            if feeds[at] == number:
                return at
            at += 1
        return -1
