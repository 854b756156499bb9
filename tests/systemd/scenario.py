#!/usr/bin/python3
"""The real-systemd scenario. Runs INSIDE the container booted by harness.sh, as root, with
Debian's python3 (stdlib only), from the directory holding `src/` (the project) and
`wheels/`.

It first runs the README's install section as written, line by line, in a root login shell
(the shipped config.toml and its sample feed: `check` valid, the service prints the sample's
items, `channel-bridge` on root's PATH, `status` showing the feed polled). Then, on the same
installation, with its own config.toml, a feed server and a fake WAHA on loopback in this
process, it drives the service through systemctl: start, a new item, a reload adding a
feed, a reload with a broken config, kill -9, a hung process (the watchdog), stop.
Every check is printed as it runs; the exit status is 1 if any failed. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import types
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path.cwd()
SRC = HERE / "src"
WHEELS = HERE / "wheels"
# The fakes declare pytest fixtures, unused here; pytest is not installed in the container.
sys.modules.setdefault("pytest", types.SimpleNamespace(fixture=lambda function: function))  # type: ignore[arg-type]
sys.path.insert(0, str(SRC / "tests"))

from servers.feeds import FeedServer, rss  # noqa: E402
from servers.waha import FakeWaha  # noqa: E402

UNIT = "channel-bridge"
VENV = Path("/opt/channel-bridge")
CLI = str(VENV / "bin" / "channel-bridge")
CONFIG_DIR = Path("/etc/channel-bridge")
CONFIG = CONFIG_DIR / "config.toml"
CREDENTIALS = CONFIG_DIR / "credentials"
DROP_INS = Path(f"/etc/systemd/system/{UNIT}.service.d")
API_KEY = "waha-key-for-the-systemd-test"
CHAT = "120363000000000042@newsletter"
WATCHDOG = 4  # seconds, the test drop-in's WatchdogSec=
CONSOLE_PORT = 8470  # the console's default listen port, on loopback
RUNTIME = Path("/run/channel-bridge")  # the unit's RuntimeDirectory=
SECURITY_LIMIT = 1.5
# The example is "12 feeds, 0 failing, queue 0, last post 10:32"; before any post there is no time.
STATUS = re.compile(r"\d+ feeds?, \d+ failing, queue \d+, (last post (\d{4}-\d\d-\d\d )?\d\d:\d\d|no post yet)")
NOW = datetime.now(UTC).replace(microsecond=0)

failures: list[str] = []
notes: list[str] = []
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {text}", flush=True)


def check(name: str, ok: bool, detail: object = "") -> bool:
    """Record one check; go on after a failure so one run reports them all."""
    say(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail != "" and not ok else ""))
    if not ok:
        failures.append(name)
    return ok


def note(text: str) -> None:
    """Something worth knowing that the issue does not require: printed, never a failure."""
    say(f"note {text}")
    notes.append(text)


class Abort(Exception):
    """A step the rest of the scenario depends on failed."""


def require(name: str, ok: bool, detail: object = "") -> None:
    if not check(name, ok, detail):
        raise Abort(name)


def sh(*command: str, timeout: float = 60, check_rc: bool = True, **options: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)
    if check_rc and result.returncode != 0:
        raise Abort(f"{' '.join(command)} exited {result.returncode}: {result.stdout}{result.stderr}")
    return result


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def show(prop: str) -> str:
    return sh("systemctl", "show", "-p", prop, "--value", UNIT).stdout.strip()


def main_pid() -> int:
    return int(show("MainPID") or 0)


def running() -> bool:
    return show("ActiveState") == "active" and show("SubState") == "running"


def journal(*options: str) -> str:
    return sh("journalctl", "-u", UNIT, "--no-pager", "-o", "cat", *options).stdout


def journal_after(mark: str, *, priority: int = 7) -> str:
    """The unit's messages after the cursor `mark`, at `priority` or more urgent.

    Filtered here: journalctl 252 prints nothing for --after-cursor together with -p.
    """
    out = sh("journalctl", "-u", UNIT, "--no-pager", "-o", "json", "--after-cursor", mark).stdout
    messages = []
    for line in out.splitlines():
        record = json.loads(line)
        if int(record.get("PRIORITY", 6)) <= priority and isinstance(record.get("MESSAGE"), str):
            messages.append(record["MESSAGE"])
    return "\n".join(messages)


# The world a root login shell starts from: its PATH is the one /etc/profile gives root. The
# pip settings only make the README's `pip install .` find the wheels offline.
LOGIN_ENV = {"HOME": "/root", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PIP_NO_INDEX": "1",
             "PIP_FIND_LINKS": str(WHEELS), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def login_shell(command: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`command` as root types it in a login shell, from the checkout."""
    return sh("bash", "-l", "-c", command, timeout=timeout, check_rc=False, cwd=SRC, env=LOGIN_ENV)


def operator(*args: str) -> subprocess.CompletedProcess[str]:
    """`channel-bridge ARGS` as root runs it after the README's steps: from root's PATH, with
    the service's config, credentials and state, from any directory."""
    return login_shell("cd / && channel-bridge " + " ".join(args), timeout=60)


def readme_install_steps() -> list[str]:
    """The command lines of the README's install section (its first indented block)."""
    text = (SRC / "README.md").read_text(encoding="utf-8")
    section = text.split("## Install as a system service", 1)[1].split("\n## ", 1)[0]
    steps: list[str] = []
    for line in section.splitlines():
        if line.startswith("    ") and line.strip():
            steps.append(line.strip())
        elif steps:
            break
    return steps


def cursor() -> str:
    """A journal position: `journal("--after-cursor", cursor)` reads what came after."""
    out = sh("journalctl", "-u", UNIT, "-n", "0", "--show-cursor", "--no-pager").stdout
    match = re.search(r"-- cursor: (\S+)", out)
    return match.group(1) if match else ""


def news(n: int, *, hours_ago: float) -> dict[str, Any]:
    return {
        "title": f"Avviso numero {n}: chiusura temporanea di via Roma",
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": f"Da lunedì via Roma resta chiusa per lavori alla rete idrica, cantiere numero {n}. "
        "Le deviazioni sono indicate sul posto.",
        "pubDate": NOW - timedelta(hours=hours_ago),
    }


def title(n: int) -> str:
    return f"Avviso numero {n}: chiusura temporanea di via Roma"


class World:
    """The feed server and the fake WAHA the daemon talks to, on 127.0.0.1."""

    def __init__(self) -> None:
        self.feeds = FeedServer()
        self.waha = FakeWaha(api_key=API_KEY).start()
        self.items: dict[str, list[dict[str, Any]]] = {"notizie": [], "eventi": []}

    def publish(self, feed: str, *items: dict[str, Any]) -> None:
        self.items[feed] = [*items, *self.items[feed]]  # newest first, as feeds list them
        self.feeds.set_feed(f"/{feed}.xml", rss(self.items[feed]))

    def polls(self, feed: str) -> int:
        return len(self.feeds.requests(f"/{feed}.xml"))

    def wait_polls(self, feed: str, more: int, timeout: float = 30) -> bool:
        target = self.polls(feed) + more
        return wait_until(lambda: self.polls(feed) >= target, timeout)

    def posted(self) -> list[str]:
        """First line of every accepted send, oldest first: "*Avviso numero 4: ...*"."""
        return [post.text.splitlines()[0].strip("*") for post in self.waha.posts]

    def wait_posted(self, n: int, timeout: float = 30) -> bool:
        return wait_until(lambda: title(n) in self.posted(), timeout)

    def close(self) -> None:
        self.waha.close()
        self.feeds.close()


def feed_url(world: World, feed: str) -> str:
    url = world.feeds.url(f"/{feed}.xml")
    # One feed by name: the name is resolved inside the sandbox (no AF_NETLINK, ProtectSystem...).
    return url.replace("127.0.0.1", "localhost") if feed == "eventi" else url


def config_text(world: World, feeds: list[str], *, broken: bool = False) -> str:
    text = f"""# Written by the systemd test, as an operator would.
[bridge]
# The path systemd's StateDirectory= gives; written here too so that channel-bridge run by
# root (status, history) finds the same state.
state_dir = "/var/lib/channel-bridge"
timezone = "Europe/Rome"

[console]
# The staff console, on loopback (the default address): the unit needs no IPAddressAllow= for it.
listen = "127.0.0.1:{CONSOLE_PORT}"

[defaults]
interval = "2s"
channels = ["whatsapp"]
# The feeds are served from 127.0.0.1, their items link to the comune's site.
link_domains = ["comune.esempio.it"]
"""
    for feed in feeds:
        interval = 'interval = "5 minuti"\n' if broken and feed == "eventi" else ""
        text += f"""
[[feeds]]
id = "{feed}"
name = "{feed.capitalize()} dal Comune"
url = "{feed_url(world, feed)}"
{interval}"""
    text += f"""
[channels.whatsapp]
type = "waha"
url = "{world.waha.url}"
session = "default"
chat_id = "{CHAT}"
api_key = "credential:waha-api-key"
"""
    return text


def write_config(text: str) -> None:
    tmp = CONFIG.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(CONFIG)


# -- the steps -------------------------------------------------------------------------------


def readme_install() -> None:
    """The README's install section, as written, line by line; then what it promises: the
    shipped config is valid, the service runs it (the sample's three newest items in the
    journal), `channel-bridge` is on root's PATH and `status` shows the feed polled."""
    say(f"{sh('systemctl', '--version').stdout.splitlines()[0]}; python {sys.version.split()[0]}")
    hosts = Path("/etc/hosts")
    if not hosts.exists():  # a minimal rootfs has none; every installed Debian has this one
        hosts.write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n", encoding="utf-8")
    steps = readme_install_steps()
    require("the README has install steps", len(steps) >= 5, steps)
    started = time.monotonic()
    for step in steps:
        result = login_shell(step)
        say(f"$ {step}\n{(result.stdout + result.stderr).rstrip()}")
        require(f"README step exits 0: {step}", result.returncode == 0, result.stdout + result.stderr)
        if step.startswith("channel-bridge check"):
            check("check says the copied config is valid", "/etc/channel-bridge/config.toml: valid" in result.stdout,
                  result.stdout)
    say(f"the README's steps took {time.monotonic() - started:.1f}s")
    require("the command is installed", Path(CLI).exists())
    where = login_shell("command -v channel-bridge").stdout.strip()
    check("channel-bridge is on root's PATH", where == "/usr/local/bin/channel-bridge", where)
    require("the service runs the shipped config", wait_until(running, 15), f"{show('ActiveState')}/{show('SubState')}")
    check("it prints the sample's three newest items (console channel, backfill 3)",
          wait_until(lambda: journal().count("── Comune di Esempio") == 3, 30), journal("-n", "40"))

    def feed_polled() -> bool:
        result = operator("status", "--json")
        return result.returncode == 0 and json.loads(result.stdout)["feeds"][0]["health"] == "ok"

    check("channel-bridge status shows the sample feed polled", wait_until(feed_polled, 20, interval=0.5),
          operator("status").stdout + operator("status").stderr)
    status = operator("status")
    say("channel-bridge status:\n" + status.stdout + status.stderr)
    check("the status line says 1 feed", show("StatusText").startswith("1 feed, "), show("StatusText"))
    # The rest of the scenario starts the service afresh, with its own config.
    sh("systemctl", "stop", UNIT, timeout=60)
    shutil.rmtree("/var/lib/private/channel-bridge")


def install() -> None:
    """The unit as the README installed it: verified, and its exposure scored."""
    unit = Path(f"/etc/systemd/system/{UNIT}.service")

    verify = sh("systemd-analyze", "verify", str(unit), check_rc=False)
    check("systemd-analyze verify prints nothing", verify.returncode == 0 and not (verify.stdout + verify.stderr),
          verify.stdout + verify.stderr)
    security = sh("systemd-analyze", "security", "--offline=true", "--no-pager", str(unit), check_rc=False)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    score = float(match.group(1)) if match else 99.0
    say(f"systemd-analyze security --offline=true: {match.group(0) if match else security.stdout[-500:]}")
    check(f"security exposure {score} <= {SECURITY_LIMIT}", score <= SECURITY_LIMIT)


def configure(world: World) -> None:
    """config.toml, the API key as a credential, and the drop-ins."""
    CONFIG_DIR.mkdir(mode=0o755, exist_ok=True)
    write_config(config_text(world, ["notizie"]))
    CREDENTIALS.mkdir(mode=0o700, exist_ok=True)
    secret = CREDENTIALS / "waha-api-key"
    secret.write_text(API_KEY + "\n", encoding="utf-8")
    secret.chmod(0o600)
    DROP_INS.mkdir(parents=True, exist_ok=True)
    # What the guide tells the operator to write with `systemctl edit channel-bridge`.
    (DROP_INS / "credenziali.conf").write_text(
        "[Service]\nLoadCredential=waha-api-key:/etc/channel-bridge/credentials/waha-api-key\n", encoding="utf-8"
    )
    # Test only: a short watchdog, so that the test waits seconds.
    (DROP_INS / "test.conf").write_text(f"[Service]\nWatchdogSec={WATCHDOG}s\n", encoding="utf-8")
    sh("systemctl", "daemon-reload")
    checked = operator("check")
    check("channel-bridge check accepts the config (as the guide runs it)", checked.returncode == 0,
          checked.stdout + checked.stderr)


def start(world: World) -> None:
    world.publish("notizie", news(1, hours_ago=30), news(2, hours_ago=20), news(3, hours_ago=10))
    started = time.monotonic()
    result = sh("systemctl", "start", UNIT, timeout=90, check_rc=False)  # returns once READY=1 arrived
    say(f"systemctl start took {time.monotonic() - started:.2f}s")
    require("systemctl start succeeds (READY=1 reached)", result.returncode == 0, result.stderr + journal("-n", "30"))
    require("active (running)", running(), f"{show('ActiveState')}/{show('SubState')}")
    status = show("StatusText")
    check("StatusText is set", bool(status), status)
    say(f"StatusText={status!r}")
    check('StatusText reads like "12 feeds, 0 failing, queue 0, last post 10:32"',
          STATUS.match(status) is not None, status)
    pid = main_pid()
    user = sh("ps", "-o", "user=", "-p", str(pid), check_rc=False).stdout.strip()
    check("runs as a dynamic user, not root", user not in ("", "root"), user)
    check("state under /var/lib/private (DynamicUser)", Path("/var/lib/private/channel-bridge").is_dir())
    check("journal says started", "channel-bridge started" in journal())


def first_poll_then_new_item(world: World) -> None:
    require("the feed is polled twice", world.wait_polls("notizie", 2), world.polls("notizie"))
    check("the first poll posts nothing (backfill 0)", world.posted() == [], world.posted())
    world.publish("notizie", news(4, hours_ago=0.5))
    require("a new item is posted", world.wait_posted(4), world.posted())
    post = world.waha.posts[-1]
    check("with the credential's API key, to the channel", post.api_key == API_KEY and post.chat_id == CHAT)
    check("StatusText shows the time of the last post",
          wait_until(lambda: re.search(r"last post \d\d:\d\d", show("StatusText")) is not None, 15),
          show("StatusText"))


def console_and_control(world: World) -> None:
    """With the console on (loopback): /healthz answers from inside the container; the control
    socket is in the runtime directory, mode 0700, the socket 0600; `channel-bridge queue`, run
    by root from a login shell, asks the running daemon over it."""

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{CONSOLE_PORT}/healthz", timeout=5) as answer:
                return bool(answer.status == 200 and answer.read() == b"ok\n")
        except OSError:
            return False

    check("the console answers /healthz on 127.0.0.1", wait_until(healthy, 20, interval=0.5), journal("-n", "30"))
    mode = stat.S_IMODE(RUNTIME.stat().st_mode) if RUNTIME.is_dir() else None
    check("the runtime directory /run/channel-bridge is mode 0700", mode == 0o700, oct(mode) if mode else "missing")
    control = RUNTIME / "control.sock"
    info = control.stat() if control.exists() else None
    check("the control socket is there, mode 0600",
          info is not None and stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600,
          oct(info.st_mode) if info else sorted(RUNTIME.iterdir()) if RUNTIME.is_dir() else "no directory")
    queue = operator("queue")
    say("channel-bridge queue:\n" + queue.stdout + queue.stderr)
    check("channel-bridge queue asks the running daemon over its socket, as root",
          queue.returncode == 0 and queue.stdout.splitlines()[:1] == [f"from the running daemon (pid {main_pid()})"],
          queue.stdout + queue.stderr)
    listed = operator("queue", "--json")
    rows = json.loads(listed.stdout) if listed.returncode == 0 else None
    check("channel-bridge queue --json is a list", isinstance(rows, list), listed.stdout + listed.stderr)


def reload_adds_feed(world: World) -> None:
    world.publish("eventi", news(11, hours_ago=12), news(12, hours_ago=6))
    pid = main_pid()
    mark = cursor()
    write_config(config_text(world, ["notizie", "eventi"]))
    result = sh("systemctl", "reload", UNIT, timeout=60, check_rc=False)
    check("systemctl reload succeeds", result.returncode == 0, result.stderr)
    check("active after the reload", wait_until(running, 15), show("ActiveState"))
    check("same process (reloaded, not restarted)", main_pid() == pid)
    check("the added feed is polled", world.wait_polls("eventi", 2), world.polls("eventi"))
    world.wait_polls("notizie", 1)
    check("the added feed's old items are not posted",
          not {title(11), title(12)} & set(world.posted()), world.posted())
    check("journal says reloaded", wait_until(lambda: "config reloaded" in journal("--after-cursor", mark), 10))
    status = show("StatusText")
    check("StatusText counts 2 feeds", status.startswith("2 feeds"), status)
    world.publish("eventi", news(13, hours_ago=0.2))
    check("a new item of the added feed is posted", world.wait_posted(13), world.posted())


def reload_broken(world: World) -> None:
    pid = main_pid()
    mark = cursor()
    write_config(config_text(world, ["notizie", "eventi"], broken=True))
    result = sh("systemctl", "reload", UNIT, timeout=60, check_rc=False)
    check("systemctl reload of a broken config returns", result.returncode == 0, result.stderr)
    check("still active", wait_until(running, 15), show("ActiveState"))
    check("same process", main_pid() == pid)
    errors = ""

    def rejected() -> bool:
        nonlocal errors
        errors = journal_after(mark, priority=3)
        return "reload rejected" in errors

    check("the error is in the journal at priority err", wait_until(rejected, 10), journal("--after-cursor", mark))
    check("the journal names the bad value", "5 minuti" in errors, errors)
    status = show("StatusText")
    check("StatusText says the reload was rejected", "reload rejected" in status, status)
    world.publish("notizie", news(5, hours_ago=0.2))
    check("the old config keeps running: a new item is posted", world.wait_posted(5), world.posted())
    write_config(config_text(world, ["notizie", "eventi"]))
    sh("systemctl", "reload", UNIT, timeout=60, check_rc=False)
    check("a good reload clears the rejection", wait_until(lambda: "rejected" not in show("StatusText"), 15),
          show("StatusText"))


def kill_9_in_flight(world: World) -> None:
    pid = main_pid()
    restarts = int(show("NRestarts"))
    # The gateway accepts the post, then answers slowly: kill -9 lands while the send is in flight.
    world.waha.delay = 8  # every answer, the message id's too: the post is recorded after about 8 s
    world.publish("notizie", news(6, hours_ago=0.1))
    in_flight = wait_until(lambda: title(6) in world.posted(), 30, interval=0.02)
    os.kill(pid, signal.SIGKILL)
    world.waha.delay = 0
    require("the post reached the gateway before the kill", in_flight, world.posted())
    say(f"killed {pid} with SIGKILL while its send was in flight")
    restarted = wait_until(lambda: main_pid() not in (0, pid) and running(), 45)
    require("restarted by systemd", restarted, f"{show('ActiveState')}/{show('SubState')} {journal('-n', '20')}")
    check("NRestarts counts it", int(show("NRestarts")) == restarts + 1, show("NRestarts"))
    check("the new process polls again", world.wait_polls("notizie", 2))
    check("the in-flight item is in the history once", wait_until(lambda: history_titles().count(title(6)) == 1, 20),
          history_titles())
    world.wait_polls("notizie", 1)
    check("no duplicate post after kill -9", world.posted().count(title(6)) == 1, world.posted())


def history_titles() -> list[str]:
    result = operator("history", "--format", "json")
    if result.returncode != 0:
        return [f"history failed: {result.stderr.strip()}"]
    return [record["title"] for record in json.loads(result.stdout)]


def hung_process(world: World) -> None:
    pid = main_pid()
    restarts = int(show("NRestarts"))
    mark = cursor()
    # SIGSTOP hangs the whole process from outside, as a stuck kernel call would: no ping can
    # come. systemd sends its watchdog signal followed by SIGCONT, so the process wakes up to die.
    # (That only the event loop's health makes pings is tests/test_systemd_notify.py's concern.)
    os.kill(pid, signal.SIGSTOP)
    say(f"SIGSTOP to {pid}: the daemon hangs")
    restarted = wait_until(lambda: main_pid() not in (0, pid) and running(), WATCHDOG + 40)
    require("the watchdog restarts the stalled daemon", restarted, journal("--after-cursor", mark))
    log = journal("--after-cursor", mark)
    check("systemd names the watchdog", "Watchdog timeout" in log or "watchdog" in log, log)
    check("NRestarts counts it", int(show("NRestarts")) == restarts + 1, show("NRestarts"))
    world.publish("notizie", news(7, hours_ago=0.05))
    check("the restarted daemon posts a new item", world.wait_posted(7), world.posted())


def warnings_in_journal(world: World) -> None:
    mark = cursor()
    world.feeds.set_fault("/eventi.xml", "500")
    check("a failing feed is polled", world.wait_polls("eventi", 1))
    wait_until(lambda: "feed poll failed" in journal("--after-cursor", mark), 15)
    world.feeds.set_fault("/eventi.xml", None)
    warnings = sh("journalctl", "-u", UNIT, "-p", "warning", "--no-pager", "-o", "cat").stdout
    check("journalctl -p warning shows the failing feed", "feed poll failed" in warnings, warnings[-2000:])
    check("journalctl -p warning shows the rejected reload", "reload rejected" in warnings)
    check("journalctl -p warning leaves out info lines", "config reloaded" not in warnings
          and "channel-bridge started" not in warnings, warnings[-2000:])
    records = sh("journalctl", "-u", UNIT, "--no-pager", "-o", "json", "--output-fields=PRIORITY,MESSAGE").stdout
    priorities = {}
    for line in records.splitlines():
        record = json.loads(line)
        message = record.get("MESSAGE")
        if isinstance(message, str) and message.startswith("{"):
            level = json.loads(message).get("level")
            priorities.setdefault(level, set()).add(record.get("PRIORITY"))
    check("journald priorities follow the log level",
          priorities.get("info") == {"6"} and priorities.get("warning") == {"4"} and priorities.get("error") == {"3"},
          priorities)
    leaked = sh("journalctl", "-u", UNIT, "--no-pager", "-o", "cat").stdout.count(API_KEY)
    check("the API key never appears in the journal", leaked == 0, leaked)


def stop(world: World) -> None:
    mark = cursor()
    started = time.monotonic()
    result = sh("systemctl", "stop", UNIT, timeout=60, check_rc=False)
    took = time.monotonic() - started
    say(f"systemctl stop took {took:.2f}s")
    check("systemctl stop succeeds", result.returncode == 0, result.stderr)
    check("inactive, result success", show("ActiveState") == "inactive" and show("Result") == "success",
          f"{show('ActiveState')} {show('Result')}")
    check("the main process exited 0", show("ExecMainStatus") == "0", show("ExecMainStatus"))
    check("well before TimeoutStopSec", took < 15, took)
    log = journal("--after-cursor", mark)
    check("journal says stopped", '"stopped"' in log, log)
    tasks = show("TasksCurrent")
    check("no process left in the unit's cgroup", show("MainPID") == "0" and tasks in ("", "0", "[not set]"), tasks)
    check("systemd removed the runtime directory and its socket", not RUNTIME.exists(),
          sorted(RUNTIME.iterdir()) if RUNTIME.is_dir() else "")
    stopped = operator("queue")
    check("channel-bridge queue reads the state when the daemon is stopped",
          stopped.returncode == 0 and stopped.stdout.splitlines()[:1] == [
              "from the state on disk: the daemon is not running"], stopped.stdout + stopped.stderr)
    status = operator("status")
    check("channel-bridge status works for root (the command on its PATH)", status.returncode == 0, status.stderr)
    say("channel-bridge status:\n" + status.stdout)


def invalid_config_at_start(world: World) -> None:
    """An invalid config.toml at start: the unit fails at once (no restart loop), says why."""
    mark = cursor()
    write_config(config_text(world, ["notizie", "eventi"], broken=True))
    result = sh("systemctl", "start", UNIT, timeout=90, check_rc=False)
    check("systemctl start refuses an invalid config", result.returncode != 0)
    # A manual start may reset systemd's restart counter: count from after the failure, and
    # wait past RestartSec= (5 s), when a restart would have come.
    restarts = show("NRestarts")
    time.sleep(6)
    check("failed, not restarting (RestartPreventExitStatus=2)",
          show("ActiveState") == "failed" and show("NRestarts") == restarts and show("ExecMainStatus") == "2",
          f"{show('ActiveState')} NRestarts={show('NRestarts')} (was {restarts}) status={show('ExecMainStatus')}")
    check("the journal says why", "5 minuti" in journal_after(mark), journal_after(mark))
    if "5 minuti" not in journal_after(mark, priority=3):
        note("the reason an invalid config stopped the start is in the journal at priority info, "
             "not err: journalctl -p err does not show it")
    write_config(config_text(world, ["notizie", "eventi"]))
    sh("systemctl", "reset-failed", UNIT, check_rc=False)


STATE = Path("/var/lib/private/channel-bridge")  # where DynamicUser= keeps StateDirectory=
BACKUP = Path("/root/channel-bridge-stato.tar.gz")


def start_again(name: str) -> bool:
    sh("systemctl", "reset-failed", UNIT, check_rc=False)
    result = sh("systemctl", "start", UNIT, timeout=90, check_rc=False)
    return check(name, result.returncode == 0 and running(), result.stderr + journal("-n", "20"))


def corrupt_state_and_restore(world: World) -> None:
    """The guide's backup, a state file gone bad, and the guide's restore."""
    posted = world.posted()
    sh("tar", "-C", str(STATE.parent), "-czf", str(BACKUP), STATE.name)
    shard = STATE / "feeds" / "notizie.json"
    if check("the feed's state file is where the guide says", shard.is_file(), sorted(STATE.rglob("*"))):
        with shard.open("ab") as file:
            file.write(b"\0garbage after a disk failure")
    mark = cursor()
    if start_again("starts with a corrupt state file"):
        errors = ""

        def reported() -> bool:
            nonlocal errors
            errors = journal_after(mark, priority=3)
            return "notizie.json" in errors

        check("the corrupt file is reported at priority err", wait_until(reported, 15), journal_after(mark))
        check("and moved aside", bool(list(shard.parent.glob("notizie.json.corrupt*"))), sorted(shard.parent.iterdir()))
        check("the feed is polled again", world.wait_polls("notizie", 2))
        check("its old items are not posted again", world.posted() == posted, world.posted())
    sh("systemctl", "stop", UNIT, timeout=60, check_rc=False)

    aside = STATE.with_name("channel-bridge.prima-del-ripristino")
    shutil.rmtree(aside, ignore_errors=True)
    STATE.rename(aside)
    sh("tar", "-C", str(STATE.parent), "-xzf", str(BACKUP))
    if start_again("starts on the restored backup"):
        check("the restored history lists every post", sorted(history_titles()) == sorted(posted), history_titles())
        check("the feeds are polled", world.wait_polls("notizie", 2) and world.wait_polls("eventi", 1))
        check("nothing is posted again", world.posted() == posted, world.posted())
    result = sh("systemctl", "stop", UNIT, timeout=60, check_rc=False)
    check("stopped again", result.returncode == 0 and show("ActiveState") == "inactive", show("ActiveState"))


def every_post_once(world: World) -> None:
    posted = world.posted()
    check("every post exactly once", len(posted) == len(set(posted)), posted)
    check("what was posted is what was new", sorted(posted) == sorted(title(n) for n in (4, 13, 5, 6, 7)), posted)


def main() -> int:
    world = World()
    try:
        readme_install()
        install()
        configure(world)
        start(world)
        console_and_control(world)
        first_poll_then_new_item(world)
        reload_adds_feed(world)
        reload_broken(world)
        kill_9_in_flight(world)
        hung_process(world)
        warnings_in_journal(world)
        stop(world)
        invalid_config_at_start(world)
        corrupt_state_and_restore(world)
        every_post_once(world)
    except (Abort, subprocess.TimeoutExpired) as exc:
        failures.append(f"aborted: {exc}")
        say(f"ABORTED: {exc}")
        print(sh("systemctl", "status", "--no-pager", UNIT, check_rc=False).stdout, flush=True)
        print(journal("-n", "60"), flush=True)
    finally:
        sh("systemctl", "stop", UNIT, timeout=60, check_rc=False)
        world.close()
    for text in notes:
        say(f"note: {text}")
    say(f"{len(failures)} failed: {failures}" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
