"""The real `channel-bridge run --once`, twice, on a comune configured by its ISTAT code: the
Department's bulletin (written for today, in the format of the real ones) served over HTTP from
loopback, a fake WAHA. The first run posts the orange alert of the comune's zone, and nothing
for the other zones of the bulletin; the second, on a bulletin without the zone, posts its end."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from daemons import bridge_environment, run_bridge
from servers.feeds import FeedServer
from servers.waha import FakeWaha

ROME = ZoneInfo("Europe/Rome")
API_KEY = "alert-e2e-key"
CHAT = "120363000000000034@newsletter"


def _info(level: str, zone: str, now: datetime) -> str:
    start = now  # in force from now for six hours: the test holds at any hour of the day
    return f"""  <info>
    <category>Met</category>
    <event>MODERATA CRITICITA' PER RISCHIO IDROGEOLOGICO / ALLERTA {level}:</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <onset>{start.isoformat()}</onset>
    <expires>{(start + timedelta(hours=6)).isoformat()}</expires>
    <senderName>DIPARTIMENTO DI PROTEZIONE CIVILE</senderName>
    <description>all_{level} PER OGGI SU:</description>
    <area><areaDesc>Zona</areaDesc><geocode><valueName>Zona di Allerta</valueName><value>{zone}</value></geocode></area>
  </info>
"""


def _bulletin(identifier: str, sent: datetime, infos: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>2.49.0.0.380.1</sender>
  <sent>{sent.isoformat()}</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
{infos}</alert>
""".encode()


def test_run_once_posts_the_comunes_alert_then_its_end(tmp_path: Path, feed_server: FeedServer,
                                                       waha_server: FakeWaha) -> None:
    waha_server.api_key = API_KEY
    now = datetime.now(ROME)
    config = tmp_path / "config.toml"
    config.write_text(f"""[bridge]
state_dir = "state"

[[feeds]]
id = "allerte"
type = "dpc"
url = "{feed_server.url('/bollettino.xml')}"
istat = "033032"
link = "https://www.comune.piacenza.it/protezione-civile"
channels = ["whatsapp"]
link_domains = ["comune.piacenza.it"]

[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"
""", encoding="utf-8")
    env = bridge_environment({"WAHA_API_KEY": API_KEY})
    feed_server.set_feed("/bollettino.xml", _bulletin(
        "DPC_1", now - timedelta(minutes=30),
        _info("ARANCIONE", "Emil-H1", now) + _info("GIALLA", "Cala-7", now) + _info("ROSSA", "Emil-H2", now)),
        content_type="application/xml")
    first = run_bridge(config, "run", "--once", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert [post.text.splitlines()[0] for post in waha_server.posts] == [
        "*Allerta arancione per rischio idrogeologico*"]
    assert "zona Emil-H1" in waha_server.posts[0].text

    feed_server.set_feed("/bollettino.xml", _bulletin("DPC_2", now - timedelta(minutes=10),
                                                      _info("GIALLA", "Cala-7", now)),
                         content_type="application/xml")
    second = run_bridge(config, "run", "--once", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert [post.text.splitlines()[0] for post in waha_server.posts] == [
        "*Allerta arancione per rischio idrogeologico*", "*Cessata allerta arancione per rischio idrogeologico*"]
    assert all("Cala-7" not in post.text and "Emil-H2" not in post.text for post in waha_server.posts)
