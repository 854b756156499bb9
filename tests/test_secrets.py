"""Secrets never leave the process: not in stdout, stderr, logs, tracebacks, `status`, `check` or
any file of the state directory, whatever goes wrong.

The secrets come from `env:`, `file:` and `credential:`. The gateways fail in the ways that put
text into error messages: a fake WAHA that refuses the key (401), an unreachable gateway, and
a hostile gateway that echoes the api key and the request path back in its error bodies (401
and 500: the 500 is retried, so its error is stored in the outbox). Every command a person or
systemd runs is run, and everything they wrote is searched for every secret.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from servers.feeds import FeedServer, rss
from servers.loopback import LoopbackServer, Reply, Request
from servers.waha import FakeWaha
from waiting import wait_for

from bridge.store import Store

SECRETS = {
    "WAHA_API_KEY": "sk-echo-401-Qm9sb2duYS1zZWNyZXQ",
    "WAHA_FLAKY_KEY": "sk-echo-500-VHJlbnRvLXNlZ3JldG8",
    "file": "sk-file-wrongkey-UGFkb3ZhLWNoaWF2ZQ",
    "credential": "sk-cred-unreach-VmVyb25hLXBhc3M",
}
SITE = "https://www.comune.esempio.it"


class EchoGateway(LoopbackServer):
    """A gateway that answers `status` and echoes the credentials and path it got, as some do."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def handle(self, request: Request) -> Reply:
        key = request.header("X-Api-Key") or ""
        auth = request.header("Authorization") or ""
        message = f"key {key!r} auth {auth!r} refused for {request.method} {request.path}"
        return Reply(self.status, {"statusCode": self.status, "message": message, "error": message})


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def leaks(text: str | bytes) -> list[str]:
    """The secrets (whole, or a distinctive 12-character piece) found in `text`."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    found = []
    for name, value in SECRETS.items():
        if value.encode() in data or value[-12:].encode() in data:
            found.append(name)
    return found


def test_secrets_appear_nowhere_in_what_the_process_writes(tmp_path: Path, feed_server: FeedServer) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "waha.key").write_text(SECRETS["file"] + "\n", encoding="utf-8")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "waha_gone").write_text(SECRETS["credential"], encoding="utf-8")
    feed_server.set_feed("/feed.xml", rss([
        {"title": f"Avviso {n}: chiusura di via Roma", "link": f"{SITE}/avviso-{n}/", "guid": f"g{n}",
         "description": f"Via Roma resta chiusa per lavori, avviso numero {n}."} for n in (2, 1)
    ]))
    with EchoGateway(401) as refusing, EchoGateway(500) as flaky, FakeWaha(api_key="the-right-key") as waha:
        config = tmp_path / "config.toml"
        config.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
interval = "1s"
backfill = 2
channels = ["whatsapp", "flaky", "backup", "gone"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"  # loopback only: never fetch article pages from the (fictional) comune site

[[feeds]]
id = "notizie"
name = "Notizie"
url = "{feed_server.url('/feed.xml')}"

[channels.whatsapp]
type = "waha"
url = "{refusing.url}"
chat_id = "120363000000000001@newsletter"
api_key = "env:WAHA_API_KEY"

[channels.flaky]
type = "waha"
url = "{flaky.url}"
chat_id = "120363000000000002@newsletter"
api_key = "env:WAHA_FLAKY_KEY"
timeout = "2s"

[channels.backup]
type = "waha"
url = "{waha.url}"
chat_id = "120363000000000003@newsletter"
api_key = "file:secrets/waha.key"

[channels.gone]
type = "waha"
url = "http://127.0.0.1:{closed_port()}"
chat_id = "120363000000000004@newsletter"
api_key = "credential:waha_gone"
timeout = "2s"

[ops]
channel = "flaky"
""", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")}
        env.update(WAHA_API_KEY=SECRETS["WAHA_API_KEY"], WAHA_FLAKY_KEY=SECRETS["WAHA_FLAKY_KEY"],
                   CREDENTIALS_DIRECTORY=str(credentials))
        base = [sys.executable, "-m", "bridge", "--config", str(config)]
        outputs: dict[str, str] = {}

        def run(name: str, *args: str, expect: int | None = None) -> None:
            done = subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=60)
            outputs[f"{name} stdout"] = done.stdout
            outputs[f"{name} stderr"] = done.stderr
            if expect is not None:
                assert done.returncode == expect, f"{name}: {done.returncode}\n{done.stdout}\n{done.stderr}"

        run("check", "check", expect=0)
        run("check --online", "check", "--online", expect=3)
        run("run --once", "run", "--once", expect=1)
        run("run --once --debug", "--debug", "run", "--once", expect=1)
        run("status", "status", expect=0)
        run("status --json", "status", "--json", expect=0)
        run("history", "history", expect=0)
        run("history csv", "history", "--format", "csv", expect=0)
        run("preview", "preview", expect=0)
        run("preview --debug", "--debug", "preview", "--limit", "5", expect=0)

        # A traceback (--debug shows one for a locked state): no locals, so no secret.
        holder = Store.open(tmp_path / "state")
        try:
            run("locked --debug", "--debug", "run", "--once")
        finally:
            holder.close()
        assert "Traceback" in outputs["locked --debug stderr"]

        # The daemon itself, with a reload in the middle (secrets are re-read and re-registered).
        with (tmp_path / "daemon.log").open("w") as stderr:
            daemon = subprocess.Popen([*base, "--debug", "run"], env=env, stdout=subprocess.PIPE, stderr=stderr,
                                      text=True)
        try:
            log = tmp_path / "daemon.log"
            assert wait_for(lambda: '"channel-bridge started"' in log.read_text(), 15)
            time.sleep(1.5)
            daemon.send_signal(signal.SIGHUP)
            assert wait_for(lambda: '"config reloaded"' in log.read_text(), 10)
            time.sleep(1.0)
        finally:
            daemon.send_signal(signal.SIGTERM)
            stdout, _ = daemon.communicate(timeout=30)
        outputs["daemon stdout"] = stdout
        outputs["daemon stderr"] = (tmp_path / "daemon.log").read_text(encoding="utf-8", errors="replace")

    # The failures really happened and were reported (so the search below means something).
    everything = "\n".join(outputs.values())
    assert "refused for GET" in everything or "refused for POST" in everything  # the echo reached our logs...
    assert "401" in everything and "500" in everything
    status = json.loads(outputs["status --json stdout"])
    paused = {c["name"]: c["paused"] for c in status["channels"]}
    assert paused["whatsapp"] and paused["backup"]
    assert any(c["last_error"] for c in status["channels"] if c["name"] == "flaky")

    found = {name: leaks(text) for name, text in outputs.items() if leaks(text)}
    for path in sorted((tmp_path / "state").rglob("*")):
        if path.is_file() and leaks(path.read_bytes()):
            found[str(path.relative_to(tmp_path))] = leaks(path.read_bytes())
    assert found == {}, f"secrets leaked: {found}"
