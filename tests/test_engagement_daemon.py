"""The daemon reads the views and reactions of its WAHA posts by itself while it serves the
console: once at start (then hourly), in the background, and the *Pubblicati* page shows them
with when they were read; the api key reaches neither the page nor the log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
from console.harness import PASSWORD, delivery
from servers.waha import FakeWaha
from waiting import wait_for

from bridge.console.accounts import AccountBook
from bridge.store import Store

SAMPLE = Path(__file__).parent.parent / "bridge" / "sample"
CHAT = "120363000000000000@newsletter"
KEY = "chiave-del-gateway-di-prova"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_daemon_reads_the_counts_and_the_page_shows_them(tmp_path: Path) -> None:
    port = free_port()
    feed = next(SAMPLE.glob("*.xml"))
    with FakeWaha(api_key=KEY) as fake:
        seeded = fake.seed_post(CHAT, "Avviso già pubblicato")
        fake.set_engagement(seeded.id, 2048, {"👍": 3})
        (tmp_path / "config.toml").write_text(
            f'[bridge]\nstate_dir = "state"\n\n[[feeds]]\nid = "notizie"\nname = "Notizie dal Comune"\n'
            f'url = "{feed}"\nchannels = ["whatsapp"]\nlink_domains = ["comune.example.it"]\n\n'
            f'[channels.whatsapp]\ntype = "waha"\nurl = "{fake.url}"\nsession = "default"\nchat_id = "{CHAT}"\n'
            f'api_key = "env:WAHA_API_KEY"\n\n[console]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
        store = Store.open(tmp_path / "state")
        store.record_posts([delivery("d1", "whatsapp", "Avviso già pubblicato")], seeded.id,
                           datetime(2026, 11, 30, 9, tzinfo=UTC))
        store.close()
        AccountBook(tmp_path / "state").add("m.rossi", "viewer", PASSWORD)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHANNEL_BRIDGE", "STATE_DIRECTORY", "NOTIFY"))}
        env["WAHA_API_KEY"] = KEY
        process = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(tmp_path / "config.toml"), "run"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            assert wait_for(lambda: len(fake.previews) >= 1, timeout=60), "the daemon never read the counts"
            with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
                assert client.post("/login", data={"name": "m.rossi", "password": PASSWORD}).status_code == 200
                assert wait_for(lambda: "visualizzazioni aggiornate alle" in client.get("/pubblicati").text,
                                timeout=30)
                page = client.get("/pubblicati").text
                assert '<td class="views">2.048</td>' in page and KEY not in page
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert len(fake.previews) == 1  # at start, then not before an hour
        assert KEY not in stderr
