"""Feed health: failing and stale judged from remembered state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.health import FeedHealth, judge, rhythm, stale_after

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_rhythm_is_the_median_gap_of_dated_items() -> None:
    dates = [NOW - DAY * n for n in (0, 1, 2, 4, 30)]
    assert rhythm([*dates, None]) == timedelta(days=1, hours=12)
    assert rhythm([NOW, NOW - DAY, None]) is None  # too few dated items to tell


@pytest.mark.parametrize(
    ("gap", "expected"),
    [(None, timedelta(days=28)), (DAY, timedelta(days=14)), (timedelta(days=7), timedelta(days=42))],
)
def test_stale_after(gap: timedelta | None, expected: timedelta) -> None:
    assert stale_after(gap) == expected


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ({"last_poll": None}, "new"),
        ({}, "ok"),
        ({"failing_since": NOW - timedelta(minutes=30)}, "error"),  # a blip: not failing yet, nor ok
        ({"failing_since": NOW - timedelta(hours=2)}, "failing"),
        ({"newest_item": NOW - DAY * 10, "usual_gap": DAY}, "ok"),
        ({"newest_item": NOW - DAY * 15, "usual_gap": DAY}, "stale"),
        ({"newest_item": NOW - DAY * 30, "usual_gap": DAY * 7}, "ok"),  # a weekly feed may rest a month
        ({"newest_item": NOW - DAY * 30, "usual_gap": None}, "stale"),
    ],
)
def test_judge(state: dict[str, object], status: str) -> None:
    values: dict[str, object] = {
        "now": NOW, "last_poll": NOW, "failing_since": None, "last_error": "HTTP 500",
        "newest_item": NOW, "usual_gap": DAY,
    }
    values.update(state)
    health = judge(**values)  # type: ignore[arg-type]
    assert isinstance(health, FeedHealth)
    assert health.status == status
    if status == "stale":
        assert "has the site moved its feed?" in health.detail
    if status in ("failing", "error"):
        assert "HTTP 500" in health.detail
