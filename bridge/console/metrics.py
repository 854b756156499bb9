"""The bridge's condition as Prometheus metrics, for IT's monitoring (`GET /metrics`).

The facts are those of `status` (`bridge.status.status_report`), taken afresh at each scrape
from the daemon's in-memory store: nothing is counted twice, nothing drifts from the page.
Only numbers leave: labels are the feed ids and channel names of the config, never an error
text, a pause reason, a title or a secret.

Who may read them is `metrics_allowed`'s decision: with `[console] metrics_token`, a request
with that bearer token; without one, a request from this machine that did not come through a
proxy (a reverse proxy on the same machine forwards the office's requests from loopback too).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from ipaddress import ip_address

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.config import Config, Secret
from bridge.status import status_report
from bridge.store import Store

PREFIX = "channel_bridge"
HEALTHS = ("new", "ok", "error", "failing", "stale")
FAILING = ("error", "failing")  # a feed whose last poll failed, or failing for over an hour
POSTS_WINDOW = timedelta(hours=24)
# Headers a reverse proxy adds: a request that has one came from elsewhere, whatever its peer.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP")


def families(config: Config, store: Store, now: datetime) -> list[Metric]:
    """The metrics at `now`: feeds per health and failing, each feed's age of its last
    successful poll, per channel its queue, held, failed, paused, posts of the last 24 hours
    and time of its last post."""
    report = status_report(config, store, now=now)
    feeds = report["feeds"]
    by_health = GaugeMetricFamily(f"{PREFIX}_feeds", "Configured feeds per health (as status shows it)",
                                  labels=["health"])
    for health in HEALTHS:
        by_health.add_metric([health], sum(1 for feed in feeds if feed["health"] == health))
    failing = GaugeMetricFamily(f"{PREFIX}_feeds_failing", "Feeds whose last poll failed (health error or failing)",
                                value=sum(1 for feed in feeds if feed["health"] in FAILING))
    age = GaugeMetricFamily(f"{PREFIX}_feed_last_success_age_seconds",
                            "Seconds since the feed's last successful poll (absent before the first)", labels=["feed"])
    newest: float | None = None
    for feed in feeds:
        if feed["last_success"]:
            seconds = max(0.0, (now - datetime.fromisoformat(feed["last_success"])).total_seconds())
            age.add_metric([feed["id"]], seconds)
            newest = seconds if newest is None else min(newest, seconds)
    bridge_age = GaugeMetricFamily(f"{PREFIX}_last_successful_poll_age_seconds",
                                   "Seconds since any feed was last polled successfully (NaN before the first)",
                                   value=float("nan") if newest is None else newest)
    queue = GaugeMetricFamily(f"{PREFIX}_queue_length", "Alerts waiting to be posted", labels=["channel"])
    held = GaugeMetricFamily(f"{PREFIX}_queue_held", "Alerts held by max_per_day for the digest", labels=["channel"])
    failed = GaugeMetricFamily(f"{PREFIX}_queue_failed", "Alerts given up (rejected or expired)", labels=["channel"])
    paused = GaugeMetricFamily(f"{PREFIX}_channel_paused", "1 while the channel is paused (down)", labels=["channel"])
    posts = GaugeMetricFamily(f"{PREFIX}_posts_last_24h", "Posts in the last 24 hours", labels=["channel"])
    last_post = GaugeMetricFamily(f"{PREFIX}_last_post_timestamp_seconds", "Unix time of the channel's last post",
                                  labels=["channel"])
    for channel in report["channels"]:
        name = [channel["name"]]
        queue.add_metric(name, channel["queue"])
        held.add_metric(name, channel["held"])
        failed.add_metric(name, channel["failed"])
        paused.add_metric(name, 1 if channel["paused"] else 0)
        posts.add_metric(name, store.posts_since(channel["name"], now - POSTS_WINDOW))
        if channel["last_post"]:
            last_post.add_metric(name, datetime.fromisoformat(channel["last_post"]).timestamp())
    paused_count = GaugeMetricFamily(f"{PREFIX}_channels_paused", "Channels paused",
                                     value=sum(1 for channel in report["channels"] if channel["paused"]))
    return [by_health, failing, age, bridge_age, queue, held, failed, paused, paused_count, posts, last_post]


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return iter(self.metrics)


def exposition(config: Config, store: Store, now: datetime) -> bytes:
    """`families` in Prometheus's text format (a registry of its own: no process-wide state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(config, store, now)))
    return generate_latest(registry)


def metrics_allowed(token: Secret | None, peer: str | None, headers: Mapping[str, str]) -> bool:
    """May this request read the metrics? With `token`: only with `Authorization: Bearer
    TOKEN` (an unresolved, empty token lets nobody in). Without: only a loopback peer whose
    request carries none of a proxy's headers."""
    if token is not None:
        given = headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        return bool(token.value) and scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.value.encode())
    if any(name in headers for name in PROXY_HEADERS):
        return False
    return _loopback(peer)


def _loopback(peer: str | None) -> bool:
    try:
        return peer is not None and ip_address(peer).is_loopback
    except ValueError:  # a Unix socket's peer, or none
        return False

