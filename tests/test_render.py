"""bridge.render: plain (the canonical length), WhatsApp markup, console block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bridge import render
from bridge.item import Alert

LINK = "https://www.comune.esempio.it/novita/avviso_2026"


def make_alert(
    title: str = "Avviso",
    summary: str = "",
    *,
    published: datetime | None = None,
    urgent: bool = False,
) -> Alert:
    return Alert(
        feed_id="notizie",
        feed_name="Notizie dal Comune",
        title=title,
        summary=summary,
        link=LINK,
        published=published,
        urgent=urgent,
    )


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        pytest.param(
            make_alert("Avviso", "Il servizio riprende lunedì."),
            f"Avviso\n\nIl servizio riprende lunedì.\n\n{LINK}",
            id="with-summary",
        ),
        pytest.param(make_alert("Avviso"), f"Avviso\n\n{LINK}", id="title-and-link"),
        pytest.param(make_alert(""), LINK, id="link-only"),
    ],
)
def test_plain(alert: Alert, expected: str) -> None:
    assert render.plain(alert) == expected


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        pytest.param(
            make_alert("Avviso", "Il servizio riprende lunedì."),
            f"*Avviso*\n\nIl servizio riprende lunedì.\n\n{LINK}",
            id="with-summary",
        ),
        pytest.param(make_alert("Avviso"), f"*Avviso*\n\n{LINK}", id="title-and-link"),
        pytest.param(
            make_alert("Bando *urgente* per_tutti", "Codice ATS VEN_06 e ~circa~ `10` posti."),
            f"*Bando ∗urgente∗ perˍtutti*\n\nCodice ATS VENˍ06 e ∼circa∼ ˋ10ˋ posti.\n\n{LINK}",
            id="markup-neutralised-link-untouched",
        ),
        pytest.param(make_alert(""), LINK, id="link-only"),
    ],
)
def test_whatsapp(alert: Alert, expected: str) -> None:
    assert render.whatsapp(alert) == expected


def test_whatsapp_adds_only_the_bold_markers() -> None:
    alert = make_alert("Avviso", "Il servizio riprende lunedì.")
    assert len(render.whatsapp(alert)) == len(render.plain(alert)) + 2


@pytest.mark.parametrize(
    ("alert", "header"),
    [
        pytest.param(
            make_alert(published=datetime(2026, 8, 20, 11, 5, tzinfo=UTC)),
            "── Notizie dal Comune · 2026-08-20 13:05 CEST",  # told in Europe/Rome by default
            id="utc",
        ),
        pytest.param(
            make_alert(published=datetime(2026, 8, 20, 13, 5, tzinfo=timezone(timedelta(hours=2)))),
            "── Notizie dal Comune · 2026-08-20 13:05 CEST",
            id="offset-converted",
        ),
        pytest.param(make_alert(), "── Notizie dal Comune", id="undated"),
        pytest.param(
            make_alert(published=datetime(2026, 8, 20, 11, 5), urgent=True),
            "── Notizie dal Comune · 2026-08-20 13:05 CEST · URGENTE",  # a naive time is UTC
            id="naive-urgent",
        ),
    ],
)
def test_console(alert: Alert, header: str) -> None:
    assert render.console(alert) == f"{header}\n{render.plain(alert)}"
