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
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemons import Daemon, bridge_environment, run_bridge
from servers.feeds import FeedServer, rss
from servers.loopback import LoopbackServer, Reply, Request
from servers.telegram import FakeTelegram
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


@pytest.mark.e2e
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
        env = bridge_environment({"WAHA_API_KEY": SECRETS["WAHA_API_KEY"], "WAHA_FLAKY_KEY": SECRETS["WAHA_FLAKY_KEY"],
                                  "CREDENTIALS_DIRECTORY": str(credentials)}, without=("JOURNAL_STREAM",))
        outputs: dict[str, str] = {}

        def run(name: str, *args: str, expect: int | None = None) -> None:
            done = run_bridge(config, *args, env=env)
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
        daemon = Daemon(config, tmp_path / "daemon.log", env=env, options=["--debug"],
                        stdout=tmp_path / "daemon.out")
        try:
            log = tmp_path / "daemon.log"
            assert wait_for(lambda: '"channel-bridge started"' in log.read_text(), 15)
            time.sleep(1.5)
            daemon.send(signal.SIGHUP)
            assert wait_for(lambda: '"config reloaded"' in log.read_text(), 10)
            time.sleep(1.0)
        finally:
            daemon.stop(timeout=30)
        outputs["daemon stdout"] = (tmp_path / "daemon.out").read_text(encoding="utf-8", errors="replace")
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


# --- every form of a secret, and secrets that cannot be sent ---------------------------------

# Telegram puts the token in the URL path, where httpx percent-encodes what a path cannot hold,
# and its debug log prints every request line. The punctuated one has what JSON, repr and the
# percent-encoders each escape differently.
TOKENS = {
    "plain": "987654:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "with-spaces": "987654:AAQmxhVz8qLp2 KwRtYu7 Zx",
    "punctuated": "987654:AAfzQ9\"wX\\Lm'Pq|Tr^Yb%41Kc",
}


def fragments(secret: str) -> list[str]:
    """The runs of five or more letters and digits of `secret`: no encoding of the secret
    (percent, JSON, repr) changes them, so finding none of them means no form leaked."""
    return [run for run in "".join(c if c.isalnum() else " " for c in secret).split() if len(run) >= 5]


def leaked(secret: str, text: str) -> list[str]:
    return [run for run in fragments(secret) if run in text]


def _telegram_config(tmp_path: Path, api_url: str, token_ref: str, feed_url: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
interval = "1s"
backfill = 1
channels = ["telegram"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"

[[feeds]]
id = "notizie"
url = "{feed_url or 'https://www.comune.esempio.it/feed/'}"

[channels.telegram]
type = "telegram"
chat_id = "@comune_esempio"
token = "{token_ref}"
api_url = "{api_url}"
""", encoding="utf-8")
    return config


def _env(**extra: str) -> dict[str, str]:
    return bridge_environment(extra, without=("JOURNAL_STREAM",))


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(TOKENS))
def test_debug_check_online_never_prints_the_telegram_token(name: str, tmp_path: Path) -> None:
    token = TOKENS[name]
    with FakeTelegram(token=token) as telegram:
        config = _telegram_config(tmp_path, telegram.url, "env:TELEGRAM_BOT_TOKEN")
        done = run_bridge(config, "--debug", "check", "--online", env=_env(TELEGRAM_BOT_TOKEN=token))
    # The fake compares the path as sent: a token httpx had to encode is refused (401), which
    # puts the error message through the channel's scrubbing too.
    assert done.returncode == (0 if name == "plain" else 3), done.stdout + done.stderr
    assert "HTTP Request: POST" in done.stderr  # httpx's request line was printed...
    assert "/bot[secret]/getMe" in done.stderr  # ...with the token masked
    assert leaked(token, done.stdout + done.stderr) == []


def test_every_printed_form_of_a_secret_is_masked_in_logs_and_channel_errors() -> None:
    import io
    import json as json_module
    import re
    from urllib.parse import quote, quote_plus

    import httpx
    import structlog

    from bridge import logs
    from bridge.channels.endpoint import Endpoint

    secret = TOKENS["punctuated"] + " tail"
    forms = {
        "raw": secret,
        "quote": quote(secret),
        "quote-safe-none": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "lower-hex": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe="")),
        "httpx-path": str(httpx.URL(f"http://127.0.0.1/bot{secret}/getMe")),
        "httpx-query": str(httpx.URL("http://127.0.0.1/x", params={"key": secret})),
        "json": json_module.dumps({"token": secret}),
        "repr": repr(secret),
        "bytes-repr": repr(secret.encode()),
        "repr-in-double-quotes": repr(secret + "'"),
    }
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook)
    try:
        logs.configure(stream=stream, json_lines=True)
        logs.register_secrets([secret])
        log = structlog.get_logger("test")
        for name, text in forms.items():
            log.warning("echo", form=name, text=text)
            logging.getLogger("httpx").warning("HTTP Request: %s", text)
    finally:
        root.handlers[:], sys.excepthook = saved[0], saved[2]
        root.setLevel(saved[1])
        structlog.reset_defaults()
    assert leaked(secret, stream.getvalue()) == []
    assert stream.getvalue().count("[secret]") >= 2 * len(forms)

    endpoint = Endpoint(channel="c", platform="P", http=httpx.AsyncClient(), base_url="http://127.0.0.1",
                        timeout=1.0, secrets=[secret])
    for name, text in forms.items():
        assert leaked(secret, endpoint.scrub(f"gateway said: {text}")) == [], name


SECRET_PROBLEMS = {
    "two lines": ("987654:AAfirstLINEofTHEfile\nsecondLINEofTHEfile\n", "has more than one line"),
    "carriage return": ("987654:AAwindowsSTYLEline\r\nmore\r\n", "has more than one line"),
    "tab inside": ("987654:AAtabbed\tSECRETvalue", "contains a control character (at position 16)"),
    "escape inside": ("987654:AAescape\x1bSECRETvalue", "contains a control character (at position 16)"),
    "delete inside": ("987654:AAdelete\x7fSECRETvalue", "contains a control character (at position 16)"),
    "non-ascii": ("987654:AAcittàSECRETvalue",
                  "contains a character that an HTTP header cannot carry (non-ASCII, at position 14)"),
    "line separator": ("987654:AAlineSEP\u2028SECRETvalue",
                       "contains a character that an HTTP header cannot carry (non-ASCII, at position 17)"),
}


@pytest.mark.parametrize("case", sorted(SECRET_PROBLEMS))
@pytest.mark.parametrize("source", ["file", "credential", "env"])
def test_a_secret_that_cannot_be_sent_is_refused_at_load_naming_its_source(
    case: str, source: str, tmp_path: Path
) -> None:
    from bridge.config import ConfigError, load_config

    value, reason = SECRET_PROBLEMS[case]
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "telegram-token").write_bytes(value.encode("utf-8"))
    ref = {"file": "file:credentials/telegram-token", "credential": "credential:telegram-token",
           "env": "env:TELEGRAM_BOT_TOKEN"}[source]
    config = _telegram_config(tmp_path, "https://api.telegram.org", ref)
    env = {"CREDENTIALS_DIRECTORY": str(credentials), "TELEGRAM_BOT_TOKEN": value}
    with pytest.raises(ConfigError) as caught:
        load_config(config, env)
    [error] = caught.value.errors
    named = "environment variable TELEGRAM_BOT_TOKEN" if source == "env" else f"file {credentials / 'telegram-token'}"
    assert error.startswith(f"channels.telegram.token: the secret in {named} {reason}"), error
    assert leaked(value, str(caught.value)) == []


@pytest.mark.parametrize("value", ["  987654:AAspaceAROUND", "987654:AAspaceAROUND "])
def test_an_environment_secret_with_a_space_at_either_end_is_refused(value: str, tmp_path: Path) -> None:
    from bridge.config import ConfigError, load_config

    config = _telegram_config(tmp_path, "https://api.telegram.org", "env:TELEGRAM_BOT_TOKEN")
    with pytest.raises(ConfigError, match="begins or ends with a space: set it to the secret alone"):
        load_config(config, {"TELEGRAM_BOT_TOKEN": value})


@pytest.mark.parametrize("content", ["987654:AAoneLINE\n", "987654:AAoneLINE\r\n", "  987654:AAoneLINE \n\n",
                                     "987654:AAoneLINE"])
def test_a_secret_file_may_end_with_a_line_break(content: str, tmp_path: Path) -> None:
    from bridge.config import load_config

    (tmp_path / "telegram.token").write_text(content, encoding="utf-8")
    config = load_config(_telegram_config(tmp_path, "https://api.telegram.org", "file:telegram.token"), {})
    token = config.channels["telegram"].token
    assert token is not None and token.value == "987654:AAoneLINE"


def test_a_secret_file_that_is_not_utf8_is_refused_without_its_bytes(tmp_path: Path) -> None:
    from bridge.config import ConfigError, load_config

    (tmp_path / "telegram.token").write_bytes(b"987654:AA\xff\xfeBINARYsecret")
    with pytest.raises(ConfigError) as caught:
        load_config(_telegram_config(tmp_path, "https://api.telegram.org", "file:telegram.token"), {})
    assert "is not UTF-8 text" in str(caught.value)
    assert "BINARYsecret" not in str(caught.value) and "xff" not in str(caught.value)


@pytest.mark.e2e
def test_a_two_line_credential_is_refused_and_reaches_no_output_status_or_outbox(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A two-line credential file: `check` and `run` refuse it with its place and source;
    nothing is sent, so nothing (a gateway's error echoing it) reaches the state or `status`."""
    # No fragment of it is a word the bridge prints itself ("first", in `status`).
    value = "sk-1st-LINEofTHEkey\nsk-2nd-OTHERlineOFkey\n"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "waha-api-key").write_text(value, encoding="utf-8")
    feed_server.set_feed("/feed.xml", rss([
        {"title": "Chiusura di via Roma per lavori", "link": f"{SITE}/via-roma/", "guid": "g1",
         "description": "Via Roma resta chiusa per lavori da lunedì."}
    ]))
    with FakeWaha(api_key="the-right-key") as waha:
        config = tmp_path / "config.toml"
        config.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
backfill = 1
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]
fetch_article = "never"

[[feeds]]
id = "notizie"
url = "{feed_server.url('/feed.xml')}"

[channels.whatsapp]
type = "waha"
url = "{waha.url}"
chat_id = "120363000000000001@newsletter"
api_key = "credential:waha-api-key"
""", encoding="utf-8")
        env = _env(CREDENTIALS_DIRECTORY=str(credentials))
        outputs = {}
        for name, args, expected in (("check", ["check"], 2), ("run --once", ["--debug", "run", "--once"], 2),
                                     ("status", ["status", "--json"], 0)):
            done = run_bridge(config, *args, env=env)
            assert done.returncode == expected, f"{name}: {done.stdout}{done.stderr}"
            outputs[name] = done.stdout + done.stderr
        assert waha.requests == [] or all("sendText" not in r.path for r in waha.requests)
    message = (f"channels.whatsapp.api_key: the secret in file {credentials / 'waha-api-key'} has more than one "
               "line: the file must hold the secret alone, on one line (a final line break is fine)")
    assert message in outputs["check"] and message in outputs["run --once"]
    found = {name: leaked(value, text) for name, text in outputs.items() if leaked(value, text)}
    for path in sorted((tmp_path / "state").rglob("*")):
        if path.is_file() and leaked(value, path.read_text(encoding="utf-8", errors="replace")):
            found[str(path)] = leaked(value, path.read_text(encoding="utf-8", errors="replace"))
    assert found == {}


@pytest.mark.e2e
def test_the_daemon_masks_a_token_that_a_reload_brings(tmp_path: Path, feed_server: FeedServer) -> None:
    first, second = "111111:AAfirstTOKENbeforeRELOAD", "222222:AAsecondTOKENafterRELOAD"
    token_file = tmp_path / "telegram.token"
    token_file.write_text(first + "\n", encoding="utf-8")

    def story(n: int) -> dict[str, str]:
        return {"title": f"Avviso numero {n} per via Roma", "link": f"{SITE}/avviso-{n}/", "guid": f"g{n}",
                "description": f"Via Roma resta chiusa per lavori, avviso numero {n}."}

    feed_server.set_feed("/feed.xml", rss([story(1)]))
    with FakeTelegram(token=first) as telegram:
        config = _telegram_config(tmp_path, telegram.url, "file:telegram.token", feed_server.url("/feed.xml"))
        log_path = tmp_path / "daemon.log"
        daemon = Daemon(config, log_path, env=_env(), options=["--debug"])
        try:
            assert wait_for(lambda: len(telegram.messages) == 1, 20), log_path.read_text()
            token_file.write_text(second + "\n", encoding="utf-8")
            telegram.token = second
            daemon.send(signal.SIGHUP)
            assert wait_for(lambda: '"config reloaded"' in log_path.read_text(), 15)
            feed_server.set_feed("/feed.xml", rss([story(2), story(1)]))
            assert wait_for(lambda: len(telegram.messages) == 2, 20), log_path.read_text()
        finally:
            daemon.stop(timeout=30)
    log = log_path.read_text(encoding="utf-8")
    assert log.count("/bot[secret]/sendMessage") >= 2
    assert leaked(first, log) == [] and leaked(second, log) == []


def test_a_traceback_is_masked_on_the_console_and_at_the_top_of_the_process() -> None:
    secret = TOKENS["with-spaces"]
    program = f"""
import logging, sys
import structlog
from urllib.parse import quote
from bridge import logs
logs.configure(stream=sys.stdout, json_lines=False)  # the console renderer formats tracebacks itself
logs.register_secrets([{secret!r}])
try:
    raise ValueError("gateway refused " + quote({secret!r}))
except ValueError:
    structlog.get_logger("test").exception("send failed")
raise RuntimeError("uncaught, with " + repr({secret!r}))
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, env=_env())
    assert "send failed" in done.stdout and "ValueError: gateway refused [secret]" in done.stdout
    assert "RuntimeError: uncaught, with '[secret]'" in done.stderr and done.returncode == 1
    assert leaked(secret, done.stdout + done.stderr) == []
