"""The Bluesky channel against a fake PDS: posts, facets, embeds, the kept session, errors,
and exactly once across a crash."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from servers.bluesky import ACCOUNT_PASSWORD, APP_PASSWORD, DID, HANDLE, FakeBluesky
from servers.images import PNG, image_loader
from servers.mastodon import graphemes as fake_graphemes

from bridge import render
from bridge.cards import alt_text
from bridge.channels import (
    ChannelDownError,
    DeleteUnsupported,
    EditUnsupported,
    MessageRejected,
    Posted,
    TransientError,
    open_channel,
)
from bridge.channels.bluesky import SESSION_FILE, TID_RE, BlueskyChannel, link_facets, rate_limit_wait, record_key
from bridge.cli import cmd_check_online
from bridge.config import AlertSettings, ChannelConfig, ConfigError, Secret, load_config
from bridge.images import ImageLoader
from bridge.item import Alert
from bridge.outbox import DrainResult, drain
from bridge.store import Delivery, Store

if TYPE_CHECKING:
    from servers.images import FakeImageHost

LINK = "https://www.comune.example.it/notizie/2026/03/01/chiusura-di-via-roma"
MOMENT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ALERT = Alert(
    feed_id="notizie",
    feed_name="Comune di Esempio",
    title="Chiusura temporanea di via Roma",
    summary="Dal 3 al 5 marzo via Roma è chiusa al traffico per lavori alla rete idrica.",
    link=LINK,
    published=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
)


def config(server: FakeBluesky, state_dir: Path | None, **overrides: Any) -> ChannelConfig:
    values: dict[str, Any] = {
        "name": "bluesky", "type": "bluesky", "handle": HANDLE, "service": server.url,
        "app_password": Secret("env:BLUESKY_APP_PASSWORD", APP_PASSWORD), "card": "never",
        "timeout": timedelta(seconds=5), "state_dir": state_dir,
    }
    values.update(overrides)
    return ChannelConfig(**values)


def run(cfg: ChannelConfig, action: Callable[[BlueskyChannel], Any], *, images: ImageLoader | None = None) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            try:
                return await action(BlueskyChannel(cfg, http=http, images=images, now=lambda: MOMENT))
            finally:
                if images is not None:
                    await images.aclose()

    return asyncio.run(go())


def send(cfg: ChannelConfig, alert: Alert = ALERT, *, token: str | None = "3mfrdl2oobc2a", plain: bool = False,
         images: ImageLoader | None = None) -> Posted:
    posted: Posted = run(cfg, lambda ch: ch.send(alert, delivery_id="d-1", token=token, plain=plain), images=images)
    return posted


def drain_once(store: Store, cfg: ChannelConfig, moment: datetime = MOMENT) -> DrainResult:
    async def go() -> DrainResult:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await drain(BlueskyChannel(cfg, http=http, now=lambda: moment), store=store,
                               alerts=AlertSettings(), timezone=ZoneInfo("Europe/Rome"), now=lambda: moment,
                               pacing=None)

    return asyncio.run(go())


def queue(tmp_path: Path, alert: Alert = ALERT) -> Store:
    store = Store.open(tmp_path / "state")
    store.add_deliveries([Delivery(id="d1", channel="bluesky", feed_id="notizie", alert=alert, created=MOMENT,
                                   order=1.0)])
    return store


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# -- posts ---------------------------------------------------------------------------------


def test_a_post_is_a_record_with_its_text_link_facet_and_key(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    posted = send(config(bluesky_server, tmp_path))
    [record] = bluesky_server.records
    assert posted == Posted(f"at://{DID}/app.bsky.feed.post/3mfrdl2oobc2a")
    assert record.rkey == "3mfrdl2oobc2a"
    text = record.value["text"]
    assert text == render.plain(ALERT)
    assert record.value["langs"] == ["it"]
    assert record.value["createdAt"] == "2026-03-02T10:00:00.000Z"
    [facet] = record.value["facets"]
    span = facet["index"]
    assert text.encode()[span["byteStart"]:span["byteEnd"]].decode() == LINK
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": LINK}]
    # A link card without a picture (card = "never", no image of its own).
    assert record.value["embed"] == {"$type": "app.bsky.embed.external",
                                     "external": {"uri": LINK, "title": ALERT.title, "description": ALERT.summary}}
    assert bluesky_server.logins == 1


def test_the_record_key_is_a_tid_of_the_moment_and_the_delivery() -> None:
    key = record_key("d-1", MOMENT)
    assert TID_RE.match(key) and key == record_key("d-1", MOMENT)
    assert record_key("d-2", MOMENT) != key  # the clock id comes from the delivery id
    assert record_key("d-1", MOMENT + timedelta(seconds=1)) > key  # TIDs sort by time


def test_prepare_never_gives_two_deliveries_one_key(bluesky_server: FakeBluesky) -> None:
    async def keys(channel: BlueskyChannel) -> list[str | None]:
        return [await channel.prepare(f"d-{n}") for n in range(200)]

    prepared = run(config(bluesky_server, None), keys)  # a clock that stands still
    assert len(set(prepared)) == 200
    assert all(key is not None and TID_RE.match(key) for key in prepared)


def test_facet_offsets_count_utf8_bytes_after_accents_and_emoji(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    alert = replace(ALERT, title="Città più sicura 🎉👨‍👩‍👧 perché sì", summary="Novità: è già così 🇮🇹.")
    send(config(bluesky_server, tmp_path), alert)
    [record] = bluesky_server.records
    text = record.value["text"]
    [facet] = record.value["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert start > text.index(LINK)  # bytes, not characters: the accents and emoji take more
    assert start == len(text[: text.index(LINK)].encode("utf-8"))
    assert text.encode("utf-8")[start:end] == LINK.encode()


def test_link_facets_leave_out_the_sentence_punctuation() -> None:
    text = "Leggi è https://a.example.it/x?y=1. E (vedi https://b.example.it/p_(q)) poi https://c.example.it»"
    uris = [f["features"][0]["uri"] for f in link_facets(text)]
    assert uris == ["https://a.example.it/x?y=1", "https://b.example.it/p_(q)", "https://c.example.it"]
    for facet in link_facets(text):
        span = facet["index"]
        assert text.encode()[span["byteStart"]:span["byteEnd"]].decode() == facet["features"][0]["uri"]


def test_plain_posts_no_embed(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    send(config(bluesky_server, tmp_path, card="always"), plain=True)
    [record] = bluesky_server.records
    assert "embed" not in record.value
    assert bluesky_server.blobs == []


# -- pictures ------------------------------------------------------------------------------


def test_the_card_is_the_link_cards_thumbnail(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    send(config(bluesky_server, tmp_path, card="auto"))
    [record] = bluesky_server.records
    [blob] = bluesky_server.blobs
    thumb = record.value["embed"]["external"]["thumb"]
    assert thumb["ref"]["$link"] == blob.cid and thumb["mimeType"] == "image/png"
    assert png_size(blob.data) == (1200, 630)


def test_the_alerts_own_image_is_the_thumbnail_when_the_card_is_not_wanted(
    bluesky_server: FakeBluesky, image_host: FakeImageHost, tmp_path: Path
) -> None:
    alert = replace(ALERT, image_url=image_host.serve("/foto.png"))
    send(config(bluesky_server, tmp_path, card="auto", images=True), alert, images=image_loader())
    [record] = bluesky_server.records
    [blob] = bluesky_server.blobs
    assert blob.data == PNG
    assert record.value["embed"]["external"]["thumb"]["ref"]["$link"] == blob.cid


def test_without_a_link_the_card_goes_as_an_image_with_alt_text(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    alert = replace(ALERT, link="", urgent=True)
    send(config(bluesky_server, tmp_path, card="always"), alert)
    [record] = bluesky_server.records
    [image] = record.value["embed"]["images"]
    assert record.value["embed"]["$type"] == "app.bsky.embed.images"
    assert image["alt"] == alt_text(alert) and image["alt"].startswith("Avviso urgente.")
    assert image["aspectRatio"] == {"width": 1200, "height": 630}
    assert "facets" not in record.value


def test_a_picture_over_one_megabyte_is_left_out(
    bluesky_server: FakeBluesky, image_host: FakeImageHost, tmp_path: Path
) -> None:
    from PIL import Image

    big = io.BytesIO()
    Image.frombytes("RGB", (1200, 1200), os.urandom(1200 * 1200 * 3)).save(big, format="PNG")
    alert = replace(ALERT, image_url=image_host.serve("/grande.png", big.getvalue()))
    send(config(bluesky_server, tmp_path, images=True), alert, images=image_loader(max_bytes=8_000_000))
    [record] = bluesky_server.records
    assert "thumb" not in record.value["embed"]["external"]
    assert bluesky_server.blobs == []


# -- 300 graphemes -------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "", "abc", "città", "e\u0301", "👍🏽", "👨‍👩‍👧‍👦", "❤️", "🏳️‍🌈", "1️⃣", "Perché 🎉 sì!", "a\u200db", "👍\u200d",
])
def test_graphemes_never_count_fewer_than_unicode(text: str) -> None:
    assert render.graphemes(text) >= fake_graphemes(text)
    assert render.graphemes(text) <= len(text)


def test_graphemes_of_the_common_sequences() -> None:
    # As Unicode segments them (UAX #29): flags are pairs of regional indicators, a tag
    # sequence (the flag of England) is one cluster, a lone indicator is one too.
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    texts = ("città", "e\u0301", "👍🏽", "👨‍👩‍👧‍👦", "🇮🇹🇫🇷", "🇮🇹🇫", "❤️", england, "a🇮")
    assert [render.graphemes(t) for t in texts] == [5, 1, 1, 1, 2, 2, 1, 1, 2]


def test_a_long_alert_with_emoji_fits_300_graphemes_and_is_posted(bluesky_server: FakeBluesky,
                                                                 tmp_path: Path) -> None:
    words = " ".join(["perché", "è", "così", "👨‍👩‍👧", "🎉", "città", "e\u0301"] * 40)
    alert = replace(ALERT, summary=words)
    send(config(bluesky_server, tmp_path), alert)
    [record] = bluesky_server.records  # the fake refuses a text over 300 graphemes
    text = record.value["text"]
    assert text.endswith(LINK) and "…" in text
    assert 280 < render.bluesky_length(text) <= 300
    assert len(text) > 300  # counted in graphemes, not code points


def test_the_bytes_bound_holds_for_text_of_wide_characters() -> None:
    # 200 clusters of 18 bytes each (a family of three) are over 3000 bytes.
    text = "👨‍👩‍👧" * 200
    assert render.graphemes(text) == 200
    assert render.bluesky_length(text) == -(-len(text.encode()) // 10) > 300


def test_the_platform_limit_and_max_length() -> None:
    assert render.platform_for("bluesky").text_limit == 300
    assert render.platform_for("bluesky", 200).text_limit == 200
    assert render.platform_for("bluesky", 500).text_limit == 300


# -- the session ---------------------------------------------------------------------------


def test_the_session_is_kept_across_restarts(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2a")
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2b")  # a new process
    run(config(bluesky_server, tmp_path), lambda ch: ch.probe())
    assert bluesky_server.logins == 1
    assert len(bluesky_server.records) == 2
    path = tmp_path / SESSION_FILE.format(name="bluesky")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert APP_PASSWORD not in path.read_text()


def test_a_session_of_another_account_or_an_unreadable_file_is_not_used(bluesky_server: FakeBluesky,
                                                                       tmp_path: Path) -> None:
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2a")
    path = tmp_path / SESSION_FILE.format(name="bluesky")
    path.write_text(path.read_text().replace(HANDLE, "altro.bsky.social"))
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2b")
    assert bluesky_server.logins == 2
    path.write_text("{not json")
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2c")
    assert bluesky_server.logins == 3
    assert len(bluesky_server.records) == 3


def test_without_a_state_directory_the_session_lives_in_memory(bluesky_server: FakeBluesky) -> None:
    async def twice(channel: BlueskyChannel) -> None:
        await channel.send(ALERT, delivery_id="a", token="3mfrdl2oobc2a")
        await channel.send(ALERT, delivery_id="b", token="3mfrdl2oobc2b")

    run(config(bluesky_server, None), twice)
    assert bluesky_server.logins == 1


def test_an_expired_access_token_is_refreshed_not_logged_in_again(bluesky_server: FakeBluesky,
                                                                  tmp_path: Path) -> None:
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2a")
    bluesky_server.expire_access()
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2b")
    assert (bluesky_server.logins, bluesky_server.refreshes) == (1, 1)
    assert len(bluesky_server.records) == 2
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2c")  # the refreshed session was kept
    assert (bluesky_server.logins, bluesky_server.refreshes) == (1, 1)


def test_an_expired_refresh_token_logs_in_again(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2a")
    bluesky_server.expire_refresh()
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2b")
    assert (bluesky_server.logins, bluesky_server.refreshes) == (2, 0)
    assert len(bluesky_server.records) == 2


def test_a_revoked_app_password_pauses_the_channel_with_what_to_do(bluesky_server: FakeBluesky,
                                                                   tmp_path: Path) -> None:
    send(config(bluesky_server, tmp_path), token="3mfrdl2oobc2a")
    bluesky_server.revoke("wxyz-wxyz-wxyz-wxyz")
    store = queue(tmp_path)
    result = drain_once(store, config(bluesky_server, tmp_path))
    assert result.down and result.sent == 0
    [delivery] = store.deliveries("bluesky")
    assert delivery.state == "pending" and "Invalid identifier or password" in (delivery.last_error or "")
    store.close()
    with pytest.raises(ChannelDownError) as caught:
        send(config(bluesky_server, tmp_path))
    assert "App passwords" in caught.value.hint and "env:BLUESKY_APP_PASSWORD" in caught.value.hint
    assert APP_PASSWORD not in str(caught.value) + caught.value.hint


def test_a_refused_login_is_not_tried_again_within_the_hour(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    bluesky_server.revoke("wxyz-wxyz-wxyz-wxyz")
    seconds = [0.0]

    async def probes(channel: BlueskyChannel) -> list[str]:
        errors = []
        for wait in (0.0, 300.0, 3000.0, 400.0):  # the health probe of a paused channel
            seconds[0] += wait
            with pytest.raises(ChannelDownError) as caught:
                await channel.probe()
            errors.append(str(caught.value))
        return errors

    async def go() -> list[str]:
        async with httpx.AsyncClient(trust_env=False) as http:
            channel = BlueskyChannel(config(bluesky_server, tmp_path), http=http, monotonic=lambda: seconds[0])
            return await probes(channel)

    errors = asyncio.run(go())
    assert len(set(errors)) == 1 and "Invalid identifier or password" in errors[0]
    assert bluesky_server.logins == 2  # at 0 and past the hour, not at 300 s nor at 3300 s
    # The new app password, after a reload (a new channel), logs in at once.
    cfg = config(bluesky_server, tmp_path, app_password=Secret("env:BLUESKY_APP_PASSWORD", "wxyz-wxyz-wxyz-wxyz"))
    assert run(cfg, lambda ch: ch.probe()).startswith(f"@{HANDLE}")
    assert bluesky_server.logins == 3


def test_the_accounts_own_password_is_refused_with_the_hint_to_use_an_app_password(
    bluesky_server: FakeBluesky, tmp_path: Path
) -> None:
    cfg = config(bluesky_server, tmp_path, app_password=Secret("env:BLUESKY_APP_PASSWORD", ACCOUNT_PASSWORD))
    with pytest.raises(ChannelDownError) as caught:
        send(cfg)
    assert "AuthFactorTokenRequired" in str(caught.value) and "use an app password" in caught.value.hint


def test_tokens_that_never_work_pause_the_channel_after_a_few_tries(bluesky_server: FakeBluesky,
                                                                    tmp_path: Path) -> None:
    bluesky_server.born_expired = True
    with pytest.raises(ChannelDownError, match="ExpiredToken"):
        send(config(bluesky_server, tmp_path))
    creates = [r for r in bluesky_server.requests if r.path.endswith("createRecord")]
    assert len(creates) == 3 and bluesky_server.refreshes == 2 and bluesky_server.records == []


def test_a_login_rate_limit_backs_off(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    bluesky_server.fail_logins(429, reset_in=600)
    with pytest.raises(TransientError) as caught:
        send(config(bluesky_server, tmp_path))
    assert caught.value.retry_after is not None and 500 < caught.value.retry_after <= 601
    assert bluesky_server.records == []


# -- errors --------------------------------------------------------------------------------


def test_a_rate_limit_backs_off_until_its_reset(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    bluesky_server.fail_next(429, reset_in=120)
    with pytest.raises(TransientError) as caught:
        send(config(bluesky_server, tmp_path))
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 121
    bluesky_server.fail_next(429, retry_after=30)
    with pytest.raises(TransientError) as again:
        send(config(bluesky_server, tmp_path))
    assert again.value.retry_after == 30
    assert bluesky_server.records == []


def test_rate_limit_wait_reads_the_reset_time() -> None:
    response = httpx.Response(429, headers={"RateLimit-Reset": "1000"})
    assert rate_limit_wait(response, now=900.0) == 100.0
    assert rate_limit_wait(httpx.Response(429, headers={"RateLimit-Reset": "soon"}), now=0.0) is None
    assert rate_limit_wait(httpx.Response(429), now=0.0) is None


def test_through_the_outbox_a_rate_limit_keeps_the_alert_queued(bluesky_server: FakeBluesky,
                                                               tmp_path: Path) -> None:
    bluesky_server.fail_next(429, reset_in=300)
    store = queue(tmp_path)
    result = drain_once(store, config(bluesky_server, tmp_path))
    assert result.sent == 0 and not result.down
    [delivery] = store.deliveries("bluesky")
    assert delivery.next_attempt is not None and delivery.next_attempt >= MOMENT + timedelta(seconds=250)
    store.close()


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_errors_are_transient(bluesky_server: FakeBluesky, tmp_path: Path, code: int) -> None:
    bluesky_server.fail_next(code)
    with pytest.raises(TransientError):
        send(config(bluesky_server, tmp_path))
    assert bluesky_server.records == []


def test_a_timeout_is_transient(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    bluesky_server.delay = 1.0
    with pytest.raises(TransientError, match="did not answer"):
        send(config(bluesky_server, tmp_path, timeout=timedelta(seconds=0.3)))


def test_a_post_the_lexicon_refuses_is_rejected(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    with pytest.raises(MessageRejected, match="TID"):
        send(config(bluesky_server, tmp_path), token="not-a-tid")


def test_an_address_that_is_not_a_pds_is_channel_down(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    with pytest.raises(ChannelDownError) as caught:
        send(config(bluesky_server, tmp_path, service=bluesky_server.url + "/altro"))
    assert "service" in caught.value.hint


def test_delete_removes_the_post_and_a_second_delete_answers_false(bluesky_server: FakeBluesky,
                                                                   tmp_path: Path) -> None:
    posted = send(config(bluesky_server, tmp_path))
    assert posted.remote_id is not None
    assert run(config(bluesky_server, tmp_path), lambda ch: ch.delete(posted.remote_id)) is True
    assert bluesky_server.records == [] and bluesky_server.deleted == ["3mfrdl2oobc2a"]
    assert run(config(bluesky_server, tmp_path), lambda ch: ch.delete(posted.remote_id)) is False
    assert bluesky_server.deleted == ["3mfrdl2oobc2a"]  # not asked again


@pytest.mark.parametrize(("code", "error"), [(503, TransientError), (429, TransientError),
                                             (401, ChannelDownError)])
def test_delete_faults_are_classified_as_sends(bluesky_server: FakeBluesky, tmp_path: Path, code: int,
                                               error: type[Exception]) -> None:
    posted = send(config(bluesky_server, tmp_path))
    assert posted.remote_id is not None
    bluesky_server.fail_deletes(code, retry_after=7 if code == 429 else None)
    with pytest.raises(error) as caught:
        run(config(bluesky_server, tmp_path), lambda ch: ch.delete(posted.remote_id))
    if code == 429:
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == 7
    assert len(bluesky_server.records) == 1


def test_delete_of_an_id_that_is_not_a_post_is_refused_without_a_request(bluesky_server: FakeBluesky,
                                                                         tmp_path: Path) -> None:
    with pytest.raises(DeleteUnsupported, match="cannot delete on this platform"):
        run(config(bluesky_server, tmp_path), lambda ch: ch.delete("12345"))
    assert bluesky_server.requests == []


def test_edit_is_unsupported(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    with pytest.raises(EditUnsupported):
        run(config(bluesky_server, tmp_path), lambda ch: ch.edit(ALERT, remote_id="at://x"))


# -- exactly once --------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["internal", "explicit"])
def test_a_resend_with_the_same_key_is_taken_as_posted(bluesky_server: FakeBluesky, tmp_path: Path,
                                                       answer: str) -> None:
    bluesky_server.duplicate_answer = answer
    first = send(config(bluesky_server, tmp_path))
    again = send(config(bluesky_server, tmp_path))
    assert again == Posted(first.remote_id, verified=True)
    assert len(bluesky_server.records) == 1


def test_a_crash_during_the_request_then_a_restart_posts_once(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    bluesky_server.crash_after_write(hang=2.0)
    cfg = config(bluesky_server, tmp_path, timeout=timedelta(seconds=0.5))
    store = queue(tmp_path)
    first = drain_once(store, cfg)
    assert first.sent == 0  # the answer never came
    [delivery] = store.deliveries("bluesky")
    assert delivery.in_flight and delivery.token is not None and TID_RE.match(delivery.token)
    assert [r.rkey for r in bluesky_server.records] == [delivery.token]
    store.close()

    store = Store.open(tmp_path / "state")  # the restart
    again = drain_once(store, replace(cfg, timeout=timedelta(seconds=5)), MOMENT + timedelta(minutes=1))
    assert again.sent == 1
    assert len(bluesky_server.records) == 1
    [post] = store.posts()
    assert post.remote_id == bluesky_server.records[0].uri
    assert bluesky_server.logins == 1
    store.close()


def test_recover_says_whether_the_post_is_there(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    cfg = config(bluesky_server, tmp_path)
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token="3mfrdl2oobc2a")) is None
    posted = send(cfg)
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token="3mfrdl2oobc2a")) == \
        Posted(posted.remote_id, verified=True)
    assert run(cfg, lambda ch: ch.recover(ALERT, delivery_id="d-1", token=None)) is None


# -- check --online and the configuration --------------------------------------------------


def test_probe_names_the_account(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    description = run(config(bluesky_server, tmp_path), lambda ch: ch.probe())
    assert description == f"@{HANDLE} ({DID}) on 127.0.0.1"
    assert bluesky_server.records == []


def write_config(tmp_path: Path, service: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[bridge]\nstate_dir = "state"\n\n[channels.bsky]\ntype = "bluesky"\nhandle = "{HANDLE}"\n'
        f'app_password = "env:BLUESKY_APP_PASSWORD"\nservice = "{service}"\nlanguage = "de"\n\n'
        '[[feeds]]\nid = "notizie"\nurl = "https://www.comune.example.it/feed"\nchannels = ["bsky"]\n'
    )
    return path


def test_check_online_answers_for_the_account(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path, bluesky_server.url), env={"BLUESKY_APP_PASSWORD": APP_PASSWORD})
    (tmp_path / "state").mkdir()
    out = io.StringIO()
    assert asyncio.run(cmd_check_online(loaded, out)) == 0
    assert f"ok: @{HANDLE} ({DID})" in out.getvalue()
    assert (tmp_path / "state" / SESSION_FILE.format(name="bsky")).exists()  # the daemon reuses it
    bluesky_server.revoke("wxyz-wxyz-wxyz-wxyz")
    out = io.StringIO()
    assert asyncio.run(cmd_check_online(loaded, out)) == 3
    assert "CANNOT POST" in out.getvalue() and "App passwords" in out.getvalue()


def test_the_config_of_a_bluesky_channel(tmp_path: Path) -> None:
    path = write_config(tmp_path, "https://pds.example.it/")
    loaded = load_config(path, env={"BLUESKY_APP_PASSWORD": APP_PASSWORD})
    channel = loaded.channels["bsky"]
    assert (channel.handle, channel.service) == (HANDLE, "https://pds.example.it")
    assert channel.state_dir == tmp_path / "state" and channel.language == "de"
    assert channel.app_password is not None and channel.app_password.value == APP_PASSWORD
    path.write_text(path.read_text().replace(f'handle = "{HANDLE}"\n', "").replace('service = "https://pds.example.it/"',
                                                                                   'service = "pds.example.it"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"BLUESKY_APP_PASSWORD": APP_PASSWORD})
    text = "\n".join(caught.value.errors)
    assert 'handle: is required for a "bluesky" channel' in text
    assert "service: expected an http(s) URL" in text


def test_open_channel_builds_it(bluesky_server: FakeBluesky) -> None:
    async def go() -> str:
        async with httpx.AsyncClient(trust_env=False) as http:
            channel = open_channel(config(bluesky_server, None), http=http)
            assert isinstance(channel, BlueskyChannel) and channel.guarantee == "exactly-once"
            return await channel.prepare("d-1") or ""

    assert TID_RE.match(asyncio.run(go()))
    with pytest.raises(ValueError, match="needs app_password"):
        BlueskyChannel(ChannelConfig(name="b", type="bluesky", handle=HANDLE), http=httpx.AsyncClient())


def test_check_lists_the_channel_without_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.cli import cmd_check

    monkeypatch.setenv("BLUESKY_APP_PASSWORD", APP_PASSWORD)
    (tmp_path / "state").mkdir()
    out = io.StringIO()
    assert cmd_check(write_config(tmp_path, "https://pds.example.it"), out) == 0
    line = next(line for line in out.getvalue().splitlines() if line.strip().startswith("bsky"))
    assert f"https://pds.example.it handle={HANDLE} app_password=env:BLUESKY_APP_PASSWORD" in line
    assert APP_PASSWORD not in out.getvalue()


def test_the_consoles_phone_preview_shows_the_bluesky_post(tmp_path: Path) -> None:
    from bridge.console.views import phone_preview

    preview = phone_preview(ChannelConfig(name="bsky", type="bluesky"), ALERT)
    assert (preview.platform_it, preview.limit) == ("Bluesky", 300)
    assert preview.length == render.bluesky_length(render.plain(ALERT))


def test_a_post_refused_with_its_card_goes_again_without_it(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    bluesky_server.fail_next(400)
    store = queue(tmp_path)
    first = drain_once(store, config(bluesky_server, tmp_path, card="always"))
    assert first.sent == 1  # the plainest form, at once
    [record] = bluesky_server.records
    assert "embed" not in record.value and record.value["text"] == render.plain(ALERT)
    store.close()


def test_a_session_renewed_by_another_process_is_taken_from_the_file(bluesky_server: FakeBluesky,
                                                                     tmp_path: Path) -> None:
    # The daemon and `check --online` share the file: one refreshes, which ends the other's
    # refresh token; the other then takes the renewed session instead of logging in again.
    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            daemon = BlueskyChannel(config(bluesky_server, tmp_path), http=http, now=lambda: MOMENT)
            await daemon.send(ALERT, delivery_id="a", token="3mfrdl2oobc2a")
            bluesky_server.expire_access()
            check = BlueskyChannel(config(bluesky_server, tmp_path), http=http, now=lambda: MOMENT)
            await check.probe()
            bluesky_server.expire_access()
            await daemon.send(ALERT, delivery_id="b", token="3mfrdl2oobc2b")

    asyncio.run(go())
    assert bluesky_server.logins == 1
    assert bluesky_server.refreshes == 2  # the check's, then the daemon's of the file's session
    assert len(bluesky_server.records) == 2


def test_the_card_is_drawn_in_the_style_the_bridge_gives(bluesky_server: FakeBluesky, tmp_path: Path) -> None:
    from bridge.cards import draw_card, load_style
    from bridge.config import CardSettings

    style = load_style(CardSettings(name="Comune di Esempio", colours={"notizie": "#2e7d32"}))

    async def post(channel: BlueskyChannel) -> Posted:
        return await channel.send(ALERT, delivery_id="d-1", token="3mfrdl2oobc2a")

    async def go() -> Posted:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await post(BlueskyChannel(config(bluesky_server, tmp_path, card="always"), http=http,
                                             now=lambda: MOMENT, style=style))

    asyncio.run(go())
    [blob] = bluesky_server.blobs
    assert blob.data == draw_card(ALERT, size="link", style=style, tz=ZoneInfo("Europe/Rome"))
    assert blob.data != draw_card(ALERT, size="link", tz=ZoneInfo("Europe/Rome"))  # not the plain style
