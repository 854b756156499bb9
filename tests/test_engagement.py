"""Views and reactions of WAHA posts: the client of WAHA's channel preview against the fake
(the request it makes, the counts it reads, every fault), the background reading at most once
an hour on a clock the test drives, a failed reading that keeps the last counts and is logged
once per run of failures, and what the console shows of them: *Pubblicati* with its counts and
when they were read, the CSV export's columns, the monthly summary's chart of views."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from clocks import FakeClock
from console.harness import NOW, ServedConsole, delivery, read_counts, served
from servers.waha import FakeWaha
from structlog.testing import capture_logs

from bridge.channels.base import ChannelDownError, GatewayAnswerError, TransientError
from bridge.channels.waha import ENGAGEMENT_READ, PostCounts, WahaChannel
from bridge.config import ChannelConfig, Secret
from bridge.engagement import REFRESH_EVERY, Engagement, Reading, keep_reading
from bridge.models import Post

CHAT = "120363000000000000@newsletter"
KEY = "chiave-segreta-di-prova-123"


def waha_config(fake: FakeWaha, *, key: str | None = KEY, timeout: float = 30.0) -> ChannelConfig:
    return ChannelConfig(name="whatsapp", type="waha", url=fake.url, session="default", chat_id=CHAT,
                         api_key=Secret("env:WAHA_API_KEY", key) if key else None,
                         timeout=timedelta(seconds=timeout))


def read(fake: FakeWaha, **options: object) -> dict[str, PostCounts]:
    async def scenario() -> dict[str, PostCounts]:
        async with httpx.AsyncClient() as http:
            return await WahaChannel(waha_config(fake, **options), http=http, verify_window=0).engagement()  # type: ignore[arg-type]
    return asyncio.run(scenario())


@pytest.fixture
def fake() -> Iterator[FakeWaha]:
    with FakeWaha(api_key=KEY) as server:
        yield server


# -- the client ----------------------------------------------------------------------------------


def test_the_preview_gives_each_posts_views_and_reactions_by_its_bare_id(fake: FakeWaha) -> None:
    first = fake.seed_post(CHAT, "Primo avviso")
    second = fake.seed_post(CHAT, "Secondo avviso")
    fake.seed_post("999@newsletter", "Un altro canale")
    fake.set_engagement(first.id, 1234, {"👍": 10, "❤️": 5})
    counts = read(fake)
    assert counts == {first.id: PostCounts(1234, (("👍", 10), ("❤️", 5))),
                      second.id: PostCounts(0, ())}
    assert counts[first.id].reactions_total == 15
    [request] = fake.previews
    url = urlsplit(request.path)
    assert url.path == f"/api/default/channels/{CHAT}/messages/preview"
    assert parse_qs(url.query) == {"downloadMedia": ["false"], "limit": [str(ENGAGEMENT_READ)]}
    assert request.headers["X-Api-Key"] == KEY


def test_the_history_finds_its_counts_by_the_remote_id_any_engine_gave() -> None:
    reading = {"3EB0AAA": PostCounts(7, (("👍", 2),))}
    engagement = Engagement(lambda: 0.0)
    engagement._readings["whatsapp"] = Reading(reading, NOW)
    for remote_id in ("3EB0AAA", f"true_{CHAT}_3EB0AAA", f"false_{CHAT}_3EB0AAA"):  # NOWEB, WEBJS, plain
        assert engagement.counts_for(post("whatsapp", remote_id)) == PostCounts(7, (("👍", 2),))
    assert engagement.counts_for(post("whatsapp", "3EB0BBB")) is None
    assert engagement.counts_for(post("whatsapp", None)) is None
    assert engagement.counts_for(post("telegram", "3EB0AAA")) is None


@pytest.mark.parametrize(("code", "error"), [(500, TransientError), (502, TransientError), (401, ChannelDownError),
                                             (404, ChannelDownError)])
def test_a_refused_reading_is_the_error_a_send_would_get(fake: FakeWaha, code: int, error: type[Exception]) -> None:
    fake.fail_previews(1, code)
    with pytest.raises(error) as caught:
        read(fake)
    assert f"answered {code} while reading views and reactions" in str(caught.value)
    assert KEY not in str(caught.value)


def test_a_reading_told_to_wait_says_for_how_long(fake: FakeWaha) -> None:
    fake.fail_previews(1, 429, retry_after=120)
    with pytest.raises(TransientError) as caught:
        read(fake)
    assert caught.value.retry_after == 120


def test_a_wrong_key_is_refused_and_never_shown(fake: FakeWaha) -> None:
    fake.api_key = "la-chiave-giusta"
    with pytest.raises(ChannelDownError) as caught:
        read(fake)
    assert "answered 401" in str(caught.value) and KEY not in str(caught.value) + str(caught.value.hint)


def test_a_preview_that_does_not_answer_in_time_is_transient(fake: FakeWaha) -> None:
    fake.preview_delay = 3.0
    with pytest.raises(TransientError, match=r"did not answer within 0\.2 s while reading views"):
        read(fake, timeout=0.2)


@pytest.mark.parametrize("body", [b"<html><title>Accesso</title></html>", b'{"status":"ok"}', b"",
                                  b'[{"id": 1}, {"message": {"id": "x"}, "viewCount": -3, "reactions": {}}]'])
def test_a_200_that_is_not_channel_messages_is_not_taken_for_counts(fake: FakeWaha, body: bytes) -> None:
    fake.seed_post(CHAT, "Avviso")
    fake.garble_previews(1, body, "application/json" if body[:1] in (b"{", b"[") else "text/html")
    with pytest.raises(GatewayAnswerError, match="not with a list of WAHA channel messages"):
        read(fake)


def test_counts_that_are_not_counts_are_left_out(fake: FakeWaha) -> None:
    good = fake.seed_post(CHAT, "Avviso")
    fake.set_engagement(good.id, 3, {"👍": 2, "🔥": -1, "x": 1.5, "🙏": 0})  # type: ignore[dict-item]
    assert read(fake) == {good.id: PostCounts(3, (("👍", 2),))}


def test_no_posts_yet_is_an_empty_reading(fake: FakeWaha) -> None:
    assert read(fake) == {}


# -- the background reading ----------------------------------------------------------------------


def post(channel: str, remote_id: str | None, at: datetime = NOW, title: str = "Avviso") -> Post:
    return Post(delivery_id=f"d-{channel}-{remote_id}", channel=channel, feed_id="notizie", title=title,
                link="https://www.comune.example.it/n/1", posted_at=at, remote_id=remote_id)


class Reader:
    """`keep_reading` on its own loop, over one WAHA channel and one that is not WAHA, with a
    clock the test drives."""

    def __init__(self, fake: FakeWaha) -> None:
        self.clock = FakeClock(NOW)
        self.engagement = Engagement(self.clock.monotonic)
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient()
        self.channels = {"whatsapp": WahaChannel(waha_config(fake), http=self.http, verify_window=0),
                         "telegram": object()}
        self.task = self.loop.create_task(keep_reading(self.engagement, lambda: self.channels, self.clock.wall,
                                                       self.clock))

    def settle(self, until: object = None) -> None:
        """Run the loop until the reader sleeps on the clock again (and `until` holds)."""
        async def wait() -> None:
            for _ in range(2000):
                await asyncio.sleep(0.005)
                if self.clock.next_deadline() is not None and (until is None or until()):  # type: ignore[operator]
                    return
            raise AssertionError("the reader did not settle")
        self.loop.run_until_complete(wait())

    def advance(self, seconds: float) -> None:
        self.loop.call_soon(self.clock.advance, seconds)

    def close(self) -> None:
        self.task.cancel()
        self.loop.run_until_complete(asyncio.gather(self.task, return_exceptions=True))
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture
def reader(fake: FakeWaha) -> Iterator[Reader]:
    r = Reader(fake)
    try:
        yield r
    finally:
        r.close()


def test_each_channel_is_read_at_start_then_at_most_once_an_hour(fake: FakeWaha, reader: Reader) -> None:
    seeded = fake.seed_post(CHAT, "Avviso")
    fake.set_engagement(seeded.id, 5)
    reader.settle(lambda: len(fake.previews) == 1)
    assert reader.engagement.counts_for(post("whatsapp", seeded.id)) == PostCounts(5)
    assert reader.clock.next_deadline() == reader.clock.monotonic() + REFRESH_EVERY
    fake.set_engagement(seeded.id, 9)
    reader.advance(REFRESH_EVERY - 1)
    reader.settle()
    assert len(fake.previews) == 1  # nothing was due: nobody asked WAHA
    assert reader.engagement.counts_for(post("whatsapp", seeded.id)) == PostCounts(5)
    reader.advance(1)
    reader.settle(lambda: len(fake.previews) == 2)
    assert reader.engagement.counts_for(post("whatsapp", seeded.id)) == PostCounts(9)
    assert reader.engagement.reading("whatsapp").read_at == NOW + timedelta(seconds=REFRESH_EVERY)  # type: ignore[union-attr]
    assert reader.engagement.reading("telegram") is None  # not WAHA: never read


def test_reading_the_counts_never_waits_on_a_page() -> None:
    # The pages ask `Engagement` only: reading it makes no request and needs no loop.
    engagement = Engagement(lambda: 0.0)
    assert engagement.reading("whatsapp") is None and engagement.counts_for(post("whatsapp", "x")) is None


def test_a_failed_reading_keeps_the_last_counts_and_is_logged_once_per_run(fake: FakeWaha, reader: Reader) -> None:
    seeded = fake.seed_post(CHAT, "Avviso")
    fake.set_engagement(seeded.id, 40, {"👍": 4})
    reader.settle(lambda: len(fake.previews) == 1)
    fake.fail_previews(3, 500)
    with capture_logs() as logs:
        for expected in (2, 3, 4):
            reader.advance(REFRESH_EVERY)
            reader.settle(lambda expected=expected: len(fake.previews) == expected)  # type: ignore[misc]
            assert reader.engagement.counts_for(post("whatsapp", seeded.id)) == PostCounts(40, (("👍", 4),))
            assert reader.engagement.reading("whatsapp").read_at == NOW  # type: ignore[union-attr]
        fake.set_engagement(seeded.id, 41, {"👍": 4})
        reader.advance(REFRESH_EVERY)
        reader.settle(lambda: len(fake.previews) == 5)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == [
        "cannot read the views and reactions of the channel's posts; the page keeps the previous counts"]
    assert warnings[0]["channel"] == "whatsapp" and "answered 500" in warnings[0]["error"]
    assert [e["event"] for e in logs if e["log_level"] == "info"] == ["views and reactions readable again"]
    assert reader.engagement.counts_for(post("whatsapp", seeded.id)) == PostCounts(41, (("👍", 4),))


def test_a_gateway_that_asks_for_more_than_an_hour_is_left_alone_that_long(fake: FakeWaha, reader: Reader) -> None:
    reader.settle(lambda: len(fake.previews) == 1)
    fake.fail_previews(1, 429, retry_after=3 * REFRESH_EVERY)
    reader.advance(REFRESH_EVERY)
    reader.settle(lambda: len(fake.previews) == 2)
    assert reader.clock.next_deadline() == reader.clock.monotonic() + 3 * REFRESH_EVERY
    for _ in range(2):
        reader.advance(REFRESH_EVERY)
        reader.settle()
    reader.advance(REFRESH_EVERY - 1)
    reader.settle()
    assert len(fake.previews) == 2  # Retry-After: 3 h, not the hourly reading
    reader.advance(1)
    reader.settle(lambda: len(fake.previews) == 3)


def test_a_refused_key_is_logged_without_the_key(fake: FakeWaha, reader: Reader) -> None:
    reader.settle(lambda: len(fake.previews) == 1)
    fake.api_key = "un-altra-chiave"
    with capture_logs() as logs:
        reader.advance(REFRESH_EVERY)
        reader.settle(lambda: len(fake.previews) == 2)
    assert len(logs) == 1 and "answered 401" in logs[0]["error"]
    assert KEY not in repr(logs)


# -- what the console shows ----------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ServedConsole]:
    yield from served(tmp_path)


def record(site: ServedConsole, posts: list[Post]) -> None:
    for p in posts:
        d = dataclasses.replace(delivery(p.delivery_id, p.channel, p.title, link=p.link), feed_id=p.feed_id)
        site.daemon.store.record_posts([d], p.remote_id, p.posted_at)


def read_into(site: ServedConsole, fake: FakeWaha) -> None:
    read_counts(site, fake.url, KEY)


def test_pubblicati_shows_the_counts_of_waha_posts_and_when_they_were_read(site: ServedConsole,
                                                                            fake: FakeWaha) -> None:
    seen = fake.seed_post(CHAT, "Letto")
    fake.set_engagement(seen.id, 12345, {"👍": 10, "❤️": 5})
    record(site, [post("whatsapp", f"true_{CHAT}_{seen.id}", NOW - timedelta(hours=1), "Avviso letto"),
                  post("whatsapp", "3EB0VECCHIO", NOW - timedelta(days=40), "Avviso vecchio"),
                  post("telegram", "77", NOW - timedelta(hours=2), "Avviso su Telegram")])
    client = site.login()
    before = client.get("/pubblicati").text
    assert "whatsapp: visualizzazioni non ancora lette" in before
    read_into(site, fake)
    page = client.get("/pubblicati")
    assert page.status_code == 200
    text = page.text
    assert "whatsapp: visualizzazioni aggiornate alle 11:30" in text  # 10:30 UTC, in Rome
    assert "<th>Visualizzazioni</th><th>Reazioni</th>" in text
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in text.split("<tr>")[2:]}
    assert '<td class="views">12.345</td>' in rows["Avviso letto"]
    assert '<td class="reactions" title="👍 10 ❤️ 5">15 <small>👍 10 ❤️ 5</small></td>' in rows["Avviso letto"]
    assert '<td class="views">—</td>' in rows["Avviso vecchio"]  # WAHA, not among the newest read
    assert '<td class="views"></td><td class="reactions"></td>' in rows["Avviso su Telegram"]  # no count, not 0
    assert KEY not in text


def test_a_reading_of_another_day_says_its_date(site: ServedConsole, fake: FakeWaha) -> None:
    read_into(site, fake)
    site.daemon.wall = NOW + timedelta(days=1)
    text = site.login().get("/pubblicati").text
    assert "visualizzazioni aggiornate alle 11:30 del 07/12/2026" in text


def test_the_csv_export_has_views_and_reactions_and_still_no_formula(site: ServedConsole, fake: FakeWaha) -> None:
    seen = fake.seed_post(CHAT, "Letto")
    fake.set_engagement(seen.id, 300, {"👍": 7})
    record(site, [post("whatsapp", seen.id, NOW - timedelta(hours=1), "=HYPERLINK(\"http://x\")"),
                  post("telegram", "77", NOW - timedelta(hours=2), "Su Telegram")])
    read_into(site, fake)
    answer = site.login().get("/pubblicati.csv")
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][-2:] == ["visualizzazioni", "reazioni"]
    assert rows[1][3] == "'=HYPERLINK(\"http://x\")" and rows[1][-2:] == ["300", "7"]
    assert rows[2][3] == "Su Telegram" and rows[2][-2:] == ["", ""]


def test_the_summary_draws_views_per_week_beside_posts_per_week(site: ServedConsole, fake: FakeWaha) -> None:
    posts = []
    for day, views in ((1, 100), (2, 50), (8, 7)):  # 1-6 December: 150; 7-13: 7
        seeded = fake.seed_post(CHAT, f"Avviso {day}")
        fake.set_engagement(seeded.id, views)
        posts.append(post("whatsapp", seeded.id, datetime(2026, 12, day, 9, tzinfo=UTC), f"Avviso {day}"))
    posts.append(post("telegram", "77", datetime(2026, 12, 3, 9, tzinfo=UTC), "Su Telegram"))
    record(site, posts)
    read_into(site, fake)
    text = site.login().get("/pubblicati/riepilogo").text
    views = text.split('id="visualizzazioni"')[1].split("</figure>")[0]
    weeks = text.split('id="settimane"')[1].split("</figure>")[0]
    assert "<title id=\"views-title\">Visualizzazioni per settimana, dicembre 2026</title>" in views
    assert "<title>1–6: 150</title>" in views and "<title>7–13: 7</title>" in views
    assert "<title>14–20: 0</title>" in views
    assert "<title>1–6: 3</title>" in weeks and "<title>7–13: 1</title>" in weeks
    assert "dei post su WhatsApp di cui sono note (3 del mese)" in views
    assert text.count('id="views-title"') == 1 and text.count('id="posts-title"') == 1
    assert "whatsapp: visualizzazioni aggiornate alle 11:30" in text


def test_a_reading_that_ends_by_a_bug_says_so_in_the_log() -> None:
    from bridge.daemon import _said_if_it_failed

    async def broken() -> None:
        raise KeyError("viewCount")

    async def go() -> list[dict[str, object]]:
        with capture_logs() as logs:
            task = asyncio.ensure_future(broken())
            task.add_done_callback(_said_if_it_failed)
            with pytest.raises(KeyError):
                await task
            await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
            cancelled = asyncio.ensure_future(asyncio.sleep(10))
            cancelled.add_done_callback(_said_if_it_failed)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            await asyncio.sleep(0)
        return logs

    logs = asyncio.run(go())
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert len(errors) == 1 and "KeyError" in str(errors[0]["error"])
