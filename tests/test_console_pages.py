"""The console's *Stato* and *In coda* pages over a real store: the facts of `status`, each
queued alert with its reason and the channel's own text as a phone shows it, and feed text,
which is hostile, shown as text."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from console.harness import NOW, delivery, served

from bridge.config import OPS_FEED
from bridge.console import views
from bridge.console.markup import telegram_html, whatsapp_html
from bridge.ops import ops_alert
from bridge.status import OPS_DAYS
from bridge.store import Delivery, Store

HOSTILE = [
    "<script>alert('x')</script> Chiusura scuole",
    '<img src=x onerror="alert(1)"> Avviso',
    "Bando \u202egnp.exe\u202c *non grassetto* _</em>_",
]


def test_whatsapp_markup_is_rendered_and_everything_else_escaped() -> None:
    assert str(whatsapp_html("*Titolo* e _corsivo_ ~barrato~")) == \
        "<strong>Titolo</strong> e <em>corsivo</em> <s>barrato</s>"
    assert str(whatsapp_html("2*3*4 snake_case_name")) == "2*3*4 snake_case_name"
    assert str(whatsapp_html("<b>x</b> & y")) == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    linked = str(whatsapp_html('vedi https://www.comune.example.it/a?b=1&c="2" javascript:alert(1)'))
    assert '<a href="https://www.comune.example.it/a?b=1&amp;c=' in linked
    assert "javascript:alert(1)" in linked and 'href="javascript' not in linked
    assert str(telegram_html('<b>T</b> &lt;i&gt; <a href="javascript:x">l</a><script>')) == \
        "<strong>T</strong> &lt;i&gt; <a>l</a>&lt;script&gt;"


def test_queue_shows_each_alert_with_its_reason_and_phone_preview(tmp_path: Path) -> None:
    queued = [
        delivery("d1", "whatsapp", "Lavori in via Roma", "Chiusa dal 9 dicembre.", order=1.0),
        delivery("d2", "whatsapp", "Mercato di Natale", order=2.0),
        delivery("d3", "telegram", "Lavori in via Roma", "Chiusa dal 9 dicembre.", order=1.0,
                 next_attempt=NOW + timedelta(minutes=5), attempts=1, last_error="HTTP 502"),
    ]
    for site in served(tmp_path, queued):
        page = site.login().get("/coda")
        assert page.status_code == 200
        text = page.text
        # The WhatsApp text is the renderer's: the title in bold, rendered bold.
        assert "<strong>Lavori in via Roma</strong>" in text
        assert "in coda dietro 1 avviso" in text
        assert "nuovo tentativo dopo un errore: HTTP 502" in text
        assert "07/12/2026 11:35" in text  # the retry, in Rome's time
        assert "/ 4096 caratteri" in text
        # Telegram's own HTML, rendered, not shown as tags.
        assert "&lt;b&gt;" not in text


def test_quiet_hours_hold_an_alert_and_say_until_when(tmp_path: Path) -> None:
    for site in served(tmp_path, [delivery("d1", "whatsapp", "Mercato")]):
        site.daemon.wall = NOW.replace(hour=22)  # 23:00 in Rome
        text = site.login().get("/coda").text
        assert "ore di silenzio (22:00-07:00): parte alla fine" in text
        assert "08/12/2026 07:00" in text


def test_hostile_feed_text_is_shown_as_text(tmp_path: Path) -> None:
    queued = [delivery(f"h{n}", "whatsapp", title, "javascript:alert(1) <iframe src=x>", order=float(n))
              for n, title in enumerate(HOSTILE)]
    for site in served(tmp_path, queued):
        text = site.login().get("/coda").text
        assert "<script>" not in text and "<img src=x" not in text and "<iframe" not in text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Chiusura scuole" in text
        assert 'onerror="alert(1)"' not in text and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in text
        assert 'href="javascript' not in text
        assert "\u202egnp.exe\u202c" in text  # shown, isolated by the page's CSS (unicode-bidi)


def test_status_page_has_the_facts_of_status(tmp_path: Path) -> None:
    waiting = [delivery("d1", "whatsapp", "Mercato"),
               dataclasses.replace(delivery("a1", "whatsapp", "Da approvare 1"), state="awaiting"),
               dataclasses.replace(delivery("a2", "whatsapp", "Da approvare 2"), state="awaiting")]
    for site in served(tmp_path, waiting):
        store = site.daemon.store
        store.save_feed(dataclasses.replace(
            store.feed_state("notizie"), last_poll=NOW, failures=4, failing_since=NOW - timedelta(hours=2),
            last_error="HTTP 503 from www.comune.example.it"))
        store.set_channel_pause("telegram", "401 Unauthorized: the bot token was refused")
        text = site.login().get("/").text
        assert "Notizie dal Comune" in text and "in errore" in text
        assert "HTTP 503 from www.comune.example.it" in text
        assert "07/12/2026 09:30" in text  # failing since, in Rome's time
        assert "IN PAUSA:</strong> 401 Unauthorized: the bot token was refused" in text
        assert "Che fare:" in text
        row = text.split("<td>whatsapp</td>", 1)[1].split("</tr>", 1)[0]
        assert "<th>Da approvare</th>" in text
        assert row.count("<td>") >= 5 and [cell.split("</td>")[0] for cell in row.split("<td>")[1:6]] == \
            ["waha", "1", "0", "2", "0"]  # type, queue, held, to approve, stopped


def test_status_page_lists_the_feeds_needing_a_person_first_a_page_at_a_time(tmp_path: Path) -> None:
    # 250 feeds: three failing, one stale; the rest polled and fine. The failing ones come
    # first on page 1 whatever their names; the list is paged; a health link lists only those.
    extra = "".join(f'''
[[feeds]]
id = "f{n:03d}"
name = "Feed {n:03d}"
url = "feed.xml"
channels = ["whatsapp"]
link_domains = ["comune.example.it"]
''' for n in range(249))
    for site in served(tmp_path, extra=extra):
        store = site.daemon.store
        for feed in site.daemon.config.feeds:
            store.save_feed(dataclasses.replace(store.feed_state(feed.id), last_poll=NOW, last_success=NOW))
        for fid in ("f200", "f100", "f248"):
            store.save_feed(dataclasses.replace(
                store.feed_state(fid), failures=9, failing_since=NOW - timedelta(hours=3),
                last_error=f"HTTP 503 for {fid}"))
        client = site.login()

        def names(text: str) -> list[str]:
            table = text.split('<table id="feed">', 1)[1].split("</table>", 1)[0]
            return [cell.split("</span>")[0] for cell in table.split('<span class="name">')[1:]]

        first = client.get("/").text
        shown = names(first)
        assert len(shown) == views.FEEDS_PER_PAGE
        assert shown[:3] == ["Feed 100", "Feed 200", "Feed 248"]  # failing first, then by name
        assert "Feed 1–100 di 250" in first and "pagina 1 di 3" in first
        assert "250: 247 regolari, 3 in errore" in first
        last = client.get("/?pagina=3").text
        assert len(names(last)) == 50 and "pagina 3 di 3" in last and 'rel="next"' not in last
        assert names(client.get("/?pagina=99").text) == names(last)  # past the end: the last page
        failing = client.get("/?salute=failing").text
        assert names(failing) == ["Feed 100", "Feed 200", "Feed 248"]
        assert "HTTP 503 for f248" in failing and "pagina" not in failing.split('<table id="feed">')[1]
        assert names(client.get("/?salute=nessuna&pagina=x").text) == shown  # a bad filter: every feed


def test_status_page_lists_the_ops_alerts_of_the_last_days(tmp_path: Path) -> None:
    extra = """
    [channels.ced]
    type = "console"

    [ops]
    channel = "ced"
    """

    def ops(ident: str, subject: str, created: datetime) -> Delivery:
        alert = ops_alert(subject, "message", "hint", created, ZoneInfo("Europe/Rome"))
        return Delivery(id=ident, channel="ced", feed_id=OPS_FEED, alert=alert, created=created, order=1.0)

    old = ops("o1", "feed notizie failing", NOW - timedelta(days=OPS_DAYS + 1))
    recent = ops("o2", "channel telegram paused", NOW - timedelta(days=2))
    waiting = ops("o3", "whatsapp session logged out", NOW - timedelta(hours=1))
    for site in served(tmp_path, [old, recent, waiting], extra=extra):
        store = site.daemon.store
        store.record_post(old, None, old.created)
        store.record_post(recent, None, recent.created)
        text = site.login().get("/").text
        assert "channel-bridge: channel telegram paused" in text
        assert "channel-bridge: whatsapp session logged out" in text
        assert "feed notizie failing" not in text  # older than the page's days
        assert text.index("whatsapp session logged out") < text.index("channel telegram paused")
        assert "05/12/2026 11:30</td><td>channel-bridge: channel telegram paused</td><td>ced</td>" in text
        # After a restart the posted ones come from the history.
        store.close()
        site.daemon.store = Store.open(site.daemon.config.bridge.state_dir)
        try:
            assert "channel-bridge: channel telegram paused" in site.login().get("/").text
        finally:
            site.daemon.store.close()
            site.daemon.store = store


def telegram_previews(html: str) -> list[str]:
    """The Telegram phone previews of a page, each its figure's HTML."""
    return [part.split("</figure>")[0] for part in html.split('<figure class="phone phone-telegram"')[1:]]


def test_a_whatsapp_alert_shows_its_telegram_rendering_beside_it(tmp_path: Path) -> None:
    """The feed posts to WhatsApp and Telegram: each WhatsApp alert also shows, beside it, the
    text the Telegram channel sends (its own queued delivery of the item when there is one),
    in Telegram's HTML rendered, counted against Telegram's limit."""
    queued = [
        delivery("w1", "whatsapp", "Lavori <urgenti> & via Roma", "Chiusa dal 9 dicembre.", order=1.0),
        delivery("t1", "telegram", "Lavori <urgenti> & via Roma", "Chiusa dal 9 dicembre.", order=1.0,
                 link="https://www.comune.example.it/n/1?utm_source=telegram"),
        delivery("w2", "whatsapp", "Mercato di Natale", order=2.0),  # posted on Telegram already
        # Another item at the same place in the Telegram queue, queued by the same poll: not w2's.
        delivery("t9", "telegram", "Avviso di deposito", order=2.0, link="https://www.comune.example.it/n/9"),
    ]
    for site in served(tmp_path, queued):
        text = site.login().get("/coda").text
        whatsapp_row = text.split('id="d-w1"')[1].split("</li>")[0]
        [beside] = telegram_previews(whatsapp_row)
        assert "<strong>Lavori &lt;urgenti&gt; &amp; via Roma</strong>" in beside  # Telegram's <b>, rendered
        assert "utm_source=telegram" in beside  # the Telegram delivery's own text, not WhatsApp's
        assert "/ 4096 caratteri" in beside and "telegram · Telegram" in beside
        assert "<strong>Lavori &lt;urgenti&gt; &amp; via Roma</strong>" in whatsapp_row.split("<figure")[1]
        second = text.split('id="d-w2"')[1].split("</li>")[0]
        [other] = telegram_previews(second)
        assert "<strong>Mercato di Natale</strong>" in other and "Avviso di deposito" not in other
        telegram_row = text.split('id="d-t1"')[1].split("</li>")[0]
        assert telegram_previews(telegram_row) and "phone-whatsapp" not in telegram_row


def test_a_mastodon_rendering_is_plain_text_against_its_limit(tmp_path: Path) -> None:
    extra = """
    [channels.mastodon]
    type = "mastodon"
    url = "http://127.0.0.1:9"
    token = "env:MASTODON_TOKEN"
    """
    long_summary = "Una frase lunga sulla chiusura di via Roma per lavori alla rete idrica. " * 12
    queued = [delivery("w1", "whatsapp", "Lavori *in* via <Roma>", long_summary, order=1.0)]
    for site in served(tmp_path, queued, extra=extra):
        feed = site.daemon.config.feeds[0]
        site.daemon.config = dataclasses.replace(site.daemon.config, feeds=(
            dataclasses.replace(feed, channels=(*feed.channels, "mastodon")),))
        row = site.login().get("/coda").text.split('id="d-w1"')[1].split("</li>")[0]
        mastodon = row.split('<figure class="phone phone-mastodon"')[1].split("</figure>")[0]
        assert "Lavori ∗in∗ via" not in mastodon and "Lavori *in* via &lt;Roma&gt;" in mastodon  # plain, escaped
        assert "<strong>" not in mastodon
        assert "/ 500 caratteri" in mastodon and "…" in mastodon  # fitted to Mastodon's 500, as it will post


def test_items_held_by_the_link_guard_are_listed_with_the_reason_and_what_to_do(tmp_path: Path) -> None:
    from bridge.models import FeedState, HeldItem
    from bridge.waits import HELD_DAYS

    link = "https://www.comune.example.it.evil.example/bando?<script>"
    reason = ("the link points to www.comune.example.it.evil.example, outside the feed's domains "
              "(comune.example.it)")
    held = [HeldItem("h1", "whatsapp", "<script>alert(1)</script> Bando", link, reason, NOW - timedelta(hours=1)),
            HeldItem("h2", "telegram", "<script>alert(1)</script> Bando", link, reason, NOW - timedelta(hours=1)),
            HeldItem("h0", "whatsapp", "Vecchio", link, reason, NOW - timedelta(days=HELD_DAYS + 1))]
    for site in served(tmp_path, [delivery("w1", "whatsapp", "Mercato", order=1.0)]):
        site.daemon.store.save_feed(dataclasses.replace(FeedState("notizie"), held=tuple(held)))
        text = site.login().get("/coda").text
        row = text.split('id="d-h1"')[1].split("</li>")[0]
        assert "trattenuto" in row
        assert "il link porta a www.comune.example.it.evil.example, fuori dai domini del feed" in row
        assert "Che cosa fare" in row and "link_domains" in row and "«evil.example»" in row
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Bando" in row and "<script>" not in text
        assert "bando?&lt;script&gt;" in row and "<a " not in row  # the held link is shown, never a link
        assert 'id="d-h2"' in text and 'id="d-h0"' not in text  # older than HELD_DAYS: gone
        assert text.index('id="d-w1"') < text.index('id="d-h1"')  # after the channel's queue


def test_telegram_links_a_bare_address_as_telegram_does() -> None:
    shown = str(telegram_html("<b>T &amp; U</b>\n\nhttps://www.comune.example.it/n/1?a=1&amp;b=2 <a href=\"https://x.it/\">"
                              "https://y.it/</a> javascript:alert(1)"))
    assert shown.startswith("<strong>T &amp; U</strong>\n\n<a href=\"https://www.comune.example.it/n/1?a=1&amp;b=2\"")
    assert shown.count("<a ") == 2 and "https://y.it/</a>" in shown  # no link inside a link
    assert "javascript:alert(1)" in shown and 'href="javascript' not in shown
