"""Parsing in worker processes: same result as in-process, a pathological feed is cut off."""

from __future__ import annotations

import asyncio

import pytest

from bridge.parse import ParseError, parse_feed
from bridge.parser_pool import ParserPool

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Comune di Esempio</title><link>https://www.comune.esempio.it</link>
<item><title>Chiusura di via Roma</title><link>https://www.comune.esempio.it/n/1</link>
<description>Da lunedì via Roma è chiusa per lavori.</description>
<pubDate>Fri, 20 Nov 2026 10:00:00 +0000</pubDate></item>
</channel></rss>""".encode()

# feedparser's e-mail regex on a long author field is quadratic: ~1.4 s for 20,000 letters.
PATHOLOGICAL = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><title>t</title>'
    f"<author>{'a' * 40000}</author></item></channel></rss>"
).encode()


def test_parse_in_a_worker_equals_parse_in_process() -> None:
    async def go() -> None:
        pool = ParserPool()
        try:
            parsed = await pool.parse("f", FEED, url="https://www.comune.esempio.it/feed")
        finally:
            await pool.aclose()
        assert parsed == parse_feed("f", FEED, url="https://www.comune.esempio.it/feed")

    asyncio.run(go())


def test_pathological_feed_is_stopped_and_the_pool_keeps_working() -> None:
    async def go() -> None:
        pool = ParserPool(deadline=0.5)
        try:
            ticks = 0

            async def heartbeat() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.05)
                    ticks += 1

            beat = asyncio.ensure_future(heartbeat())
            with pytest.raises(ParseError, match=r"took longer than [01] s"):
                await pool.parse("bad", PATHOLOGICAL, url="https://www.comune.esempio.it/feed")
            beat.cancel()
            assert ticks >= 2  # the event loop kept running while the parse was stuck (a bound, not a rate)
            parsed = await pool.parse("good", FEED, url="https://www.comune.esempio.it/feed")
            assert parsed.items[0].title == "Chiusura di via Roma"
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_a_parse_deadline_does_not_count_the_start_of_its_worker() -> None:
    # Starting a worker (Python, feedparser, BeautifulSoup) takes longer than this deadline;
    # parsing this small feed takes a small fraction of it.
    async def go() -> None:
        pool = ParserPool(deadline=0.3)
        try:
            assert pool.running == 0
            parsed = await pool.parse("f", FEED, url="https://www.comune.esempio.it/feed")
            assert parsed.items[0].title == "Chiusura di via Roma"
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_broken_feed_error_crosses_the_process_boundary() -> None:
    async def go() -> None:
        pool = ParserPool()
        try:
            with pytest.raises(ParseError, match="looks like a web page") as caught:
                await pool.parse("f", b"<!DOCTYPE html><html><body>Home</body></html>", url="https://x.it/")
            assert caught.value.hint
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_workers_start_on_demand_and_stop_when_idle() -> None:
    async def go() -> None:
        pool = ParserPool(idle_timeout=0.3)
        try:
            assert pool.running == 0  # an idle daemon is one process
            await pool.parse("f", FEED, url="https://www.comune.esempio.it/feed")
            assert pool.running == 1
            for _ in range(40):
                if pool.running == 0:
                    break
                await asyncio.sleep(0.05)
            assert pool.running == 0
            parsed = await pool.parse("f", FEED, url="https://www.comune.esempio.it/feed")
            assert parsed.items
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_two_hanging_parses_do_not_hold_a_normal_one() -> None:
    async def go() -> None:
        pool = ParserPool(workers=2, deadline=6)
        try:
            hostile = [asyncio.ensure_future(pool.parse(f"bad{n}", PATHOLOGICAL * 3, url="https://x.it/"))
                       for n in range(2)]
            await asyncio.sleep(0.2)
            parsed = await pool.parse("good", FEED, url="https://www.comune.esempio.it/feed")
            assert parsed.items
            # Order, not time: the good feed was parsed while both hostile ones still hung.
            assert not any(task.done() for task in hostile)
            for task in hostile:
                task.cancel()
        finally:
            await pool.aclose()

    asyncio.run(go())
