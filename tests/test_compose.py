"""A composed alert's pure decision (`bridge.compose`): what it makes, each refusal with its
code and both wordings, the test message, and the reserved feed id."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.approval import ActionRefused
from bridge.compose import (
    BAD_CHANNEL,
    BAD_IMAGE,
    BAD_LINK,
    BAD_TEXT,
    BAD_TITLE,
    COMPOSE,
    TEST,
    TEST_TEXT,
    TOO_LONG,
    Composition,
    decide,
    delivery_id,
    posting_channels,
)
from bridge.config import MANUAL_FEED, Config, ConfigError, parse_config

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
SITE = "https://www.comune.esempio.it/novita/neve/"


def config(extra: str = "", feed_id: str = "notizie") -> Config:
    text = (f'[[feeds]]\nid = "{feed_id}"\nurl = "https://www.comune.esempio.it/feed/"\nchannels = ["wa", "tg"]\n'
            'link_domains = ["protezionecivile.esempio.it"]\napprove = true\n'
            '[[feeds]]\nid = "eventi"\nurl = "https://eventi.esempio-turismo.it/rss"\nchannels = ["tg"]\n'
            '[ops]\nchannel = "tecnici"\n'
            '[channels.wa]\ntype = "waha"\nurl = "http://127.0.0.1:1"\nchat_id = "1@newsletter"\n'
            '[channels.tg]\ntype = "telegram"\ntoken = "env:TG"\nchat_id = "@comune"\n'
            f'[channels.tecnici]\ntype = "console"\n{extra}')
    return parse_config(tomllib.loads(text), path=Path("/nowhere/config.toml"), env={}, resolve_secrets=False)


CONFIG = config()


def composition(**changes: object) -> Composition:
    values: dict[str, object] = {"title": "Neve: scuole chiuse", "text": "Domani le scuole restano chiuse.",
                                 "link": SITE}
    values.update(changes)
    return Composition("c1", **values)  # type: ignore[arg-type]


def refused(asked: Composition, conf: Config = CONFIG) -> ActionRefused:
    with pytest.raises(ActionRefused) as caught:
        decide(asked, conf, now=NOW, who="anna")
    assert str(caught.value) and caught.value.it, "a refusal has its English and its Italian line"
    return caught.value


def test_a_composed_alert_goes_to_every_channel_the_feeds_post_to_as_one_delivery_each() -> None:
    composed = decide(composition(), CONFIG, now=NOW, who="anna")
    assert [d.channel for d in composed.deliveries] == ["wa", "tg"] == list(posting_channels(CONFIG))
    assert [d.id for d in composed.deliveries] == [delivery_id("c1", "wa"), delivery_id("c1", "tg")]
    assert len({d.id for d in composed.deliveries}) == 2
    for d in composed.deliveries:
        # An editor wrote it: pending although its feed and channel want approval; not urgent.
        assert (d.state, d.urgent, d.send_now, d.feed_id, d.alert.feed_id) == ("pending", False, False,
                                                                                MANUAL_FEED, MANUAL_FEED)
        assert (d.acted, d.acted_by, d.acted_at, d.created) == (COMPOSE, "anna", NOW, NOW)
        assert (d.alert.title, d.alert.summary, d.alert.link) == ("Neve: scuole chiuse",
                                                                  "Domani le scuole restano chiuse.", SITE)


def test_ids_are_stable_per_compose_id_and_channel() -> None:
    assert delivery_id("c1", "wa") == delivery_id("c1", "wa") != delivery_id("c2", "wa") != delivery_id("c1", "tg")


def test_urgent_channels_image_and_whitespace_as_asked() -> None:
    composed = decide(composition(urgent=True, channels=("tg", "tg"), image_url="https://www.comune.esempio.it/n.jpg",
                                  title="  Neve:\n scuole\u00a0chiuse "),
                      CONFIG, now=NOW, who="anna")
    (only,) = composed.deliveries
    assert (only.channel, only.urgent, only.alert.urgent, only.alert.image_url) == (
        "tg", True, True, "https://www.comune.esempio.it/n.jpg")
    assert only.alert.title == "Neve: scuole chiuse"
    assert "urgent" in composed.message


@pytest.mark.parametrize("link", [SITE, "https://protezionecivile.esempio.it/allerta", "https://eventi.esempio-turismo.it/x"])
def test_a_link_on_any_feed_s_domains_is_accepted(link: str) -> None:
    assert decide(composition(link=link), CONFIG, now=NOW, who="anna").deliveries[0].alert.link == link


@pytest.mark.parametrize("link", ["https://evil.example/x", "https://comune.esempio.it.evil.com/", "ftp://www.comune.esempio.it/",
                                  "https://www.comune.esempio.it/a b", "https://www.comune.esempio.it@evil.example/",
                                  "https://www.comune.esempio.it:8443/", "/novita/neve", "", "   "])
def test_a_link_off_the_comune_s_domains_is_refused(link: str) -> None:
    refusal = refused(composition(link=link))
    assert refusal.code == BAD_LINK
    if link.strip():
        assert "esempio.it" in refusal.it and "esempio.it" in str(refusal)


@pytest.mark.parametrize("image", ["http://www.comune.esempio.it/n.jpg", "https:///n.jpg", "https://127.0.0.1/n.jpg",
                                   "https://[::1]/n.jpg", "https://10.0.0.5/n.jpg", "n.jpg", "https://x:99999/n.jpg"])
def test_an_image_that_the_bridge_would_not_fetch_is_refused(image: str) -> None:
    assert refused(composition(image_url=image)).code == BAD_IMAGE


def test_an_empty_image_is_no_image() -> None:
    assert decide(composition(image_url="  "), CONFIG, now=NOW, who="anna").deliveries[0].alert.image_url is None


def test_title_and_text_are_needed() -> None:
    assert refused(composition(title=" \n")).code == BAD_TITLE
    assert refused(composition(text="\u200b ")).code == BAD_TEXT


def test_a_text_with_an_address_off_the_comune_s_site_is_refused() -> None:
    refusal = refused(composition(text="Info su www.evil.example oggi"))
    assert refusal.code == BAD_TEXT and "evil.example" in str(refusal)


def test_an_alert_over_a_channel_s_limit_is_refused_naming_the_channel() -> None:
    refusal = refused(composition(text="Parola " * 80, channels=("wa",)))
    assert refusal.code == TOO_LONG and "wa" in str(refusal) and "troppo lungo" in refusal.it

    assert decide(composition(text="Parola " * 30), CONFIG, now=NOW, who="anna").deliveries


def test_unknown_and_ops_channels_are_refused() -> None:
    refusal = refused(composition(channels=("wa", "facebook")))
    assert refusal.code == BAD_CHANNEL and "facebook" in str(refusal) and "facebook" in refusal.it
    assert refused(composition(channels=("tecnici",))).code == BAD_CHANNEL


def test_the_test_message_is_marked_goes_now_to_one_channel_and_links_the_comune_s_site() -> None:
    composed = decide(Composition("t1", channels=("tecnici",), test=True), CONFIG, now=NOW, who="root")
    (only,) = composed.deliveries
    assert only.alert.summary == TEST_TEXT and TEST_TEXT.startswith("Messaggio di prova di channel-bridge:")
    assert (only.send_now, only.urgent, only.acted, only.channel) == (True, False, TEST, "tecnici")
    assert only.alert.link == "https://www.comune.esempio.it/"
    assert refused(Composition("t2", test=True)).code == BAD_CHANNEL
    assert refused(Composition("t3", channels=("wa", "tg"), test=True)).code == BAD_CHANNEL
    assert refused(Composition("t4", channels=("nessuno",), test=True)).code == BAD_CHANNEL


def test_no_feed_may_take_the_manual_feed_id() -> None:
    with pytest.raises(ConfigError) as caught:
        config(feed_id=MANUAL_FEED)
    assert MANUAL_FEED in str(caught.value.errors)


@pytest.mark.parametrize(("text", "words"), [
    ("   ", "vuoto"), ("Dettagli su https://www.altro.example/pagina", "fuori dal sito del comune"),
    ("lungo " * 200, "troppo lungo"), ("Via Roma chiusa dal 14 dicembre.", "che la fonte non dice")])
def test_an_edited_text_refused_on_in_coda_is_said_in_italian(text: str, words: str) -> None:
    from bridge.approval import APPROVE, Action
    from bridge.approval import decide as decide_action
    from bridge.console.editor import bad_text_it
    from bridge.item import Alert
    from bridge.models import Delivery

    alert = Alert(feed_id="notizie", feed_name="Notizie", title="Via Roma chiusa", summary="Via Roma chiusa.",
                  link="https://www.comune.esempio.it/novita/via-roma/")
    queued = Delivery(id="a1", channel="wa", feed_id="notizie", alert=alert, created=NOW, order=1.0, state="awaiting")
    with pytest.raises(ActionRefused) as caught:
        decide_action(Action(APPROVE, "a1", text=text), queued, config=CONFIG, now=NOW, who="anna")
    line = bad_text_it(caught.value)
    assert words in line and caught.value.it[1:] in line
    assert "edited text" not in line and "characters" not in line
