"""The console's `/metrics`: the facts of `status` as Prometheus metrics, read by IT's
monitoring with the configured token, or from this machine when there is none (never through
a proxy); and no secret, error text or password hash among them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from console.harness import NOW, PASSWORD, FakeClockDaemon, ServedConsole, delivery, served, write_config
from prometheus_client.parser import text_string_to_metric_families

from bridge.config import load_config
from bridge.console.accounts import AccountBook
from bridge.console.metrics import metrics_allowed
from bridge.console.server import ROUTES
from bridge.store import Store

METRICS_ROUTES = [route.path for route in ROUTES if route.access == "metrics"]
TOKEN_CONFIG = 'metrics_token = "env:CB_METRICS_TOKEN"\n'
SECRETS = {"WAHA_API_KEY": "waha-key-5f0c1d9e7a", "TELEGRAM_BOT_TOKEN": "123456:telegram-secret-9b8a",
           "CB_METRICS_TOKEN": "metrics-token-3c2d1e0f"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def with_token(tmp_path: Path) -> Iterator[ServedConsole]:
    """A console whose config resolves its secrets (the channels' and the metrics token)."""
    write_config(tmp_path, TOKEN_CONFIG)
    config = load_config(tmp_path / "config.toml", env=SECRETS)
    store = Store.open(config.bridge.state_dir)
    AccountBook(config.bridge.state_dir).add("m.rossi", "viewer", PASSWORD)
    site = ServedConsole(FakeClockDaemon(config, store))
    try:
        yield site
    finally:
        site.close()
        store.close()


def test_metrics_tell_the_facts_of_status(tmp_path: Path) -> None:
    queued = [delivery("d1", "whatsapp", "Mercato", order=1.0), delivery("d2", "whatsapp", "Lavori", order=2.0),
              delivery("d3", "whatsapp", "Riepilogo", order=3.0, held=True),
              delivery("d4", "telegram", "Bando", state="failed", last_error="expired")]
    for site in served(tmp_path, queued):
        store = site.daemon.store
        store.save_feed(dataclasses.replace(
            store.feed_state("notizie"), last_poll=NOW, last_success=NOW - timedelta(minutes=90), failures=4,
            failing_since=NOW - timedelta(hours=2), last_error="HTTP 503"))
        store.set_channel_pause("telegram", "401 Unauthorized")
        with site.client() as client:
            answer = client.get("/metrics")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=")
        got = samples(answer.text)
        assert got[("channel_bridge_feeds", (("health", "failing"),))] == 1
        assert got[("channel_bridge_feeds", (("health", "ok"),))] == 0
        assert got[("channel_bridge_feeds_failing", ())] == 1
        assert got[("channel_bridge_feed_last_success_age_seconds", (("feed", "notizie"),))] == 90 * 60
        assert got[("channel_bridge_last_successful_poll_age_seconds", ())] == 90 * 60
        assert got[("channel_bridge_queue_length", (("channel", "whatsapp"),))] == 3
        assert got[("channel_bridge_queue_held", (("channel", "whatsapp"),))] == 1
        assert got[("channel_bridge_queue_failed", (("channel", "telegram"),))] == 1
        assert got[("channel_bridge_channel_paused", (("channel", "telegram"),))] == 1
        assert got[("channel_bridge_channel_paused", (("channel", "whatsapp"),))] == 0
        assert got[("channel_bridge_channels_paused", ())] == 1
        assert got[("channel_bridge_posts_last_24h", (("channel", "whatsapp"),))] == 0


def test_metrics_through_a_proxy_are_refused_without_a_token(tmp_path: Path) -> None:
    assert METRICS_ROUTES == ["/metrics"]
    for site in served(tmp_path):
        with site.client() as client:
            for path in METRICS_ROUTES:
                for header in ("X-Forwarded-For", "X-Forwarded-Proto", "Forwarded", "X-Real-IP"):
                    answer = client.get(path, headers={header: "192.0.2.7"})
                    assert answer.status_code == 403, (path, header)
                    assert "channel_bridge" not in answer.text


def test_with_a_token_metrics_need_it_even_from_this_machine(tmp_path: Path) -> None:
    for site in with_token(tmp_path):
        with site.client() as client:
            assert client.get("/metrics").status_code == 403
            assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
            assert client.get("/metrics", headers={"Authorization": SECRETS["CB_METRICS_TOKEN"]}).status_code == 403
            good = {"Authorization": f"Bearer {SECRETS['CB_METRICS_TOKEN']}", "X-Forwarded-For": "192.0.2.7"}
            answer = client.get("/metrics", headers=good)
            assert answer.status_code == 200 and "channel_bridge_queue_length" in answer.text


def test_an_unresolved_token_lets_nobody_in(tmp_path: Path) -> None:
    for site in served(tmp_path, extra=TOKEN_CONFIG):  # secrets not read: the token is empty
        with site.client() as client:
            assert client.get("/metrics").status_code == 403
            assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 403
        token = site.daemon.config.console.metrics_token
        assert token is not None and token.value == ""
        assert not metrics_allowed(token, "127.0.0.1", {"Authorization": "Bearer "})
        assert not metrics_allowed(token, "127.0.0.1", {"Authorization": "Bearer"})


def test_no_secret_reaches_the_metrics(tmp_path: Path) -> None:
    for site in with_token(tmp_path):
        store = site.daemon.store
        store.add_deliveries([delivery("d1", "whatsapp", "Titolo riservato", order=1.0, attempts=1,
                                       last_error=f"HTTP 401 for key {SECRETS['WAHA_API_KEY']}")])
        store.set_channel_pause("telegram", f"token {SECRETS['TELEGRAM_BOT_TOKEN']} refused")
        session = site.login()
        cookie = session.cookies["cb_session"]
        password_hash = AccountBook(site.daemon.config.bridge.state_dir).get("m.rossi").password_hash  # type: ignore[union-attr]
        answer = httpx.get(f"{site.url}/metrics", headers={"Authorization": f"Bearer {SECRETS['CB_METRICS_TOKEN']}"})
        assert answer.status_code == 200
        for secret in [*SECRETS.values(), cookie, password_hash, PASSWORD, "Titolo riservato", "HTTP 401", "refused"]:
            assert secret not in answer.text, secret


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1"])
def test_loopback_peers_without_proxy_headers_may_read(peer: str) -> None:
    assert metrics_allowed(None, peer, {})
    assert not metrics_allowed(None, "192.0.2.7", {})
    assert not metrics_allowed(None, None, {})
    assert not metrics_allowed(None, peer, {"X-Forwarded-For": "192.0.2.7"})
