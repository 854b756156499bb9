"""`channel-bridge status` tells the truth: a feed that cannot be read is not "ok", and the
state is shown also while the config on disk is invalid."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).parent.parent
SAMPLE = REPO_ROOT / "bridge" / "sample" / "comune-esempio.xml"

CONFIG = """\
[bridge]
state_dir = "state"

[defaults]
channels = ["terminale"]
max_age = "3650d"
link_domains = ["comune.esempio.it"]

[[feeds]]
id = "esempio"
url = "esempio.xml"

[[feeds]]
id = "altro"
url = "altro.xml"

[channels.terminale]
type = "console"
"""


def channel_bridge(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    unset = ("STATE_DIRECTORY", "CHANNEL_BRIDGE_CONFIG", "NOTIFY_SOCKET", "RUNTIME_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHONPATH"] = str(REPO_ROOT.resolve())
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, env=env, cwd=config.parent, check=False)


def polled(tmp_path: Path) -> Path:
    """A state with two polls: "esempio" read, "altro" a file that does not exist."""
    shutil.copy(SAMPLE, tmp_path / "esempio.xml")
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    result = channel_bridge(config, "run", "--once")
    assert result.returncode == 1, result.stderr  # "altro" failed
    return config


def feeds_of(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    return {feed["id"]: feed for feed in json.loads(result.stdout)["feeds"]}


def test_a_feed_whose_file_is_missing_is_not_ok(tmp_path: Path) -> None:
    config = polled(tmp_path)
    result = channel_bridge(config, "status", "--json")

    assert result.returncode == 0, result.stderr
    feeds = feeds_of(result)
    assert feeds["esempio"]["health"] == "ok"
    assert feeds["altro"]["health"] == "error"
    assert "last poll failed" in str(feeds["altro"]["health_detail"])
    table = channel_bridge(config, "status").stdout
    row = next(line for line in table.splitlines() if line.startswith("altro "))
    assert " error " in row and "last poll failed" in row


def test_status_shows_the_state_while_the_config_is_invalid(tmp_path: Path) -> None:
    config = polled(tmp_path)
    config.write_text(CONFIG.replace('[defaults]\n', '[defaults]\ninterval = "5 minuti"\n'), encoding="utf-8")

    result = channel_bridge(config, "status")
    assert result.returncode == 2
    assert 'defaults.interval: expected a duration like "5m", got "5 minuti"' in result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"config: {config} is NOT VALID")
    assert any(line.startswith("esempio ") and " ok " in line for line in lines), result.stdout
    assert any(line.startswith("altro ") and " error " in line for line in lines), result.stdout
    assert any(line.startswith("terminale ") for line in lines), result.stdout

    as_json = channel_bridge(config, "status", "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["config"] == {"path": str(config), "valid": False}
    assert set(feeds_of(as_json)) == {"esempio", "altro"}


def test_status_with_a_file_that_is_not_even_toml_shows_what_the_state_remembers(tmp_path: Path) -> None:
    config = polled(tmp_path)
    config.write_text(CONFIG + "\n[[feeds\n", encoding="utf-8")

    result = channel_bridge(config, "status", "--json")
    assert result.returncode == 2
    assert "TOML syntax error" in result.stderr
    assert feeds_of(result)["esempio"]["health"] == "ok"  # the state beside the file, as by default


def test_the_status_line_dates_a_last_post_that_is_not_today() -> None:
    from bridge.daemon import moment_text  # here, not at the top: the daemon's imports are heavy

    rome = ZoneInfo("Europe/Rome")
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert moment_text(now - timedelta(hours=1), now, rome) == "09:00"
    assert moment_text(now - timedelta(hours=11), now, rome) == "2026-11-29 23:00"
    # Midnight in Rome, not in UTC: 23:30 UTC of the 29th is already the 30th there.
    assert moment_text(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), now, rome) == "00:30"


OPS_CONFIG = CONFIG + """
[channels.ced]
type = "console"

[ops]
channel = "ced"
"""


def test_status_lists_the_ops_alerts_stato_lists_posted_ones_too(tmp_path: Path) -> None:
    """`status` reads the state without the daemon's lock and loads no history; the ops
    alerts posted in the last days are in the history only, and it lists them all the same,
    as the console's *Stato* does from the daemon's own store (`status_report` for both)."""
    from bridge.config import OPS_FEED, load_config
    from bridge.models import Delivery
    from bridge.ops import ops_alert
    from bridge.status import OPS_DAYS, status_report
    from bridge.store import Store

    config_path = tmp_path / "config.toml"
    config_path.write_text(OPS_CONFIG, encoding="utf-8")
    config = load_config(config_path, env={}, resolve_secrets=False)
    now = datetime.now(UTC)

    def ops(ident: str, subject: str, created: datetime, **changes: object) -> Delivery:
        alert = ops_alert(subject, "message", "hint", created, ZoneInfo("Europe/Rome"))
        return Delivery(id=ident, channel="ced", feed_id=OPS_FEED, alert=alert, created=created, order=1.0,
                        **changes)  # type: ignore[arg-type]

    posted = ops("o1", "channel telegram paused", now - timedelta(days=2))
    old = ops("o2", "feed altro failing", now - timedelta(days=OPS_DAYS + 2))
    queued = ops("o3", "whatsapp session logged out", now - timedelta(hours=1))
    failed = ops("o4", "reload rejected", now - timedelta(hours=3), state="failed", last_error="expired")
    store = Store.open(config.bridge.state_dir)
    try:
        store.add_deliveries([posted, old, queued, failed])
        store.record_post(posted, None, posted.created)
        store.record_post(old, None, old.created)
    finally:
        store.close()

    result = channel_bridge(config_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["ops"]
    assert [(alert["state"], alert["title"]) for alert in listed] == [
        ("pending", "channel-bridge: whatsapp session logged out"),
        ("failed", "channel-bridge: reload rejected"),
        ("posted", "channel-bridge: channel telegram paused"),
    ]
    daemon_store = Store.open(config.bridge.state_dir)  # the daemon's: a writer, its history loaded
    try:
        assert listed == status_report(config, daemon_store)["ops"]
    finally:
        daemon_store.close()


def test_status_counts_the_alerts_waiting_for_an_editor_apart(tmp_path: Path) -> None:
    """An alert "da approvare" or held by an editor is not in the queue the drain sends from;
    `status` (and *Stato*, from the same report) counts each apart, so a channel with three
    alerts to approve does not look idle."""
    from bridge.config import load_config
    from bridge.item import Alert
    from bridge.models import Delivery
    from bridge.store import Store

    config_path = tmp_path / "config.toml"
    config_path.write_text(OPS_CONFIG, encoding="utf-8")
    config = load_config(config_path, env={}, resolve_secrets=False)
    now = datetime.now(UTC)

    def waiting(ident: str, state: str) -> Delivery:
        alert = Alert(feed_id="esempio", feed_name="Esempio", title=f"Avviso {ident}", summary="Testo.",
                      link=f"https://www.comune.esempio.it/{ident}")
        return Delivery(id=ident, channel="ced", feed_id="esempio", alert=alert, created=now, order=1.0,
                        state=state)  # type: ignore[arg-type]

    store = Store.open(config.bridge.state_dir)
    try:
        store.add_deliveries([waiting("a1", "awaiting"), waiting("a2", "awaiting"), waiting("s1", "stopped"),
                              waiting("p1", "pending")])
    finally:
        store.close()
    result = channel_bridge(config_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    ced = next(channel for channel in json.loads(result.stdout)["channels"] if channel["name"] == "ced")
    assert (ced["queue"], ced["awaiting"], ced["stopped"]) == (1, 2, 1)
    table = channel_bridge(config_path, "status").stdout
    header = next(line for line in table.splitlines() if line.startswith("channel "))
    row = next(line for line in table.splitlines() if line.startswith("ced "))
    assert "to approve" in header and "stopped" in header
    assert row.split()[2:7] == ["1", "0", "0", "2", "1"]
