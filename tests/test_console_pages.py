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
    for site in served(tmp_path, [delivery("d1", "whatsapp", "Mercato")]):
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
