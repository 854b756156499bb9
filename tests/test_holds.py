"""A held item explained for the office: each reason the guard gives, made by the guard's own
functions, has its kind, its Italian sentence and what to do; none falls to "other", so a
reworded reason cannot go unexplained."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import parse_config
from bridge.holds import (
    HOLD_HIDDEN_BREAK,
    HOLD_NO_DOMAIN,
    HOLD_NO_LINK,
    HOLD_NOT_WEB,
    HOLD_NOTHING_TO_SAY,
    HOLD_OFF_SITE,
    HOLD_OTHER,
    HOLD_PORT,
    HOLD_TITLE_ADDRESS,
    HOLD_USER_INFO,
    explain,
)
from bridge.item import Item
from bridge.links import link_problem
from bridge.summary import screen_title
from bridge.verdict import NO_LINK, NOTHING_TO_SAY, hold_reason

FEED = "https://www.comune.esempio.it/feed/"


def guard(link: str, feed_url: str = FEED) -> str:
    problem = link_problem(link, feed_url=feed_url, link_domains=())
    assert problem is not None
    return problem


def title_problem() -> str:
    problem = screen_title("Vedi https://www.altro-sito.example/pagina", feed_url=FEED).problem
    assert problem is not None
    return problem


def no_link_reason(why: str) -> str:
    feed = parse_config({"bridge": {"state_dir": "s"}, "feeds": [{"id": "n", "url": FEED, "channels": ["c"]}],
                         "channels": {"c": {"type": "console"}}}, path=Path("/nonexistent/config.toml"),
                        env={}).feeds[0]
    reason = hold_reason(Item(feed_id="n", title="Avviso", link=None, guid=None, text="", no_link_reason=why), feed)
    assert reason is not None
    return reason


REASONS = [
    (lambda: guard("https://www.comune.esempio.it.evil.example/bando"), HOLD_OFF_SITE),
    (lambda: guard("https://www.comune.esempio.it:8443/bando"), HOLD_PORT),
    (lambda: guard("https://www.comune.esempio.it/a\u00a0https://evil.example/x"), HOLD_HIDDEN_BREAK),
    (lambda: guard("https://www.comune.esempio.it@evil.example/x"), HOLD_USER_INFO),
    (lambda: guard("javascript:alert(1)"), HOLD_NOT_WEB),
    (lambda: guard("https://www.comune.esempio.it/x", feed_url="feed.xml"), HOLD_NO_DOMAIN),
    (lambda: guard(""), HOLD_NO_LINK),
    (lambda: NO_LINK, HOLD_NO_LINK),
    (lambda: no_link_reason('the item has no link, and its guid is not a permalink (isPermaLink="false")'),
     HOLD_NO_LINK),
    (lambda: NOTHING_TO_SAY, HOLD_NOTHING_TO_SAY),
    (title_problem, HOLD_TITLE_ADDRESS),
]


@pytest.mark.parametrize(("make", "kind"), REASONS)
def test_every_reason_of_the_guard_has_its_kind(make: object, kind: str) -> None:
    reason = make()  # type: ignore[operator]
    hold = explain(reason, link="https://www.comune.esempio.it.evil.example/bando", feed_id="notizie",
                   feed_url=FEED)
    assert hold.kind == kind != HOLD_OTHER
    assert hold.reason and hold.remedy and hold.remedy_en
    assert reason not in hold.reason  # said in Italian, not in the guard's English


def test_an_off_site_link_names_the_domain_and_the_setting_to_change() -> None:
    reason = guard("https://www.comune.esempio.it.evil.example/bando")
    hold = explain(reason, link="https://www.comune.esempio.it.evil.example/bando", feed_id="notizie",
                   feed_url=FEED, link_domains=("esempio.org",))
    assert hold.reason == ("il link porta a www.comune.esempio.it.evil.example, fuori dai domini del feed "
                           "(esempio.it, esempio.org)")
    assert "«evil.example»" in hold.remedy and "link_domains" in hold.remedy and "«notizie»" in hold.remedy
    assert "add it to link_domains of feed \"notizie\"" in hold.remedy_en


def test_a_reason_it_does_not_know_is_kept_as_said() -> None:
    hold = explain("something new", link=None, feed_id="notizie", feed_url=None)
    assert hold.kind == HOLD_OTHER and hold.reason.endswith("something new")
