"""A gateway that answers 2xx with something else: a proxy's login page, `{"status": "ok"}`, an
empty body, JSON of another shape. It is never a post: the delivery stays queued (and in
flight, so a post a proxy forwarded is found or deduplicated), it is retried, it goes out
exactly once when the gateway answers for itself again, and the ops channel is told which URL
answered. Webhooks keep "any 2xx is success".
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from daemons import Daemon, run_bridge
from servers.feeds import FeedServer, rss
from servers.garbage import BODIES, LOGIN_PAGE
from servers.images import PNG, FakeImageHost, image_loader
from servers.mastodon import FakeMastodon
from servers.telegram import FakeTelegram
from servers.waha import FakeWaha
from servers.webhook import FakeWebhook
from servers.whapi import FakeWhapi
from waiting import wait_for

from bridge.channels import (
    Channel,
    GatewayAnswerError,
    MastodonChannel,
    Posted,
    TelegramChannel,
    TransientError,
    WahaChannel,
    WebhookChannel,
    WhapiChannel,
)
from bridge.config import AlertSettings, ChannelConfig, Secret
from bridge.images import ImageLoader
from bridge.item import Alert
from bridge.outbox import DrainResult, drain, retry_delay
from bridge.store import Delivery, Store

ROME = ZoneInfo("Europe/Rome")
NOON = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
CHAT = "120363000000000000@newsletter"
KINDS = ["waha", "telegram", "mastodon", "whapi"]


class Clock:
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


Server = FakeWaha | FakeTelegram | FakeMastodon | FakeWhapi


def channel_config(kind: str, server: Server | _Named, *, images: bool = False) -> ChannelConfig:
    """The `[channels.<kind>]` table pointing at `server`."""
    common: dict[str, Any] = {"name": kind, "type": kind, "timeout": timedelta(seconds=5), "images": images}
    if kind == "waha":
        return ChannelConfig(url=server.url, chat_id=CHAT, **common)
    if kind == "telegram":
        return ChannelConfig(api_url=server.url, chat_id=server.chat_id,
                             token=Secret("env:TELEGRAM_TOKEN", server.token), **common)
    if kind == "mastodon":
        return ChannelConfig(url=server.url, token=Secret("env:MASTODON_TOKEN", server.token), **common)
    return ChannelConfig(url=server.url, chat_id=server.chat_id, token=Secret("env:WHAPI_TOKEN", server.token),
                         **common)


class _Named:
    """Stands in for a fake in `channel_config` when a mock transport answers."""

    def __init__(self, kind: str) -> None:
        self.url = f"http://{kind}.test"
        self.chat_id = "@comune_esempio" if kind == "telegram" else CHAT
        self.token = "123456:TEST-token" if kind == "telegram" else "token-0123456789"


def open_for(kind: str, server: Server | _Named, http: httpx.AsyncClient, images: ImageLoader | None = None,
             verify_window: float = 0.2) -> Channel:
    config = channel_config(kind, server, images=images is not None)
    if kind == "waha":
        return WahaChannel(config, http=http, images=images, verify_window=verify_window)
    if kind == "telegram":
        return TelegramChannel(config, http=http, images=images)
    if kind == "mastodon":
        return MastodonChannel(config, http=http, images=images)
    return WhapiChannel(config, http=http, images=images)


def posts_on(server: Server) -> list[str]:
    """The remote ids of what exists on the platform (WAHA: the visible posts)."""
    if isinstance(server, FakeWaha):
        return [post.id for post in server.visible_posts]
    if isinstance(server, FakeMastodon):
        return [status.id for status in server.statuses]
    if isinstance(server, FakeTelegram):
        return [str(message.message_id) for message in server.messages]
    return [message.id for message in server.messages]


def sent_url(kind: str, server: Server) -> str:
    """The URL a message answers name for a text send (the token masked)."""
    return {
        "waha": f"{server.url}/api/sendText",
        "telegram": f"{server.url}/bot***/sendMessage",
        "mastodon": f"{server.url}/api/v1/statuses",
        "whapi": f"{server.url}/messages/text",
    }[kind]


def delivery(kind: str, n: int = 1) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie", title=f"Avviso {n}", summary="Testo dell'avviso.",
                  link=f"https://www.comune.esempio.it/n/{n}")
    return Delivery(id=f"d{n}", channel=kind, feed_id="notizie", alert=alert, created=NOON, order=float(n))


def run_drain(kind: str, server: Server, store: Store, clock: Clock) -> DrainResult:
    async def go() -> DrainResult:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await drain(open_for(kind, server, http), store=store, alerts=AlertSettings(), timezone=ROME,
                               now=clock, pacing=None)

    return asyncio.run(go())


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(kind: str, request: pytest.FixtureRequest) -> Server:
    fake: Server = request.getfixturevalue(f"{kind}_server")
    return fake


# -- never a post, retried, posted once when the gateway is back ----------------------------


@pytest.mark.parametrize("garbage", list(BODIES))
def test_a_garbage_2xx_is_not_a_post_and_the_alert_goes_once_when_the_gateway_is_back(
    tmp_path: Path, kind: str, server: Server, garbage: str
) -> None:
    body, content_type = BODIES[garbage]
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(kind)])
    clock = Clock(NOON)
    server.garble_next(None, body=body, content_type=content_type)

    first = run_drain(kind, server, store, clock)
    assert (first.sent, first.failed, first.waiting) == (0, 1, 1)
    assert first.wrong_answer is not None
    assert f"{sent_url(kind, server)} answered 200 but not with " in first.wrong_answer
    assert list(store.posts()) == []  # not in the history
    [queued] = store.deliveries(kind)
    assert queued.in_flight  # the next attempt reconciles before it sends again
    assert first.next_due == NOON + retry_delay(1)

    clock.advance(retry_delay(1))
    again = run_drain(kind, server, store, clock)  # still a proxy: retried, still not a post
    assert (again.sent, again.failed, again.waiting) == (0, 1, 1)
    assert list(store.posts()) == [] and posts_on(server) == []

    server.clear_garbage()
    clock.advance(retry_delay(2))
    healed = run_drain(kind, server, store, clock)
    assert (healed.sent, healed.failed, healed.waiting, healed.wrong_answer) == (1, 0, 0, None)
    [posted] = posts_on(server)
    assert [(p.delivery_id, p.remote_id) for p in store.posts()] == [("d1", posted)]
    store.close()


@pytest.mark.parametrize("kind", ["waha", "mastodon"])
def test_a_post_a_proxy_forwarded_is_reconciled_not_sent_twice(tmp_path: Path, kind: str, server: Server) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery(kind)])
    clock = Clock(NOON)
    server.garble_next(1, forward=True)  # the post went out, its answer was a login page

    first = run_drain(kind, server, store, clock)
    assert (first.sent, first.failed, first.waiting) == (0, 1, 1)
    assert len(posts_on(server)) == 1 and list(store.posts()) == []

    clock.advance(retry_delay(1))
    second = run_drain(kind, server, store, clock)
    assert (second.sent, second.waiting) == (1, 0)
    [posted] = posts_on(server)  # WAHA read the chat back, Mastodon kept the Idempotency-Key
    [record] = store.posts()
    assert record.remote_id is not None and record.remote_id.endswith(posted)
    store.close()


def test_a_proxy_in_front_of_every_waha_route_stops_before_the_send(tmp_path: Path, waha_server: FakeWaha) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery("waha")])
    clock = Clock(NOON)
    waha_server.garble_next(None, every_request=True)
    first = run_drain("waha", waha_server, store, clock)
    assert first.wrong_answer is not None
    assert f"{waha_server.url}/api/default/new-message-id answered 200 but not with a WAHA message id" in (
        first.wrong_answer)
    assert [r.path for r in waha_server.requests] == ["/api/default/new-message-id"]  # nothing was sent
    assert not store.deliveries("waha")[0].in_flight
    waha_server.clear_garbage()
    clock.advance(retry_delay(1))
    assert run_drain("waha", waha_server, store, clock).sent == 1
    assert len(waha_server.posts) == 1
    store.close()


def test_a_garbage_read_back_after_a_forwarded_waha_post_keeps_it_in_flight(
    tmp_path: Path, waha_server: FakeWaha
) -> None:
    store = Store.open(tmp_path)
    store.add_deliveries([delivery("waha")])
    clock = Clock(NOON)
    waha_server.garble_next(1, forward=True)
    run_drain("waha", waha_server, store, clock)
    waha_server.garble_next(None, every_request=True)  # now the read-back is a login page too
    clock.advance(retry_delay(1))
    blind = run_drain("waha", waha_server, store, clock)
    assert blind.wrong_answer is not None and "/messages answered 200 but not with a list of WAHA messages" in (
        blind.wrong_answer)
    assert store.deliveries("waha")[0].in_flight and len(waha_server.posts) == 1
    waha_server.clear_garbage()
    clock.advance(retry_delay(2))
    assert run_drain("waha", waha_server, store, clock).sent == 1
    assert len(waha_server.posts) == 1  # found by read-back, not sent again
    store.close()


@pytest.mark.parametrize("kind", ["waha", "telegram"])
def test_a_garbage_answer_to_an_image_post_does_not_fall_back_to_a_text_post(
    kind: str, server: Server, image_host: FakeImageHost
) -> None:
    alert = Alert(feed_id="n", feed_name="N", title="Avviso", summary="Testo.",
                  link="https://www.comune.esempio.it/n/1", image_url=image_host.serve("/foto.png", PNG))
    server.garble_next(1, forward=True)

    async def go() -> Posted:
        loader = image_loader()
        async with httpx.AsyncClient(trust_env=False) as http:
            try:
                return await open_for(kind, server, http, images=loader).send(alert, delivery_id="d-1")
            finally:
                await loader.aclose()

    with pytest.raises(GatewayAnswerError):
        asyncio.run(go())
    assert len(posts_on(server)) == 1  # the image post a proxy forwarded, and no text post after it
    assert image_host.hits("/foto.png") == 1


# -- what the error says -----------------------------------------------------------------------


def test_the_error_names_the_url_what_came_and_what_to_check(kind: str, server: Server) -> None:
    server.garble_next(1)
    error = _send_error(kind, server)
    key = "api_url" if kind == "telegram" else "url"
    assert str(error).startswith(f"{kind}: {sent_url(kind, server)} answered 200 but not with ")
    assert str(error).endswith(
        f'(an HTML page "Accesso alla rete comunale"): is {key} of [channels.{kind}] the gateway\'s own '
        "address, not a proxy's login page?"
    )
    assert "stays queued" in error.hint and isinstance(error, TransientError)
    if isinstance(server, FakeTelegram):
        assert server.token not in str(error) + error.hint


def test_a_json_answer_is_quoted_short_and_scrubbed(telegram_server: FakeTelegram) -> None:
    echo = json.dumps({"status": "ok", "echo": telegram_server.token, "pad": "x" * 400}).encode()
    telegram_server.garble_next(1, body=echo, content_type="application/json")
    error = _send_error("telegram", telegram_server)
    assert "(application/json: {\"status\": \"ok\", \"echo\": \"***\"" in str(error)
    assert telegram_server.token not in str(error)
    assert len(str(error)) < 400


def _send_error(kind: str, server: Server) -> GatewayAnswerError:
    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            await open_for(kind, server, http).send(delivery(kind).alert, delivery_id="d-1")

    with pytest.raises(GatewayAnswerError) as caught:
        asyncio.run(go())
    return caught.value


# Bodies with a 2xx that look like the platform's but are not its success answer.
NEAR_MISSES = {
    "waha": [{"key": {}}, {"key": {"id": ""}}, {"id": {"id": "3EB0"}}, {"id": 5}, {"message": "sent"}, []],
    "telegram": [{"ok": True}, {"ok": True, "result": True}, {"ok": True, "result": {"message_id": "12"}},
                 {"ok": True, "result": {"message_id": True}}, {"result": {"message_id": 12}}],
    "mastodon": [{"id": 110000000000000001}, {"id": ""}, {"status": "ok"}, [{"id": "1"}]],
    "whapi": [{"sent": True}, {"message": {"id": "wamid.1"}}, {"sent": "true", "message": {"id": "wamid.1"}},
              {"sent": True, "message": {"id": ""}}],
}


@pytest.mark.parametrize(("kind", "body"), [(k, b) for k, bodies in NEAR_MISSES.items() for b in bodies])
def test_only_the_platforms_success_shape_is_a_post(kind: str, body: Any) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201 if kind == "waha" else 200, json=body)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            channel = open_for(kind, _Named(kind), http, verify_window=0)
            token = "3EB0FF" if kind == "waha" else None  # past prepare: the send's answer is under test
            await channel.send(delivery(kind).alert, delivery_id="d-1", token=token)

    with pytest.raises(GatewayAnswerError):
        asyncio.run(go())


# -- webhooks keep "any 2xx" -------------------------------------------------------------------


@pytest.mark.parametrize("garbage", list(BODIES))
def test_a_webhook_takes_any_2xx_whatever_the_body(tmp_path: Path, garbage: str) -> None:
    body, content_type = BODIES[garbage]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": content_type})

    store = Store.open(tmp_path)
    store.add_deliveries([delivery("hook")])

    async def go() -> DrainResult:
        config = ChannelConfig(name="hook", type="webhook", url="http://hook.test/x", timeout=timedelta(seconds=5))
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            return await drain(WebhookChannel(config, http=http), store=store, alerts=AlertSettings(),
                               timezone=ROME, now=Clock(NOON), pacing=None)

    result = asyncio.run(go())
    assert (result.sent, result.failed, result.wrong_answer) == (1, 0, None)
    assert [p.delivery_id for p in store.posts()] == ["d1"]
    store.close()


# -- the real daemon: the ops channel is told, nothing is lost or doubled ---------------------

NOW = datetime.now(UTC).replace(microsecond=0)


def news(n: int, *, hours_ago: float) -> dict[str, Any]:
    return {
        "title": f"Avviso numero {n}: chiusura temporanea di via Roma",
        "link": f"https://www.comune.esempio.it/novita/avviso-{n}/",
        "guid": f"https://www.comune.esempio.it/?p={n}",
        "description": f"Da lunedì via Roma resta chiusa per lavori alla rete idrica, cantiere numero {n}.",
        "pubDate": NOW - timedelta(hours=hours_ago),
    }


@pytest.mark.e2e
@pytest.mark.parametrize("forwarded", [False, True], ids=["stopped-by-the-proxy", "forwarded-by-the-proxy"])
def test_the_daemon_reports_a_login_page_to_ops_and_posts_once_when_waha_is_back(
    tmp_path: Path, feed_server: FeedServer, waha_server: FakeWaha, webhook_server: FakeWebhook, forwarded: bool
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[bridge]
state_dir = "state"

[defaults]
interval = "1s"
channels = ["whatsapp"]
link_domains = ["comune.esempio.it"]

[[feeds]]
id = "notizie"
name = "Notizie dal Comune"
url = "{feed_server.url('/feed.xml')}"

[channels.whatsapp]
type = "waha"
url = "{waha_server.url}"
chat_id = "{CHAT}"

[channels.ufficio]
type = "webhook"
url = "{webhook_server.url}/ops"

[ops]
channel = "ufficio"
""", encoding="utf-8")
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_bridge(config, *args)

    feed_server.set_feed("/feed.xml", rss([news(1, hours_ago=5)]))
    assert run("run", "--once").returncode == 0  # the first poll posts nothing
    waha_server.garble_next(None, forward=forwarded)  # a login page answers every send
    feed_server.set_feed("/feed.xml", rss([news(2, hours_ago=0), news(1, hours_ago=5)]))
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        assert wait_for(lambda: len(webhook_server.deliveries) >= 1), "the ops channel was never told"
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log()
    ops = json.loads(webhook_server.deliveries[0].body)
    assert ops["title"] == "channel-bridge: channel whatsapp answers are not posts"
    assert f"{waha_server.url}/api/sendText answered 200 but not with a WAHA message" in ops["summary"]
    assert "is url of [channels.whatsapp] the gateway's own address, not a proxy's login page?" in ops["summary"]
    assert "stays queued" in ops["summary"]
    status = {c["name"]: c for c in json.loads(run("status", "--json").stdout)["channels"]}
    assert status["whatsapp"]["queue"] == 1
    # The ops alert went through the outbox: it is in the history, on the ops channel; no alert
    # of the feed is recorded as posted.
    [told] = json.loads(run("history", "--format", "json").stdout)
    assert (told["channel"], told["feed_id"], told["title"]) == (
        "ufficio", "ops", "channel-bridge: channel whatsapp answers are not posts")
    assert len(waha_server.posts) == (1 if forwarded else 0)

    waha_server.clear_garbage()
    again = run("run", "--once")
    assert again.returncode == 0, again.stderr
    assert [p.text.splitlines()[0] for p in waha_server.posts] == ["*Avviso numero 2: chiusura temporanea di via Roma*"]
    assert ("already posted before the restart" in again.stderr) is forwarded
    [record] = [r for r in json.loads(run("history", "--format", "json").stdout) if r["channel"] == "whatsapp"]
    assert record["remote_id"].endswith(waha_server.posts[0].id)
    status = {c["name"]: c for c in json.loads(run("status", "--json").stdout)["channels"]}
    assert (status["whatsapp"]["queue"], status["ufficio"]["queue"]) == (0, 0)
    assert LOGIN_PAGE.decode() not in again.stderr  # the page itself is never logged whole

