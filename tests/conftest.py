"""Fixtures shared by the whole suite: real servers on loopback (see tests/servers/), small and
read-only file systems (tests/filesystems.py); and the suite's layers.

Every test belongs to one layer, given by the table LAYERS below (a test module is in one layer;
a heavier test in it may carry its own `pytest.mark.e2e`):

- `unit`: pure, in this process: no server, no network socket, no subprocess, no mount;
- `integration`: talks to the loopback servers of tests/servers/, runs `Bridge` in-process, or
  starts helper processes of its own (a parser worker, a second state writer, `mount` for a small
  file system), never the command;
- `e2e`: runs the real `channel-bridge` command (`python -m bridge`), or the daemon, as a
  subprocess.

`make test-fast` runs `-m "unit or integration"`; `make test` runs all. The layers are kept
true here, not by hand: a module missing from the table fails the run; a unit test that asks for
a loopback server fails at collection, one that opens a network socket or starts a process fails
when it does; so does a test outside `e2e` that starts the `bridge` command.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = [
    "filesystems",
    "servers.facebook",
    "servers.feeds",
    "servers.images",
    "servers.mastodon",
    "servers.bluesky",  # after servers.mastodon, whose grapheme count it uses
    "servers.pages",
    "servers.telegram",
    "servers.waha",
    "servers.webhook",
    "servers.whapi",
]

UNIT, INTEGRATION, E2E = "unit", "integration", "e2e"
LAYER_NAMES = (UNIT, INTEGRATION, E2E)

# Test module (file name under tests/, without .py) -> its layer.
LAYERS = {
    "test_addresses": INTEGRATION,
    "test_alert_golden": UNIT,
    "test_alert_sources": INTEGRATION,
    "test_alert_sources_e2e": E2E,
    "test_alerts_cap": UNIT,
    "test_alerts_dpc": UNIT,
    "test_alerts_meteoalarm": UNIT,
    "test_alerts_state": UNIT,
    "test_alerts_text": UNIT,
    "test_alerts_zones": UNIT,
    "test_approval": UNIT,
    "test_approval_crash": INTEGRATION,  # a helper process of its own, killed; a small tmpfs
    "test_approval_daemon": E2E,
    "test_approval_timeout": INTEGRATION,  # the daemon in-process on a fake clock
    "test_article": INTEGRATION,
    "test_cards": UNIT,
    "test_cards_config": UNIT,
    "test_channels": INTEGRATION,
    "test_channels_bluesky": INTEGRATION,
    "test_channels_edit": INTEGRATION,
    "test_channels_garbage": INTEGRATION,  # the daemon test in it is e2e
    "test_channels_facebook": INTEGRATION,
    "test_channels_facebook_e2e": E2E,
    "test_channels_mastodon": INTEGRATION,
    "test_channels_outgoing": INTEGRATION,
    "test_channels_render": UNIT,
    "test_channels_telegram": INTEGRATION,
    "test_channels_webhook": INTEGRATION,
    "test_channels_whapi": INTEGRATION,
    "test_corrections": UNIT,
    "test_corrections_config": UNIT,
    "test_corrections_daemon": INTEGRATION,
    "test_corrections_withdrawn": INTEGRATION,
    "test_corrections_version": INTEGRATION,  # the real store on disk
    "test_delete_channels": INTEGRATION,
    "test_delete_console": INTEGRATION,
    "test_delete_daemon": E2E,
    "test_delete_decision": UNIT,
    "test_cli_check": E2E,
    "test_cli_imports": E2E,
    "test_cli_pipes": E2E,
    "test_cli_queue": E2E,
    "test_cli_status": E2E,
    "test_clock": INTEGRATION,
    "test_clock_faketime": E2E,
    "test_compose": UNIT,
    "test_compose_cli": E2E,
    "test_compose_console": INTEGRATION,
    "test_compose_daemon": INTEGRATION,  # the daemon in-process on a fake clock
    "test_config": UNIT,
    "test_console_access": INTEGRATION,
    "test_console_actions": INTEGRATION,
    "test_console_act_daemon": E2E,
    "test_console_accounts": E2E,
    "test_console_anteprima": INTEGRATION,
    "test_console_browser": INTEGRATION,
    "test_console_config": UNIT,
    "test_console_daemon": E2E,
    "test_console_metrics": INTEGRATION,
    "test_console_month_cache": INTEGRATION,
    "test_console_pages": INTEGRATION,
    "test_console_published": INTEGRATION,
    "test_console_screens": INTEGRATION,
    "test_control_daemon": E2E,
    "test_control_protocol": UNIT,
    "test_control_server": INTEGRATION,
    "test_crash": E2E,
    "test_crash_actions": E2E,
    "test_dates_shown": UNIT,
    "test_disk_full": E2E,
    "test_e2e": E2E,
    "test_e2e_pages": E2E,
    "test_engagement": INTEGRATION,
    "test_engagement_daemon": E2E,
    "test_expiry": INTEGRATION,
    "test_facts": UNIT,
    "test_fetch": INTEGRATION,
    "test_hand_edited_state": E2E,
    "test_health": UNIT,
    "test_holds": UNIT,
    "test_history_log": INTEGRATION,
    "test_history_months": INTEGRATION,
    "test_hostile": E2E,
    "test_identity": UNIT,
    "test_images": INTEGRATION,
    "test_inline_links": UNIT,
    "test_journal": INTEGRATION,
    "test_links": UNIT,
    "test_memory": INTEGRATION,
    "test_ops": INTEGRATION,
    "test_outbox": INTEGRATION,
    "test_parse": UNIT,
    "test_parser_pool": INTEGRATION,
    "test_poll": INTEGRATION,
    "test_poll_text": INTEGRATION,  # the preview test in it is e2e
    "test_preview": UNIT,
    "test_reload": E2E,
    "test_render": UNIT,
    "test_scale_small": INTEGRATION,
    "test_slots": UNIT,
    "test_urgent_polls": INTEGRATION,  # the daemon test in it is e2e
    "test_schedule": UNIT,
    "test_secrets": INTEGRATION,  # the command and daemon tests in it are e2e
    "test_seen": UNIT,
    "test_selection": INTEGRATION,
    "test_sentences": UNIT,
    "test_shipped_config": E2E,
    "test_state_disk": E2E,
    "test_state_off_loop": INTEGRATION,
    "test_store": INTEGRATION,
    "test_summary": UNIT,
    "test_systemd_notify": E2E,
    "test_template": UNIT,
    "test_text": UNIT,
}

# The fixtures that start a server on loopback or mount a file system: asked for, the test is
# not a unit test.
OUTSIDE_FIXTURES = frozenset({
    "bluesky_server", "facebook_server", "feed_server", "image_host", "image_loader", "mastodon_server",
    "page_server", "page_server_v6",
    "telegram_server", "waha_server", "webhook_server", "whapi_server", "small_fs",
})


def layer_of(item: pytest.Item) -> str:
    """The layer of a collected test: its own layer marker, else its module's in LAYERS.
    Raises pytest.UsageError for a module not in LAYERS, with the line to add."""
    own = [mark.name for mark in item.iter_markers() if mark.name in LAYER_NAMES]
    if own:
        return own[0]
    module = Path(str(item.fspath)).stem
    if module not in LAYERS:
        raise pytest.UsageError(
            f"{module}.py has no test layer: add it to LAYERS in tests/conftest.py "
            f'("{module}": UNIT, INTEGRATION or E2E; see its docstring)')
    return LAYERS[module]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Gives each test its layer's marker (so `-m` selects by layer) before selection runs."""
    for item in items:
        layer = layer_of(item)
        if layer == UNIT and (outside := sorted(OUTSIDE_FIXTURES.intersection(item.fixturenames))):
            raise pytest.UsageError(
                f"{item.nodeid} is in the unit layer but uses {', '.join(outside)}: it is an integration test")
        if not item.get_closest_marker(layer):
            item.add_marker(getattr(pytest.mark, layer))


def _starts_bridge(args: Any) -> bool:
    """Whether a subprocess command line runs the `bridge` command: `python -m bridge ...` or
    `channel-bridge ...`."""
    if isinstance(args, str | bytes | Path):
        return False  # one program name, no arguments (the suite always passes a list)
    words = [str(word) for word in args]
    if words and Path(words[0]).name == "channel-bridge":
        return True
    return any(words[i:i + 2] == ["-m", "bridge"] for i in range(len(words) - 1))


class _NotE2E(subprocess.Popen):  # type: ignore[type-arg]
    """subprocess.Popen for a test outside the e2e layer: refuses to start the bridge command."""

    def __init__(self, args: Any, *rest: Any, **options: Any) -> None:
        if _starts_bridge(args):
            raise AssertionError(
                f"this test starts the bridge command ({' '.join(map(str, args))}) but is not in the e2e "
                "layer: mark it @pytest.mark.e2e or move its module to E2E in tests/conftest.py")
        super().__init__(args, *rest, **options)


class _Unit(subprocess.Popen):  # type: ignore[type-arg]
    """subprocess.Popen for a unit test: refuses every process."""

    def __init__(self, args: Any, *rest: Any, **options: Any) -> None:
        raise AssertionError(f"a unit test started a process ({args!r}): it is an integration test (or e2e, "
                             "for the bridge command); set its layer in tests/conftest.py")


@pytest.fixture(autouse=True)
def _layer_kept(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Holds each test to its layer while it runs (see the module docstring)."""
    layer = layer_of(request.node)
    if layer == INTEGRATION:
        monkeypatch.setattr(subprocess, "Popen", _NotE2E)
    if layer == UNIT:
        monkeypatch.setattr(subprocess, "Popen", _Unit)
        original_connect, original_bind = socket.socket.connect, socket.socket.bind

        def guarded(original: Any) -> Any:
            def call(sock: socket.socket, address: Any, *rest: Any) -> Any:
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    raise AssertionError(f"a unit test opened a network socket ({address!r}): it is an "
                                         "integration test; set its layer in tests/conftest.py")
                return original(sock, address, *rest)
            return call

        monkeypatch.setattr(socket.socket, "connect", guarded(original_connect))
        monkeypatch.setattr(socket.socket, "bind", guarded(original_bind))
    yield
