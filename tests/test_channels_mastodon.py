"""The Mastodon channel against a fake instance: statuses, idempotency, media, errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from servers.images import PNG, image_loader

from bridge import render
from bridge.channels import (
    ChannelDownError,
    ChannelError,
    MastodonChannel,
    MessageRejected,
    Posted,
    TransientError,
)
from bridge.channels.mastodon import _rate_limit_wait
from bridge.config import AlertSettings, ChannelConfig, Secret
from bridge.images import ImageLoader
from bridge.item import Alert
from bridge.outbox import DrainResult, drain
from bridge.preview import render_for
from bridge.store import Delivery, Store

if TYPE_CHECKING:
    from servers.images import FakeImageHost
    from servers.mastodon import FakeMastodon

TOKEN = "mastodon-test-token-0123456789"
LINK = "https://www.comune.example.it/notizie/2026/03/01/chiusura-temporanea-di-via-roma-per-lavori"

ALERT = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Chiusura temporanea di via Roma",
    summary="Dal 3 al 5 marzo via Roma è chiusa al traffico per lavori alla rete idrica.",
    link=LINK,
    published=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
)


def config(url: str, **overrides: Any) -> ChannelConfig:
    values: dict[str, Any] = {
        "name": "mastodon",
        "type": "mastodon",
        "url": url,
        "token": Secret("env:MASTODON_TOKEN", TOKEN),
        "visibility": "unlisted",
        "language": "it",
        "timeout": timedelta(seconds=5),
    }
    values.update(overrides)
    return ChannelConfig(**values)


def run(cfg: ChannelConfig, action: Callable[[MastodonChannel], Any], *, images: ImageLoader | None = None,
        transport: httpx.AsyncBaseTransport | None = None, media_wait: float = 0.3) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False, transport=transport) as http:
            try:
                return await action(MastodonChannel(cfg, http=http, images=images, media_wait=media_wait))
            finally:
                if images is not None:
                    await images.aclose()

    return asyncio.run(go())


def send(cfg: ChannelConfig, alert: Alert = ALERT, *, delivery_id: str = "d-1", plain: bool = False,
         images: ImageLoader | None = None, transport: httpx.AsyncBaseTransport | None = None,
         media_wait: float = 0.3) -> Posted:
    posted: Posted = run(cfg, lambda ch: ch.send(alert, delivery_id=delivery_id, plain=plain), images=images,
                         transport=transport, media_wait=media_wait)
    return posted


def drain_one(tmp_path: Path, server: FakeMastodon, alert: Alert, cfg: ChannelConfig) -> tuple[DrainResult, Store]:
    """Queue `alert` for the channel and drain it once, rejections and plain retry included."""
    store = Store.open(tmp_path)
    moment = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    store.add_deliveries([Delivery(id="d1", channel=cfg.name, feed_id="n", alert=alert, created=moment, order=1.0)])

    async def go() -> DrainResult:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await drain(MastodonChannel(cfg, http=http), store=store, alerts=AlertSettings(),
                               timezone=ZoneInfo("Europe/Rome"), now=lambda: moment, pacing=None)

    return asyncio.run(go()), store


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_no_token(error: ChannelError) -> None:
    for text in (str(error), repr(error), error.hint):
        assert TOKEN not in text


# -- success and idempotency -----------------------------------------------------------------


def test_send_posts_a_status_with_visibility_language_and_key(mastodon_server: FakeMastodon) -> None:
    posted = send(config(mastodon_server.url))
    [status] = mastodon_server.statuses
    assert posted == Posted(remote_id=status.id, verified=None)
    assert status.text == render.plain(ALERT)
    assert (status.visibility, status.language) == ("unlisted", "it")
    assert status.idempotency_key == "d-1"
    [request] = mastodon_server.requests
    assert request.header("Authorization") == f"Bearer {TOKEN}"
    assert request.json == {"status": render.plain(ALERT), "visibility": "unlisted", "language": "it"}


def test_a_resend_within_the_hour_returns_the_same_status(mastodon_server: FakeMastodon) -> None:
    first = send(config(mastodon_server.url))
    mastodon_server.advance(3599)
    again = send(config(mastodon_server.url))
    assert again == first
    assert len(mastodon_server.statuses) == 1


def test_a_resend_after_the_hour_posts_again(mastodon_server: FakeMastodon) -> None:
    # The documented limit of the guarantee: a crash recovered after an hour may double.
    send(config(mastodon_server.url))
    mastodon_server.advance(3601)
    send(config(mastodon_server.url))
    assert len(mastodon_server.statuses) == 2


def test_different_deliveries_are_different_statuses(mastodon_server: FakeMastodon) -> None:
    send(config(mastodon_server.url), delivery_id="d-1")
    send(config(mastodon_server.url), delivery_id="d-2")
    assert [s.idempotency_key for s in mastodon_server.statuses] == ["d-1", "d-2"]


def test_a_long_alert_fits_500_with_the_link_counted_as_23(mastodon_server: FakeMastodon) -> None:
    long_alert = Alert(feed_id="n", feed_name="N", title="Titolo", summary="parola " * 200, link=LINK)
    send(config(mastodon_server.url), long_alert)
    [status] = mastodon_server.statuses  # the fake counts like Mastodon and would answer 422
    assert status.text.endswith("…\n\n" + LINK)
    assert render.mastodon_length(status.text) <= 500
    assert len(status.text) > 500  # the long link costs only 23


SHORT_LINK = "https://c.it/x"  # 14 characters: Mastodon counts it as 23


def alert_of_length(length: int, link: str = SHORT_LINK) -> Alert:
    """An alert whose plain text is exactly `length` characters (as `[alerts] max_length` fits)."""
    base = Alert(feed_id="n", feed_name="N", title="Chiusura di via Roma", summary="", link=link)
    room = length - len(render.plain(base)) - 2  # the blank line before the summary
    summary = ("Lavori alla rete idrica. " * 40)[:room - 1].rstrip() + "."
    summary += "." * (room - len(summary))
    fitted = Alert(feed_id="n", feed_name="N", title=base.title, summary=summary, link=link)
    assert len(render.plain(fitted)) == length
    return fitted


def test_the_fake_counts_a_short_link_as_23_and_refuses_past_the_limit(mastodon_server: FakeMastodon) -> None:
    # 500 characters by length, 509 as Mastodon counts: the instance answers 422.
    text = render.plain(alert_of_length(500))
    with pytest.raises(MessageRejected, match="character limit of 500"):
        run(config(mastodon_server.url), lambda ch: ch._post_status({"status": text}, "d-1"))
    assert mastodon_server.statuses == []


def test_an_alert_of_500_characters_with_a_short_link_is_fitted_as_mastodon_counts(
    mastodon_server: FakeMastodon,
) -> None:
    alert = alert_of_length(500)
    send(config(mastodon_server.url), alert)
    [status] = mastodon_server.statuses  # posted, not refused with 422
    assert status.text.endswith("…\n\n" + SHORT_LINK)
    assert render.mastodon_length(status.text) <= 500
    assert len(status.text) <= 500 - (23 - len(SHORT_LINK))


def test_through_the_outbox_the_short_link_alert_is_posted_at_the_first_try(
    tmp_path: Path, mastodon_server: FakeMastodon
) -> None:
    result, store = drain_one(tmp_path, mastodon_server, alert_of_length(500), config(mastodon_server.url))
    assert (result.sent, result.failed, result.given_up) == (1, 0, 0)
    assert [p.remote_id for p in store.posts()] == [s.id for s in mastodon_server.statuses]
    assert store.deliveries("mastodon", state="failed") == []
    store.close()


def test_a_status_refused_as_too_long_is_refitted_before_the_plain_retry(
    tmp_path: Path, mastodon_server: FakeMastodon
) -> None:
    # A server that counts every character of a URL refuses what fits Mastodon's count; the
    # plain retry is fitted with the strict count, which fits any way of counting.
    mastodon_server.url_length = None
    alert = alert_of_length(600, LINK)
    result, store = drain_one(tmp_path, mastodon_server, alert, config(mastodon_server.url))
    assert (result.sent, result.failed, result.given_up) == (1, 0, 0)
    [first, retry] = [r.json["status"] for r in mastodon_server.requests if r.path == "/api/v1/statuses"]
    [status] = mastodon_server.statuses
    assert status.text == retry != first
    assert render.mastodon_length(first) <= 500 < len(first)
    assert len(retry) <= 500 and retry.endswith("…\n\n" + LINK)
    store.close()


def test_a_long_link_still_counts_23_so_more_of_the_summary_fits(mastodon_server: FakeMastodon) -> None:
    alert = alert_of_length(700, LINK)  # a 90-character link
    send(config(mastodon_server.url), alert)
    [status] = mastodon_server.statuses
    assert render.mastodon_length(status.text) <= 500
    assert len(status.text) > 500 + (len(LINK) - 23) - 10  # about the 67 characters the link saves


def test_a_remote_mention_counts_as_the_user_only(mastodon_server: FakeMastodon) -> None:
    mention = "@protezionecivile@social.comune.example.it"
    alert = Alert(feed_id="n", feed_name="N", title="Allerta meteo", link=SHORT_LINK,
                  summary=f"Seguite {mention} per gli aggiornamenti. " + "Pioggia forte in arrivo. " * 30)
    send(config(mastodon_server.url), alert)
    [status] = mastodon_server.statuses
    assert mention in status.text and render.mastodon_length(status.text) <= 500
    assert len(status.text) > 500 - (23 - len(SHORT_LINK))  # the mention's domain is not counted


@pytest.mark.parametrize("max_length", [None, 300])
def test_preview_shows_the_status_the_channel_posts(mastodon_server: FakeMastodon, max_length: int | None) -> None:
    alert = alert_of_length(700)
    cfg = config(mastodon_server.url, max_length=max_length)
    send(cfg, alert)
    [status] = mastodon_server.statuses
    assert render_for(cfg, alert) == status.text  # `preview` counts as the channel does
    assert render.mastodon_length(status.text) <= (max_length or 500) < render.mastodon_length(status.text) + 30


def test_max_length_of_the_channel_sets_the_limit(mastodon_server: FakeMastodon) -> None:
    mastodon_server.max_characters = 1000
    long_alert = Alert(feed_id="n", feed_name="N", title="Titolo", summary="parola " * 200, link=LINK)
    send(config(mastodon_server.url, max_length=900), long_alert)
    [status] = mastodon_server.statuses
    assert 800 < render.mastodon_length(status.text) <= 900


def test_protocol_extras(mastodon_server: FakeMastodon) -> None:
    cfg = config(mastodon_server.url)
    assert run(cfg, lambda ch: _value(ch.guarantee)) == "exactly-once"
    assert run(cfg, lambda ch: ch.prepare("d-1")) is None
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token=None)) is None
    assert mastodon_server.requests == []


async def _value(value: Any) -> Any:
    return value


# -- images --------------------------------------------------------------------------------


def with_image(url: str) -> Alert:
    return Alert(feed_id=ALERT.feed_id, feed_name=ALERT.feed_name, title=ALERT.title, summary=ALERT.summary,
                 link=ALERT.link, image_url=url)


def test_an_image_is_uploaded_and_attached(mastodon_server: FakeMastodon, image_host: FakeImageHost) -> None:
    send(config(mastodon_server.url, images=True), with_image(image_host.serve("/a.png")), images=image_loader())
    [media] = mastodon_server.media
    [status] = mastodon_server.statuses
    assert (media.data, media.content_type, media.filename) == (PNG, "image/png", "a.png")
    assert media.description == ALERT.title  # alt text
    assert status.media_ids == (media.id,)
    assert status.text == render.plain(ALERT)


def test_an_image_still_processing_is_waited_for(mastodon_server: FakeMastodon, image_host: FakeImageHost) -> None:
    mastodon_server.processing_polls = 1
    send(config(mastodon_server.url, images=True), with_image(image_host.serve("/a.png")), images=image_loader())
    [status] = mastodon_server.statuses
    assert len(status.media_ids) == 1


def test_an_image_processing_too_long_posts_text(mastodon_server: FakeMastodon, image_host: FakeImageHost) -> None:
    mastodon_server.processing_polls = 100
    send(config(mastodon_server.url, images=True), with_image(image_host.serve("/a.png")), images=image_loader(),
         media_wait=0.1)
    [status] = mastodon_server.statuses
    assert status.media_ids == ()


@pytest.mark.parametrize("problem", ["http", "missing", "not an image", "upload refused"])
def test_image_problems_fall_back_to_text(
    mastodon_server: FakeMastodon, image_host: FakeImageHost, problem: str
) -> None:
    url = {
        "http": f"http://127.0.0.1:{image_host.port}/a.png",
        "missing": image_host.url + "/missing.png",
        "not an image": image_host.serve("/p", b"<html></html>", "text/html"),
        "upload refused": image_host.serve("/ok.png"),
    }[problem]
    mastodon_server.reject_media = problem == "upload refused"
    send(config(mastodon_server.url, images=True), with_image(url), images=image_loader())
    [status] = mastodon_server.statuses
    assert status.media_ids == ()
    assert status.text == render.plain(ALERT)


def test_plain_never_uploads(mastodon_server: FakeMastodon, image_host: FakeImageHost) -> None:
    send(config(mastodon_server.url, images=True), with_image(image_host.serve("/a.png")), images=image_loader(),
         plain=True)
    assert mastodon_server.media == []
    assert image_host.requests == []


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [401, 403])
def test_refused_token_is_channel_down(mastodon_server: FakeMastodon, code: int) -> None:
    mastodon_server.fail_next(code)
    with pytest.raises(ChannelDownError) as caught:
        send(config(mastodon_server.url))
    assert str(code) in str(caught.value)
    assert "env:MASTODON_TOKEN" in caught.value.hint
    assert_no_token(caught.value)


def test_wrong_token_is_channel_down(mastodon_server: FakeMastodon) -> None:
    mastodon_server.token = "other"
    with pytest.raises(ChannelDownError, match="access token is invalid"):
        send(config(mastodon_server.url))


def test_not_mastodon_is_channel_down(mastodon_server: FakeMastodon) -> None:
    with pytest.raises(ChannelDownError) as caught:
        send(config(mastodon_server.url + "/not-here"))
    assert "404" in str(caught.value)
    assert "url" in caught.value.hint


def test_validation_failure_rejects_the_message(mastodon_server: FakeMastodon) -> None:
    mastodon_server.fail_next(422)
    with pytest.raises(MessageRejected, match="character limit"):
        send(config(mastodon_server.url))
    # The rejected attempt did not store the key: the retry in plain form goes through.
    send(config(mastodon_server.url), plain=True)
    assert len(mastodon_server.statuses) == 1


def test_rate_limit_with_retry_after(mastodon_server: FakeMastodon) -> None:
    mastodon_server.fail_next(429, retry_after=42)
    with pytest.raises(TransientError) as caught:
        send(config(mastodon_server.url))
    assert caught.value.retry_after == 42


def test_rate_limit_reset_time_when_there_is_no_retry_after() -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    response = httpx.Response(429, headers={"X-RateLimit-Reset": "2026-03-01T09:05:00.000Z"})
    assert _rate_limit_wait(response, now=now) == 300
    assert _rate_limit_wait(httpx.Response(429, headers={"X-RateLimit-Reset": "soon"}), now=now) is None
    assert _rate_limit_wait(httpx.Response(429), now=now) is None


def test_rate_limit_reset_from_the_fake(mastodon_server: FakeMastodon) -> None:
    mastodon_server.fail_next(429, reset_in=60)
    with pytest.raises(TransientError) as caught:
        send(config(mastodon_server.url))
    assert caught.value.retry_after is not None and 50 < caught.value.retry_after <= 60


@pytest.mark.parametrize("code", [500, 503])
def test_server_errors_are_transient(mastodon_server: FakeMastodon, code: int) -> None:
    mastodon_server.fail_next(code)
    with pytest.raises(TransientError):
        send(config(mastodon_server.url))


def test_connection_refused_is_transient() -> None:
    with pytest.raises(TransientError, match="cannot reach Mastodon"):
        send(config(closed_port_url()))


def test_an_echoed_token_is_scrubbed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": f"token {TOKEN} is suspended"})

    with pytest.raises(ChannelDownError) as caught:
        send(config("https://social.test"), transport=httpx.MockTransport(answer))
    assert_no_token(caught.value)


# -- probe ---------------------------------------------------------------------------------


def test_probe_names_the_account(mastodon_server: FakeMastodon) -> None:
    assert run(config(mastodon_server.url), lambda ch: ch.probe()) == "@comune on 127.0.0.1"
    assert mastodon_server.statuses == []


def test_probe_with_a_wrong_token_is_channel_down(mastodon_server: FakeMastodon) -> None:
    mastodon_server.token = "other"
    with pytest.raises(ChannelDownError):
        run(config(mastodon_server.url), lambda ch: ch.probe())


def test_probe_of_something_else_is_channel_down() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"hello": "world"})

    with pytest.raises(ChannelDownError, match="did not describe a Mastodon account"):
        run(config("https://social.test"), lambda ch: ch.probe(), transport=httpx.MockTransport(answer))


def test_probe_of_an_unreachable_instance_is_transient() -> None:
    with pytest.raises(TransientError):
        run(config(closed_port_url()), lambda ch: ch.probe())
