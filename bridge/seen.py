"""The seen-key index: for each channel and identity key, which feeds showed it and when.

The store consults it for every item of every poll and keeps it for every feed it has ever
polled: 8,000 feeds of 20 items hold about 500,000 keys. As Python dicts of strings and ints
that costs about 200 bytes a key (90 MB); here a key is a 64-bit digest of (channel, key) in an
open-addressing table of flat arrays, 16 bytes a slot, about 30 bytes a key.

The full keys live in the feeds' files (`feeds/<id>.json`), which the store reads back whenever
it rewrites one. Two different keys could share a digest: with 500,000 keys the chance that any
pair does is about one in 70 million, and the cost would be one item taken as already seen.
"""

from __future__ import annotations

import hashlib
from array import array

_EMPTY = 0  # a free slot; no key's digest is 0
_NO_STAMP = 0xFFFFFFFF  # "no key": the oldest time of a feed that holds none
_MIN_SLOTS = 1024
_MAX_LOAD = 0.6  # linear probing stays short (about 3.6 probes for a miss) below this


def _digest(channel: str, key: str) -> int:
    raw = hashlib.blake2b(f"{channel}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(raw, "little", signed=True) or 1


def _stamp(value: int) -> int:
    """Epoch seconds as an unsigned 32-bit value (good until 2106)."""
    return min(max(value, 0), _NO_STAMP - 1)


class SeenIndex:
    """(channel, key, feed) -> last seen, epoch seconds; one record per feed showing a key."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._feed_ids: list[str] = []
        self._feed_numbers: dict[str, int] = {}
        self._counts = array("I")  # per feed number: its records
        self._oldest = array("I")  # per feed number: a lower bound of its records' times
        self._reset(_MIN_SLOTS)

    def _reset(self, slots: int) -> None:
        self._mask = slots - 1
        self._digests = array("q", (0,)) * slots
        self._feeds = array("I", (0,)) * slots
        self._stamps = array("I", (0,)) * slots
        self._used = 0

    def __len__(self) -> int:
        return self._used

    # -- queries ------------------------------------------------------------------------

    def seen_by(self, channel: str, key: str) -> dict[str, int]:
        """The feeds that showed `key` for `channel`, with when they last did."""
        digest = _digest(channel, key)
        digests, mask = self._digests, self._mask
        found = {}
        slot = digest & mask
        while (held := digests[slot]) != _EMPTY:
            if held == digest:
                found[self._feed_ids[self._feeds[slot]]] = self._stamps[slot]
            slot = (slot + 1) & mask
        return found

    def last_seen(self, channel: str, key: str, feed_id: str) -> int | None:
        """When `feed_id` last showed `key` for `channel`; None if it never did."""
        number = self._feed_numbers.get(feed_id)
        if number is None:
            return None
        slot, found = self._probe(_digest(channel, key), number)
        return self._stamps[slot] if found else None

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
        slot, found = self._probe(digest, number)
        self._stamps[slot] = stamp
        if found:
            return
        self._digests[slot] = digest
        self._feeds[slot] = number
        self._used += 1
        self._counts[number] += 1
        self._oldest[number] = min(self._oldest[number], stamp)
        if self._used > _MAX_LOAD * (self._mask + 1):
            self._grow(2 * (self._mask + 1))

    def forget(self, channel: str, key: str, feed_id: str) -> None:
        """Drop the record of `feed_id` showing `key` for `channel`, if there is one."""
        number = self._feed_numbers.get(feed_id)
        if number is None:
            return
        slot, found = self._probe(_digest(channel, key), number)
        if found:
            self._vacate(slot)
            self._counts[number] -= 1
            if self._counts[number] == 0:
                self._oldest[number] = _NO_STAMP

    def set_oldest(self, feed_id: str, stamp: int) -> None:
        """Tighten the lower bound kept for `feed_id` (after reading its records back)."""
        number = self._feed_numbers.get(feed_id)
        if number is not None:
            self._oldest[number] = _stamp(stamp)

    def reserve(self, records: int) -> None:
        """Size the table for `records` at once, instead of growing it step by step."""
        slots = len(self._digests)
        while records > _MAX_LOAD * slots:
            slots *= 2
        if slots > len(self._digests):
            self._grow(slots)

    # -- the table ------------------------------------------------------------------------

    def _number(self, feed_id: str) -> int:
        number = self._feed_numbers.get(feed_id)
        if number is None:
            number = self._feed_numbers[feed_id] = len(self._feed_ids)
            self._feed_ids.append(feed_id)
            self._counts.append(0)
            self._oldest.append(_NO_STAMP)
        return number

    def _probe(self, digest: int, number: int) -> tuple[int, bool]:
        """The slot holding (digest, feed) and True, or the free slot that would take it and False."""
        digests, feeds, mask = self._digests, self._feeds, self._mask
        slot = digest & mask
        while (held := digests[slot]) != _EMPTY:
            if held == digest and feeds[slot] == number:
                return slot, True
            slot = (slot + 1) & mask
        return slot, False

    def _vacate(self, hole: int) -> None:
        """Free `hole`, moving back later records of its run so that no probe stops short."""
        digests, feeds, stamps, mask = self._digests, self._feeds, self._stamps, self._mask
        slot = hole
        while True:
            slot = (slot + 1) & mask
            held = digests[slot]
            if held == _EMPTY:
                break
            # The record may fill the hole when the hole lies between its home slot and it.
            if (slot - (held & mask)) & mask >= (slot - hole) & mask:
                digests[hole], feeds[hole], stamps[hole] = held, feeds[slot], stamps[slot]
                hole = slot
        digests[hole] = _EMPTY
        feeds[hole] = stamps[hole] = 0
        self._used -= 1

    def _grow(self, slots: int) -> None:
        digests, feeds, stamps = self._digests, self._feeds, self._stamps
        self._reset(slots)
        new_digests, new_feeds, new_stamps, mask = self._digests, self._feeds, self._stamps, self._mask
        for old, held in enumerate(digests):
            if held == _EMPTY:
                continue
            slot = held & mask
            while new_digests[slot] != _EMPTY:
                slot = (slot + 1) & mask
            new_digests[slot], new_feeds[slot], new_stamps[slot] = held, feeds[old], stamps[old]
            self._used += 1
