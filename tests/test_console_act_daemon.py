"""The console's editors' actions through the real daemon: `channel-bridge run` with a feed in
approval mode, a real feed server and a fake WAHA on loopback, and the console served by the
daemon. An editor approves one alert, approves one with an edited text, drops one, from the
console's forms; the approved ones post once each, in order; `channel-bridge audit` names the
console account and "console" for each."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from console.harness import FORM_TOKEN, PASSWORD
from daemons import Daemon, bridge_command, bridge_environment
from servers.feeds import FeedServer, rss
from servers.waha import FakeWaha
from waiting import wait_for

from bridge.console.accounts import AccountBook

API_KEY = "test-key-console-act-1234"
CHAT = "120363000000000003@newsletter"
NOW = datetime.now(UTC).replace(microsecond=0)


def news(n: int, *, hours_ago: float) -> dict[str, Any]:
    return {"title": f"Avviso numero {n}: lavori in via Roma", "link": f"https://www.comune.esempio.it/novita/{n}/",
            "guid": f"https://www.comune.esempio.it/?p={n}",
            "description": f"Da lunedì via Roma resta chiusa per lavori, cantiere numero {n}.",
            "pubDate": NOW - timedelta(hours=hours_ago)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_editor_approves_edits_and_drops_from_the_console_of_the_running_daemon(
        tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha) -> None:
    waha_server.api_key = API_KEY
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"""
[bridge]
state_dir = "state"

[[feeds]]
id = "notizie"
name = "Notizie dal Comune"
url = "{feed_server.url('/feed.xml')}"
interval = "1s"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
approve = true

[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "{CHAT}"
api_key = "env:WAHA_API_KEY"

[console]
listen = "127.0.0.1:{port}"
""", encoding="utf-8")
    AccountBook(tmp_path / "state").add("e.bianchi", "editor", PASSWORD)
    env = bridge_environment({"WAHA_API_KEY": API_KEY}, without=("RUNTIME_DIRECTORY",))
    items = [news(1, hours_ago=30)]
    feed_server.set_feed("/feed.xml", rss(items))
    edited = "Via Roma chiusa da lunedì, cantiere numero 3."
    with Daemon(config, tmp_path / "daemon.log", env=env) as daemon, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        assert daemon.wait_started(), daemon.log()
        assert daemon.wait_for_log("first poll"), daemon.log()
        feed_server.set_feed("/feed.xml", rss([news(2, hours_ago=3), news(3, hours_ago=2), news(4, hours_ago=1),
                                               *items]))
        assert client.post("/login", data={"name": "e.bianchi", "password": PASSWORD}).status_code == 303

        def ids() -> list[str]:
            return re.findall(r'<li class="alert state-awaiting" id="d-([^"]+)"', client.get("/coda").text)

        assert wait_for(lambda: len(ids()) == 3, 30), daemon.log()
        two, three, four = ids()
        assert waha_server.posts == [], "nothing posts before an editor approves"
        found = FORM_TOKEN.search(client.get("/coda").text)
        assert found is not None
        token = found.group(1)

        def post(path: str, **data: str) -> httpx.Response:
            return client.post(path, data={"form_token": token, **data})

        assert post("/coda/scarta", id=four, motivo="notizia doppia").status_code == 303
        assert post("/coda/approva", id=two).status_code == 303
        assert post("/coda/modifica", id=three, testo=edited).status_code == 200
        assert post("/coda/approva", id=three, testo=edited, visto=edited).status_code == 303
        assert "approvato con il testo modificato" in client.get("/coda").text
        assert wait_for(lambda: len(waha_server.posts) >= 2, 30), daemon.log()
        assert daemon.stop() == 0
    assert [post.text.splitlines()[0] for post in waha_server.posts] == [
        "*Avviso numero 2: lavori in via Roma*", "*Avviso numero 3: lavori in via Roma*"]
    assert edited in waha_server.posts[1].text
    result = subprocess.run(bridge_command(config, "audit", "--format", "json"), env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    audit = json.loads(result.stdout)
    assert [(e["action"], e["alert_id"], e["who"], e["where"]) for e in audit] == [
        ("drop", four, "e.bianchi", "console"), ("approve", two, "e.bianchi", "console"),
        ("approve", three, "e.bianchi", "console")]
    assert audit[0]["reason"] == "notizia doppia" and audit[2]["after"]["summary"] == edited
