"""Official alert sources through the real daemon, in-process, on a clock the test drives: the
Department's bulletins served over HTTP from loopback (documents of the real format, under
tests/fixtures/alerts/official/), a comune configured by its ISTAT code, a fake WAHA. The
right post once, the raise, the end; nothing for other zones, nothing twice."""

from __future__ import annotations

import asyncio
import io
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clocks import FakeClock
from servers.feeds import FeedServer
from servers.waha import FakeWaha

from bridge.cli import cmd_check
from bridge.config import DPC_BULLETIN_PAGE, ConfigError, load_config
from bridge.daemon import Bridge
from bridge.store import Store

ROME = ZoneInfo("Europe/Rome")
OFFICIAL = Path(__file__).parent / "fixtures" / "alerts" / "official"
API_KEY = "alert-sources-key"
CHAT = "120363000000000033@newsletter"
PAGE = "https://www.comune.piacenza.it/protezione-civile"


def _config(tmp: Path, feeds: FeedServer, waha: FakeWaha, source: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""[bridge]
state_dir = "state"

[[feeds]]
id = "allerte"
name = "Allerte di protezione civile"
{source}
channels = ["whatsapp"]
link_domains = ["comune.piacenza.it"]

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""", encoding="utf-8")
    return path


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ROME)


def test_a_comune_by_istat_gets_its_zones_alerts_once_the_raise_and_the_end(
        tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAHA_API_KEY", API_KEY)
    waha_server.api_key = API_KEY
    source = f'type = "dpc"\nurl = "{feed_server.url("/bollettino.xml")}"\nistat = "033032"\nlink = "{PAGE}"'
    config = load_config(_config(tmp_path, feed_server, waha_server, source), os.environ)
    [feed] = config.feeds
    assert (feed.type, feed.zones) == ("dpc", ("Emil-H1",))
    store = Store.open(config.bridge.state_dir)
    clock = FakeClock(_at("2026-01-17T16:00:00"))
    steps = [("dpc_1_yellow_tomorrow.xml", "2026-01-17T16:00:00"),
             ("dpc_2_yellow_today_orange_tomorrow.xml", "2026-01-18T16:00:00"),
             ("dpc_2_yellow_today_orange_tomorrow.xml", "2026-01-18T16:05:00"),  # the same again
             ("dpc_3_update_orange_today.xml", "2026-01-18T20:30:00"),
             ("dpc_4_zone_gone.xml", "2026-01-19T16:00:00")]

    async def scenario() -> list[list[tuple[str, bool]]]:
        bridge = Bridge(config, store, clock=clock)
        bridge._open_channels()
        seen: list[list[tuple[str, bool]]] = []
        try:
            for name, moment in steps:
                clock.advance((_at(moment) - clock.wall()).total_seconds())
                feed_server.set_feed("/bollettino.xml", (OFFICIAL / name).read_bytes(),
                                     content_type="application/xml")
                before = len(waha_server.posts)
                result = await bridge._poll(feed, force=True)
                assert result.ok, result.error
                queued = {d.alert.title: d.urgent for d in result.queued}
                await bridge._drain("whatsapp")
                posted = [post.text for post in waha_server.posts[before:]]
                seen.append([(text.splitlines()[0].strip("*"), queued[text.splitlines()[0].strip("*")])
                             for text in posted])
        finally:
            await bridge.aclose()
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        store.close()
    assert seen == [
        [("Allerta gialla per rischio idrogeologico", False)],
        [("Allerta arancione per rischio idrogeologico", True)],
        [],
        [("Allerta innalzata ad arancione per rischio idrogeologico", True)],
        [("Cessata allerta arancione per rischio idrogeologico", True)],
    ], seen
    texts = [post.text for post in waha_server.posts]
    assert "Domani, domenica 18 gennaio, zona Emil-H1" in texts[0]
    assert "Fonte: Protezione civile nazionale." in texts[0] and PAGE in texts[0]
    assert all("Emil-H2" not in text and "Cala-7" not in text for text in texts)
    assert "Oggi, lunedì 19 gennaio" in texts[-1]


def test_an_alert_that_ended_while_it_waited_is_not_posted_and_says_why(
        tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAHA_API_KEY", API_KEY)
    waha_server.api_key = API_KEY
    source = f'type = "dpc"\nurl = "{feed_server.url("/bollettino.xml")}"\nzones = ["Emil-H1"]\nlink = "{PAGE}"'
    config = load_config(_config(tmp_path, feed_server, waha_server, source), os.environ)
    store = Store.open(config.bridge.state_dir)
    clock = FakeClock(_at("2026-01-18T16:00:00"))
    feed_server.set_feed("/bollettino.xml", (OFFICIAL / "dpc_2_yellow_today_orange_tomorrow.xml").read_bytes(),
                         content_type="application/xml")

    async def scenario() -> None:
        bridge = Bridge(config, store, clock=clock)
        bridge._open_channels()
        try:
            result = await bridge._poll(config.feeds[0], force=True)
            assert len(result.queued) == 2  # today's yellow, tomorrow's orange
            # The gateway is away for two days: both alerts have ended when it is back.
            clock.advance(timedelta(days=2).total_seconds())
            await bridge._drain("whatsapp")
        finally:
            await bridge.aclose()

    try:
        asyncio.run(scenario())
        failed = store.deliveries("whatsapp", state="failed")
    finally:
        store.close()
    assert waha_server.posts == []
    assert len(failed) == 2
    assert all("the official alert ended" in (d.last_error or "") for d in failed), [d.last_error for d in failed]


@pytest.mark.parametrize(("source", "message"), [
    ('type = "dpc"\nurl = "https://example.org/cap.xml"', "needs the alert zones it follows"),
    ('type = "dpc"\nurl = "https://example.org/cap.xml"\nistat = "999999"', 'no comune has code "999999"'),
    ('type = "dpc"\nurl = "https://example.org/cap.xml"\nzones = ["Nowhere-1"]', "Nowhere-1"),
    ('type = "meteoalarm"\nurl = "https://example.org/feed.json"\nzones = ["Emil-H1"]', "needs the regions"),
    ('type = "cap"\nurl = "https://example.org/cap.xml"\nzones = ["Emil-H1"]\nurgent_levels = ["viola"]',
     'unknown level "viola"'),
    ('type = "dpc"\nurl = "https://example.org/cap.xml"\nzones = ["Emil-H1"]\nlink = "http://x.it/p"',
     "expected the https:// address"),
    ('type = "bollettino"\nurl = "https://example.org/cap.xml"', 'expected one of'),
    ('url = "https://example.org/feed.xml"\nzones = ["Emil-H1"]', "only for an official alert source"),
])
def test_check_names_what_is_wrong_with_an_alert_source(tmp_path: Path, source: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[[feeds]]\nid = "allerte"\n{source}\nchannels = ["c"]\n\n[channels.c]\ntype = "console"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert any('feeds[0] (id="allerte")' in error and message in error for error in caught.value.errors), \
        caught.value.errors


def test_a_document_that_is_not_the_sources_fails_the_poll_with_what_and_where(
        tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAHA_API_KEY", API_KEY)
    source = f'type = "dpc"\nurl = "{feed_server.url("/bollettino.xml")}"\nzones = ["Emil-H1"]\nlink = "{PAGE}"'
    config = load_config(_config(tmp_path, feed_server, waha_server, source), os.environ)
    store = Store.open(config.bridge.state_dir)
    feed_server.set_feed("/bollettino.xml", (OFFICIAL / "not_cap.html").read_bytes(), content_type="text/html")

    async def scenario() -> tuple[bool, str | None]:
        bridge = Bridge(config, store, clock=FakeClock(_at("2026-01-18T16:00:00")))
        bridge._open_channels()
        try:
            result = await bridge._poll(config.feeds[0], force=True)
        finally:
            await bridge.aclose()
        return result.ok, result.error

    try:
        ok, error = asyncio.run(scenario())
        state = store.feed_state("allerte")
    finally:
        store.close()
    assert not ok and error is not None and "not a CAP document" in error, error
    assert state.failures == 1 and state.alerts is None  # nothing read, nothing ended
    assert waha_server.posts == []


def test_meteoalarm_posts_a_weather_warning_for_its_region_never_an_allerta(
        tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAHA_API_KEY", API_KEY)
    waha_server.api_key = API_KEY
    sample = Path(__file__).resolve().parents[2] / "shared" / "alerts" / "01_meteoalarm_IT_feeds-api_sample.json"
    source = f'type = "meteoalarm"\nurl = "{feed_server.url("/meteoalarm.json")}"\nregions = ["IT012"]'
    config = load_config(_config(tmp_path, feed_server, waha_server, source), os.environ)
    store = Store.open(config.bridge.state_dir)
    feed_server.set_feed("/meteoalarm.json", sample.read_bytes(), content_type="application/json")

    async def scenario() -> int:
        bridge = Bridge(config, store, clock=FakeClock(datetime(2026, 7, 31, 12, 30, tzinfo=ROME)))
        bridge._open_channels()
        try:
            result = await bridge._poll(config.feeds[0], force=True)
            assert result.ok, result.error
            await bridge._drain("whatsapp")
            return len(result.queued)
        finally:
            await bridge.aclose()

    try:
        queued = asyncio.run(scenario())
    finally:
        store.close()
    texts = [post.text for post in waha_server.posts]
    assert len(texts) == queued >= 1
    assert all("Avviso meteo" in text and "allerta" not in text.casefold() for text in texts), texts
    assert all("Lazio" in text for text in texts), texts


def test_check_shows_what_an_alert_source_follows(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[feeds]]\nid = "allerte"\ntype = "dpc"\nurl = "https://example.org/Cap.xml"\nistat = "033032"\n'
                    'zones = ["Emil-H2"]\nurgent_levels = ["gialla", "arancione", "rossa"]\nchannels = ["c"]\n\n'
                    '[channels.c]\ntype = "console"\n', encoding="utf-8")
    out = io.StringIO()
    assert cmd_check(path, out) == 0
    assert "(dpc alerts: zone Emil-H1, zone Emil-H2; urgent: gialla, arancione, rossa)" in out.getvalue()


def test_a_dpc_source_without_link_sends_citizens_to_the_departments_bulletin_page(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[feeds]]\nid = "allerte"\ntype = "dpc"\nurl = "https://example.org/Cap.xml"\n'
                    'zones = ["Emil-H1"]\nchannels = ["c"]\n\n[channels.c]\ntype = "console"\n', encoding="utf-8")
    [feed] = load_config(path, {}).feeds
    assert feed.link == DPC_BULLETIN_PAGE
    assert DPC_BULLETIN_PAGE.startswith("https://mappe.protezionecivile.gov.it/")
