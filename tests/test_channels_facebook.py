"""The Facebook channel against a fake Graph API: link and photo posts, the card, the token, rate
limits, the read-back after a crash, edits, `check --online`."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from clocks import FakeClock
from PIL import Image
from servers.facebook import PAGE_ID, PAGE_NAME, USER_ID
from servers.garbage import LOGIN_PAGE

from bridge import render
from bridge.cards import CardStyle, alt_text
from bridge.channels import (
    ChannelDownError,
    ChannelError,
    EditUnsupported,
    FacebookChannel,
    GatewayAnswerError,
    MessageRejected,
    Posted,
    TransientError,
    open_channel,
    outgoing_for,
)
from bridge.channels.facebook import CLOCK_SLACK, RATE_LIMIT_WAIT, picture, rate_limit_wait
from bridge.cli import cmd_check_online
from bridge.config import DEFAULT_GRAPH_API_VERSION, AlertSettings, ChannelConfig, ConfigError, Secret, load_config
from bridge.item import Alert
from bridge.outbox import drain
from bridge.store import Delivery, Store

if TYPE_CHECKING:
    from servers.facebook import FakeFacebook

TOKEN = "EAAG-page-token-0123456789abcdef"
LINK = "https://www.comune.example.it/notizie/2026/03/01/chiusura-temporanea-di-via-roma"
WALL = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

ALERT = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Chiusura temporanea di via Roma",
    summary="Dal 3 al 5 marzo via Roma è chiusa al traffico per lavori alla rete idrica.",
    link=LINK,
    published=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
)
WITH_IMAGE = Alert(feed_id=ALERT.feed_id, feed_name=ALERT.feed_name, title=ALERT.title, summary=ALERT.summary,
                   link=LINK, published=ALERT.published, image_url="https://www.comune.example.it/foto/via-roma.jpg")


def config(url: str, **overrides: Any) -> ChannelConfig:
    values: dict[str, Any] = {
        "name": "facebook",
        "type": "facebook",
        "api_url": url,
        "page_id": PAGE_ID,
        "token": Secret("env:FACEBOOK_PAGE_TOKEN", TOKEN),
        "timeout": timedelta(seconds=5),
        "card": "never",
    }
    values.update(overrides)
    return ChannelConfig(**values)


def clocked(server: FakeFacebook, wall: datetime = WALL) -> FakeClock:
    """A clock the channel reads, which the fake dates its posts by too."""
    clock = FakeClock(wall)
    server.clock = lambda: clock.wall().timestamp()
    return clock


def run(cfg: ChannelConfig, action: Callable[[FacebookChannel], Any], *, clock: FakeClock | None = None,
        style: CardStyle | None = None) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await action(FacebookChannel(cfg, http=http, clock=clock or FakeClock(WALL), style=style))

    return asyncio.run(go())


def send(cfg: ChannelConfig, alert: Alert = ALERT, *, plain: bool = False, **kwargs: Any) -> Posted:
    posted: Posted = run(cfg, lambda ch: ch.send(alert, delivery_id="d-1", plain=plain), **kwargs)
    return posted


def failure(cfg: ChannelConfig, action: Callable[[FacebookChannel], Any]) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        run(cfg, action)
    for text in (str(caught.value), repr(caught.value), caught.value.hint):
        assert TOKEN not in text
    return caught.value


# -- posts -------------------------------------------------------------------------------------


def test_a_link_post_goes_to_the_page_feed_with_message_and_link(facebook_server: FakeFacebook) -> None:
    posted = send(config(facebook_server.url))
    [post] = facebook_server.posts
    assert posted == Posted(post.id)
    assert post.id.startswith(f"{PAGE_ID}_")
    assert (post.message, post.link, post.is_photo) == (render.plain(ALERT), LINK, False)
    assert outgoing_for(config(facebook_server.url), ALERT).text == post.message  # what preview shows
    [request] = facebook_server.requests
    assert request.path == f"/{DEFAULT_GRAPH_API_VERSION}/{PAGE_ID}/feed"
    assert request.header("Authorization") == f"Bearer {TOKEN}"
    assert TOKEN not in request.path and not request.query  # the token never travels in a URL


def test_the_api_version_of_the_config_is_in_every_path(facebook_server: FakeFacebook) -> None:
    send(config(facebook_server.url, api_version="v26.0"))
    assert facebook_server.versions == ["v26.0"]


def test_an_alert_image_goes_as_a_photo_post_with_the_message_as_caption(facebook_server: FakeFacebook) -> None:
    posted = send(config(facebook_server.url, images=True), WITH_IMAGE)
    [post] = facebook_server.posts
    assert posted == Posted(post.id)  # the post's id, not the photo's: edits and read-backs use it
    assert (post.photo_url, post.message, post.photo) == (WITH_IMAGE.image_url, render.plain(WITH_IMAGE), None)
    assert facebook_server.requests[0].path.endswith(f"/{PAGE_ID}/photos")


def test_without_images_the_alert_image_is_left_to_the_link_preview(facebook_server: FakeFacebook) -> None:
    send(config(facebook_server.url, images=False), WITH_IMAGE)
    [post] = facebook_server.posts
    assert (post.is_photo, post.link) == (False, LINK)


def test_the_card_is_uploaded_with_its_italian_alt_text(facebook_server: FakeFacebook) -> None:
    urgent = Alert(feed_id="pc", feed_name="Protezione civile", title="Allerta arancione per temporali",
                   summary="Domani scuole chiuse.", link=LINK, urgent=True)
    send(config(facebook_server.url, card="auto"), urgent, style=CardStyle(name="Comune di Esempio"))
    [post] = facebook_server.posts
    assert post.photo is not None and post.photo.content_type == "image/png"
    with Image.open(io.BytesIO(post.photo.data)) as card:
        assert card.size == (1200, 630)
    assert post.alt_text == alt_text(urgent)
    assert post.alt_text.startswith("Avviso urgente. Allerta arancione per temporali.")
    assert post.message == render.plain(urgent)


@pytest.mark.parametrize(("mode", "images", "alert", "expected"), [
    ("auto", True, ALERT, "card"),  # no image of its own: the card
    ("auto", True, WITH_IMAGE, "image"),
    ("auto", False, WITH_IMAGE, None),  # an image, not posted as one: the link's preview shows it
    ("always", True, WITH_IMAGE, "card"),
    ("never", True, ALERT, None),
    ("never", True, WITH_IMAGE, "image"),
])
def test_which_picture_goes_with_the_post(mode: str, images: bool, alert: Alert, expected: str | None) -> None:
    cfg = config("http://127.0.0.1:9", card=mode, images=images)
    assert picture(cfg, alert) == expected
    assert picture(cfg, alert, plain=True) is None
    assert outgoing_for(cfg, alert).image_url == (alert.image_url if expected == "image" else None)


def test_a_refused_photo_goes_as_a_link_post(facebook_server: FakeFacebook) -> None:
    facebook_server.reject_photos = True
    posted = send(config(facebook_server.url, images=True), WITH_IMAGE)
    [post] = facebook_server.posts
    assert posted == Posted(post.id) and (post.is_photo, post.link) == (False, LINK)
    assert [r.path.rsplit("/", 1)[-1] for r in facebook_server.requests] == ["photos", "feed"]


def test_plain_posts_the_link_post_only(facebook_server: FakeFacebook) -> None:
    send(config(facebook_server.url, images=True, card="always"), WITH_IMAGE, plain=True)
    [post] = facebook_server.posts
    assert not post.is_photo


def test_a_long_alert_is_fitted_to_the_channel_max_length(facebook_server: FakeFacebook) -> None:
    long = Alert(feed_id="n", feed_name="C", title="Titolo", summary="parola " * 400, link=LINK)
    send(config(facebook_server.url, max_length=500), long)
    [post] = facebook_server.posts
    assert len(post.message) <= 500 and post.message.endswith(LINK)


def test_open_channel_builds_it() -> None:
    async def go() -> str:
        async with httpx.AsyncClient(trust_env=False) as http:
            channel = open_channel(config("http://127.0.0.1:9"), http=http)
            return channel.guarantee

    assert asyncio.run(go()) == "exactly-once"


# -- errors ------------------------------------------------------------------------------------


def test_an_expired_token_pauses_the_channel_saying_where_to_make_a_new_one(facebook_server: FakeFacebook) -> None:
    facebook_server.expire_token()
    error = failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, ChannelDownError)
    assert "the Page token expired" in str(error) and "code 190, subcode 463" in str(error)
    assert "creane uno nuovo" in error.hint and "env:FACEBOOK_PAGE_TOKEN" in error.hint
    assert "[channels.facebook]" in error.hint
    assert facebook_server.posts == []


def test_an_invalid_token_is_channel_down(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url, token=Secret("env:FACEBOOK_PAGE_TOKEN", "EAAG-some-other-token-000"))
    error = failure(cfg, lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, ChannelDownError) and "code 190" in str(error)


def test_the_expired_token_pauses_the_queue_through_the_outbox(tmp_path: Path, facebook_server: FakeFacebook) -> None:
    facebook_server.expire_token()
    result, _ = drain_once(tmp_path, config(facebook_server.url), WALL)
    assert result.down and result.sent == 0
    [delivery] = reopened(tmp_path).deliveries("facebook")
    assert "the Page token expired" in (delivery.last_error or "")


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80001])
def test_rate_limits_back_off(facebook_server: FakeFacebook, code: int) -> None:
    facebook_server.fail_next(code)
    error = failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, TransientError) and error.retry_after == RATE_LIMIT_WAIT
    assert f"code {code}" in str(error)


def test_a_rate_limit_waits_as_long_as_facebook_estimates(facebook_server: FakeFacebook) -> None:
    facebook_server.fail_next(32, regain_minutes=15)
    error = failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, TransientError) and error.retry_after == 15 * 60


def test_a_rate_limit_honours_retry_after_beyond_the_floor(facebook_server: FakeFacebook) -> None:
    facebook_server.fail_next(4, retry_after=600)
    error = failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, TransientError) and error.retry_after == 600


@pytest.mark.parametrize(("header", "expected"), [
    ('{"1": [{"type": "pages", "estimated_time_to_regain_access": 0}]}', RATE_LIMIT_WAIT),
    ('{"1": [{"estimated_time_to_regain_access": 3}, {"estimated_time_to_regain_access": 7}]}', 420.0),
    ("not json", RATE_LIMIT_WAIT),
    ('{"1": [{"estimated_time_to_regain_access": "soon"}]}', RATE_LIMIT_WAIT),
])
def test_rate_limit_wait_reads_the_usage_header(header: str, expected: float) -> None:
    response = httpx.Response(400, headers={"X-Business-Use-Case-Usage": header})
    assert rate_limit_wait(response) == expected


def test_the_rate_limit_backs_the_delivery_off_in_the_outbox(tmp_path: Path, facebook_server: FakeFacebook) -> None:
    facebook_server.fail_next(32, regain_minutes=30)
    result, _ = drain_once(tmp_path, config(facebook_server.url), WALL)
    [delivery] = reopened(tmp_path).deliveries("facebook")
    assert result.sent == 0 and delivery.next_attempt is not None
    assert delivery.next_attempt >= WALL + timedelta(minutes=30)
    assert facebook_server.posts == []


@pytest.mark.parametrize(("code", "status"), [(1, 500), (2, 503)])
def test_server_errors_are_transient(facebook_server: FakeFacebook, code: int, status: int) -> None:
    facebook_server.fail_next(code, status=status)
    assert isinstance(failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1")),
                      TransientError)


@pytest.mark.parametrize("code", [368, 506, 100])
def test_a_refused_post_is_message_rejected(facebook_server: FakeFacebook, code: int) -> None:
    facebook_server.fail_next(code)
    error = failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, MessageRejected) and f"code {code}" in str(error)


def test_a_missing_permission_is_channel_down(facebook_server: FakeFacebook) -> None:
    facebook_server.fail_next(200, status=403)
    error = failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, ChannelDownError) and "pages_manage_posts" in error.hint


def test_an_unknown_page_is_channel_down(facebook_server: FakeFacebook) -> None:
    error = failure(config(facebook_server.url, page_id="123"), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, ChannelDownError) and "page_id" in error.hint


def test_a_2xx_without_a_post_id_is_never_a_post(facebook_server: FakeFacebook) -> None:
    facebook_server.garble_next(1, body=b'{"success": true}', content_type="application/json")
    error = failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, GatewayAnswerError) and "post id" in str(error)


def test_a_timeout_is_transient_and_says_the_post_may_exist(facebook_server: FakeFacebook) -> None:
    facebook_server.hang_after_write = 3
    error = failure(config(facebook_server.url, timeout=timedelta(seconds=0.5)),
                    lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, TransientError) and "may have gone through" in error.hint


# -- after a crash: read back, never a double post -------------------------------------------


def drain_once(tmp_path: Path, cfg: ChannelConfig, moment: datetime, *, clock: FakeClock | None = None,
               add: bool = True) -> tuple[Any, Store]:
    """Open the state in `tmp_path` (a start of the daemon), queue ALERT if `add`, drain once."""
    store = Store.open(tmp_path)
    if add:
        store.add_deliveries([Delivery(id="d1", channel=cfg.name, feed_id="notizie", alert=ALERT,
                                       created=WALL, order=1.0)])

    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            channel = FacebookChannel(cfg, http=http, clock=clock or FakeClock(moment))
            return await drain(channel, store=store, alerts=AlertSettings(), timezone=ZoneInfo("Europe/Rome"),
                               now=lambda: moment, pacing=None)

    try:
        return asyncio.run(go()), store
    finally:
        store.close()


def reopened(tmp_path: Path) -> Store:
    """The state as the next start of the daemon reads it (closed at once: read in memory)."""
    store = Store.open(tmp_path, read_only=True)
    store.close()
    return store


@pytest.mark.parametrize("fault", ["timeout", "garbage forwarded"])
def test_a_crash_during_the_request_then_a_restart_posts_once(
    tmp_path: Path, facebook_server: FakeFacebook, fault: str
) -> None:
    clock = clocked(facebook_server)
    cfg = config(facebook_server.url, timeout=timedelta(seconds=0.5))
    if fault == "timeout":
        facebook_server.hang_after_write = 3
    else:
        facebook_server.garble_next(1, body=LOGIN_PAGE, forward=True)
    first, _ = drain_once(tmp_path, cfg, WALL, clock=clock)
    assert first.sent == 0 and len(facebook_server.posts) == 1  # on the Page, not known to be
    [delivery] = reopened(tmp_path).deliveries("facebook")
    assert delivery.in_flight and delivery.token == str(int(WALL.timestamp()))
    facebook_server.hang_after_write = 0
    later = WALL + timedelta(hours=2)
    clock.step_wall(7200)
    second, _ = drain_once(tmp_path, cfg, later, clock=clock, add=False)
    [post] = facebook_server.posts
    assert second.sent == 1
    store = reopened(tmp_path)
    assert store.deliveries("facebook") == []
    [recorded] = list(store.posts())
    assert (recorded.remote_id, recorded.verified) == (post.id, True)
    assert [r.method for r in facebook_server.requests][-1] == "GET"  # read back, not posted again


def test_recover_finds_the_post_by_its_text_since_the_delivery_went_in_flight(
    facebook_server: FakeFacebook
) -> None:
    clock = clocked(facebook_server)
    cfg = config(facebook_server.url)
    token = run(cfg, lambda ch: ch.prepare("d-1"), clock=clock)
    facebook_server.add_post("Un altro avviso")
    posted = send(cfg, clock=clock)
    facebook_server.add_post("E un altro ancora")
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token=token), clock=clock) == \
        Posted(posted.remote_id, verified=True)
    [read] = [r for r in facebook_server.requests if r.path.endswith("/published_posts")]
    assert read.query["since"] == [str(int(WALL.timestamp()) - CLOCK_SLACK)]


def test_recover_ignores_the_same_text_posted_before_the_delivery(facebook_server: FakeFacebook) -> None:
    clock = clocked(facebook_server)
    cfg = config(facebook_server.url)
    facebook_server.add_post(render.plain(ALERT), created=WALL.timestamp() - CLOCK_SLACK - 3600)
    token = run(cfg, lambda ch: ch.prepare("d-1"), clock=clock)
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token=token), clock=clock) is None


def test_recover_tells_apart_a_post_of_another_alert(facebook_server: FakeFacebook) -> None:
    clock = clocked(facebook_server)
    cfg = config(facebook_server.url)
    token = run(cfg, lambda ch: ch.prepare("d-1"), clock=clock)
    other = Alert(feed_id="notizie", feed_name="Comune di Esempio", title="Mercato spostato", summary="", link=LINK)
    send(cfg, other, clock=clock)
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token=token), clock=clock) is None


def test_recover_when_facebook_cannot_answer_is_transient(facebook_server: FakeFacebook) -> None:
    facebook_server.fail_reads(2, status=503)
    error = failure(config(facebook_server.url), lambda ch: ch.recover(ALERT, delivery_id="d-1", token="1"))
    assert isinstance(error, TransientError)


def test_recover_of_an_answer_that_is_not_a_list_is_a_wrong_answer(facebook_server: FakeFacebook) -> None:
    facebook_server.garble_next(1, every_request=True, body=b'{"status":"ok"}', content_type="application/json")
    error = failure(config(facebook_server.url), lambda ch: ch.recover(ALERT, delivery_id="d-1", token="1"))
    assert isinstance(error, GatewayAnswerError)


# -- edits -------------------------------------------------------------------------------------


CORRECTED = Alert(feed_id=ALERT.feed_id, feed_name=ALERT.feed_name, title=ALERT.title,
                  summary="Dal 3 al 6 marzo via Roma è chiusa al traffico.", link=LINK)


def test_an_edit_changes_the_link_post_in_place_and_reads_it_back(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url)
    posted = send(cfg)
    assert posted.remote_id is not None
    edited = run(cfg, lambda ch: ch.edit(CORRECTED, remote_id=posted.remote_id))
    assert edited == Posted(posted.remote_id, verified=True)
    assert facebook_server.edits == [(posted.remote_id, render.plain(CORRECTED))]
    [post] = facebook_server.posts
    assert post.message == render.plain(CORRECTED)


def test_a_photo_post_is_not_edited(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url, images=True)
    posted = send(cfg, WITH_IMAGE)
    assert posted.remote_id is not None
    error = failure(cfg, lambda ch: ch.edit(CORRECTED, remote_id=posted.remote_id))
    assert isinstance(error, EditUnsupported) and "photo post" in str(error)
    assert facebook_server.edits == []


def test_an_edit_of_a_post_no_longer_there_is_unsupported(facebook_server: FakeFacebook) -> None:
    error = failure(config(facebook_server.url), lambda ch: ch.edit(CORRECTED, remote_id=f"{PAGE_ID}_999"))
    assert isinstance(error, EditUnsupported) and "no longer on the Page" in str(error)


def test_an_edit_refused_by_a_rate_limit_backs_off(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url)
    posted = send(cfg)
    assert posted.remote_id is not None
    facebook_server.fail_next(613)
    error = failure(cfg, lambda ch: ch.edit(CORRECTED, remote_id=posted.remote_id))
    assert isinstance(error, TransientError)
    assert facebook_server.edits == []


# -- probe and check --online ------------------------------------------------------------------


def test_probe_names_the_page(facebook_server: FakeFacebook) -> None:
    assert run(config(facebook_server.url), lambda ch: ch.probe()) == f'Page "{PAGE_NAME}" ({PAGE_ID})'
    assert facebook_server.posts == []


def test_probe_with_a_user_token_is_channel_down(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url, token=Secret("env:FACEBOOK_PAGE_TOKEN", facebook_server.user_token))
    error = failure(cfg, lambda ch: ch.probe())
    assert isinstance(error, ChannelDownError) and "not the Page's own token" in str(error)
    assert USER_ID in str(error)


def test_probe_with_an_expired_token_is_channel_down(facebook_server: FakeFacebook) -> None:
    facebook_server.expire_token()
    error = failure(config(facebook_server.url), lambda ch: ch.probe())
    assert isinstance(error, ChannelDownError) and "the Page token expired" in str(error)


def test_probe_of_something_else_is_channel_down(facebook_server: FakeFacebook) -> None:
    facebook_server.garble_next(None, every_request=True, body=b'{"status":"ok"}', content_type="application/json")
    error = failure(config(facebook_server.url), lambda ch: ch.probe())
    assert isinstance(error, ChannelDownError) and "api_url" in error.hint


def write_config(tmp_path: Path, url: str, **extra: str) -> Path:
    (tmp_path / "feeds.xml").write_text("<rss/>")
    lines = [f'{key} = "{value}"' for key, value in extra.items()]
    path = tmp_path / "config.toml"
    path.write_text(f"""
[[feeds]]
id = "notizie"
url = "https://www.comune.example.it/feed"
channels = ["facebook"]

[channels.facebook]
type = "facebook"
page_id = "{PAGE_ID}"
token = "env:FACEBOOK_PAGE_TOKEN"
api_url = "{url}"
{chr(10).join(lines)}
""")
    return path


def check_online(path: Path, token: str = TOKEN) -> tuple[int, str]:
    out = io.StringIO()
    code = asyncio.run(cmd_check_online(load_config(path, env={"FACEBOOK_PAGE_TOKEN": token}), out))
    return code, out.getvalue()


def test_check_online_answers_for_the_page(tmp_path: Path, facebook_server: FakeFacebook) -> None:
    code, out = check_online(write_config(tmp_path, facebook_server.url))
    assert code == 0 and f'ok: Page "{PAGE_NAME}" ({PAGE_ID})' in out
    facebook_server.expire_token()
    code, out = check_online(write_config(tmp_path, facebook_server.url))
    assert code == 3 and "CANNOT POST" in out and "the Page token expired" in out and "creane uno nuovo" in out
    assert TOKEN not in out


def test_the_config_takes_the_facebook_keys(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, "https://graph.example", api_version="v26.0"),
                      env={"FACEBOOK_PAGE_TOKEN": TOKEN}).channels["facebook"]
    assert (cfg.page_id, cfg.api_version, cfg.api_url, cfg.token) == \
        (PAGE_ID, "v26.0", "https://graph.example", Secret("env:FACEBOOK_PAGE_TOKEN", TOKEN))
    default = load_config(write_config(tmp_path, "https://graph.example"),
                          env={"FACEBOOK_PAGE_TOKEN": TOKEN}).channels["facebook"]
    assert default.api_version == DEFAULT_GRAPH_API_VERSION


@pytest.mark.parametrize(("text", "expected"), [
    ('page_id = "comune.esempio"', "channels.facebook.page_id: expected the Page's numeric id"),
    ('api_version = "25"', 'channels.facebook.api_version: expected a Graph API version such as "v25.0"'),
    ('session = "x"', 'channels.facebook.session: not a setting of a "facebook" channel'),
])
def test_bad_facebook_keys_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = write_config(tmp_path, "https://graph.example")
    content = path.read_text().replace(f'page_id = "{PAGE_ID}"', "") if text.startswith("page_id") \
        else path.read_text()
    path.write_text(content.replace('type = "facebook"', f'type = "facebook"\n{text}'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"FACEBOOK_PAGE_TOKEN": TOKEN})
    assert any(error.startswith(expected) for error in caught.value.errors), caught.value.errors


def test_page_id_and_token_are_required(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[channels.facebook]\ntype = "facebook"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert 'channels.facebook.page_id: is required for a "facebook" channel' in caught.value.errors
    assert 'channels.facebook.token: is required for a "facebook" channel' in caught.value.errors


def test_the_console_previews_the_post_as_facebook() -> None:
    from bridge.console.views import phone_preview

    preview = phone_preview(config("http://127.0.0.1:9"), ALERT)
    assert (preview.platform, preview.platform_it, preview.limit) == ("facebook", "Facebook", 63206)
    assert LINK in preview.html


def test_an_edit_that_does_not_show_is_not_verified(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url)
    posted = send(cfg)
    assert posted.remote_id is not None
    facebook_server.ignore_edits = True
    assert run(cfg, lambda ch: ch.edit(CORRECTED, remote_id=posted.remote_id)) == \
        Posted(posted.remote_id, verified=False)


def test_an_edit_answered_without_success_is_a_wrong_answer(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url)
    posted = send(cfg)
    assert posted.remote_id is not None
    facebook_server.garble_next(1, body=b'{"id": "1"}', content_type="application/json")
    error = failure(cfg, lambda ch: ch.edit(CORRECTED, remote_id=posted.remote_id))
    assert isinstance(error, GatewayAnswerError) and '"success": true' in str(error)


def test_an_address_that_is_not_the_graph_api_is_channel_down(facebook_server: FakeFacebook) -> None:
    facebook_server.garble_next(1, status=404, body=b"<html><title>Not Found</title></html>")
    error = failure(config(facebook_server.url), lambda ch: ch.send(ALERT, delivery_id="d-1"))
    assert isinstance(error, ChannelDownError) and "api_url and api_version" in error.hint


# -- deletions ---------------------------------------------------------------------------------


def test_a_post_is_deleted_and_a_second_deletion_finds_it_gone(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url)
    posted = send(cfg)
    assert posted.remote_id is not None
    assert run(cfg, lambda ch: ch.delete(posted.remote_id)) is True
    assert facebook_server.posts == []
    assert run(cfg, lambda ch: ch.delete(posted.remote_id)) is False


def test_a_deletion_refused_by_the_token_is_channel_down(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url)
    posted = send(cfg)
    assert posted.remote_id is not None
    facebook_server.expire_token()
    error = failure(cfg, lambda ch: ch.delete(posted.remote_id))
    assert isinstance(error, ChannelDownError) and "the Page token expired" in str(error)
    assert len(facebook_server.posts) == 1


def test_a_deletion_answered_without_success_is_a_wrong_answer(facebook_server: FakeFacebook) -> None:
    cfg = config(facebook_server.url)
    posted = send(cfg)
    assert posted.remote_id is not None
    facebook_server.garble_next(1)
    assert isinstance(failure(cfg, lambda ch: ch.delete(posted.remote_id)), GatewayAnswerError)
