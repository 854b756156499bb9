"""Poll phases: spread over the interval, and few enough to share scheduler jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.config import FeedConfig
from bridge.daemon import MAX_PHASES, _phase


def feed(n: int, interval: timedelta) -> FeedConfig:
    return FeedConfig(id=f"comune-{n:05d}", name=f"Comune {n}", url=f"https://comune{n}.example.it/feed",
                      interval=interval, channels=("whatsapp",), max_age=timedelta(days=7), backfill=0)


@pytest.mark.parametrize(("seconds", "phases"), [(5, 5), (300, 300), (601, 300), (1000, 500), (3600, 600),
                                               (86400, 600)])
def test_phases_are_few_and_spread_evenly_over_the_whole_interval(seconds: int, phases: int) -> None:
    interval = timedelta(seconds=seconds)
    keys = [_phase(feed(n, interval)) for n in range(8000)]
    assert {i for i, _ in keys} == {float(seconds)}
    offsets = sorted({p for _, p in keys})
    assert len(offsets) == phases <= MAX_PHASES  # 8,000 feeds fill every phase
    step = offsets[1] - offsets[0]
    assert offsets == list(range(0, phases * step, step))  # equal gaps from 0 ...
    assert phases * step >= seconds - step  # ... across the whole interval
