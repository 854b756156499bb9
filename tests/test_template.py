"""bridge.template: safe placeholders, layout, emoji, dates; render.plain/whatsapp through it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge import render
from bridge.item import Alert
from bridge.template import (
    DEFAULT_TEMPLATE,
    EMOJI_TEMPLATE,
    TemplateError,
    emoji_for,
    italian_date,
    parse_template,
    values_for,
)

LINK = "https://www.comune.esempio.it/novita/avviso"


def make_alert(summary: str = "Il servizio riprende lunedì.", **kwargs: object) -> Alert:
    fields: dict[str, object] = {
        "feed_id": "notizie",
        "feed_name": "Comune di Esempio",
        "title": "Avviso",
        "summary": summary,
        "link": LINK,
        "published": datetime(2026, 8, 7, 22, 30, tzinfo=UTC),
    }
    fields.update(kwargs)
    return Alert(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "alert", "expected"),
    [
        pytest.param(
            DEFAULT_TEMPLATE.source, make_alert(), f"Avviso\n\nIl servizio riprende lunedì.\n\n{LINK}", id="default"
        ),
        pytest.param(DEFAULT_TEMPLATE.source, make_alert(""), f"Avviso\n\n{LINK}", id="no-summary-no-blank-run"),
        pytest.param(
            DEFAULT_TEMPLATE.source,
            make_alert(urgent=True, categories=("Viabilità",)),
            f"Avviso\n\nIl servizio riprende lunedì.\n\n{LINK}",
            id="default-has-no-emoji",
        ),
        pytest.param(
            EMOJI_TEMPLATE.source,
            make_alert(urgent=True),
            f"🚨 Avviso\n\nIl servizio riprende lunedì.\n\n{LINK}",
            id="urgent-marker",
        ),
        pytest.param(EMOJI_TEMPLATE.source, make_alert(), f"Avviso\n\nIl servizio riprende lunedì.\n\n{LINK}",
                     id="emoji-template-without-emoji"),
        pytest.param(
            "{emoji} {title} · {feed}\n{date}\n\n{summary}\n👉 {link}",
            make_alert(categories=("Viabilità",)),
            f"🚧 Avviso · Comune di Esempio\n8 agosto 2026\n\nIl servizio riprende lunedì.\n👉 {LINK}",
            id="all-placeholders-rome-date",
        ),
        pytest.param(
            "{title}\n{date}\n{summary}\n{link}",
            make_alert("", published=None),
            f"Avviso\n{LINK}",
            id="empty-lines-dropped",
        ),
        pytest.param("{{{title}}} {link}", make_alert(), f"{{Avviso}} {LINK}", id="escaped-braces"),
    ],
)
def test_render_plain(source: str, alert: Alert, expected: str) -> None:
    assert render.plain(alert, parse_template(source)) == expected


@pytest.mark.parametrize(
    "source",
    [
        "{title.__class__}",
        "{link[0]}",
        "{title!r}",
        "{title:>100}",
        "{body}",
        "{}",
        "{0}",
        "{title",
        "title}",
        "{__import__('os').system('x')}",
    ],
)
def test_unsafe_or_unknown_placeholders_rejected(source: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(source)


def test_values_are_never_interpreted() -> None:
    alert = make_alert(title="{summary} {link.__class__}", summary="{title}")
    text = render.plain(alert, parse_template("{title}\n{summary}"))
    assert text == "{summary} {link.__class__}\n{title}"


def test_whatsapp_marks_up_fields_and_neutralises_template_text() -> None:
    template = parse_template("{emoji} {title}\n_{feed}_\n{summary}\n{link}")
    alert = make_alert(summary="Costo *10* euro", link=LINK + "?a_b=1", urgent=True)
    assert render.whatsapp(alert, template) == (
        f"🚨 *Avviso*\nˍComune di Esempioˍ\nCosto ∗10∗ euro\n{LINK}?a_b=1"
    )


@pytest.mark.parametrize(
    ("categories", "urgent", "expected"),
    [
        ((), False, ""),
        (("Viabilità e traffico",), False, "🚧"),
        (("ALLERTA METEO",), False, "⚠️"),
        (("Tributi",), False, "💶"),
        (("Eventi", "Cultura"), False, "🎭"),  # map order decides, not category order
        (("Tributi",), True, "🚨"),
        (("Varie",), False, ""),
    ],
)
def test_emoji_for(categories: tuple[str, ...], urgent: bool, expected: str) -> None:
    assert emoji_for(categories, urgent=urgent) == expected


def test_custom_emoji_map() -> None:
    assert emoji_for(["Sagre"], urgent=False, mapping={"sagr": "🎉"}) == "🎉"
    assert emoji_for(["Sagre"], urgent=True, urgent_marker="‼️") == "‼️"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 1, 12, 0, tzinfo=UTC), "1 gennaio 2026"),
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "1 gennaio 2027"),  # already new year in Rome
        (datetime(2026, 3, 5, 10, 0), "5 marzo 2026"),
        (None, ""),
    ],
)
def test_italian_date(moment: datetime | None, expected: str) -> None:
    assert italian_date(moment) == expected


def test_values_for() -> None:
    values = values_for(make_alert(categories=("Scuola",)))
    assert values == {
        "title": "Avviso",
        "summary": "Il servizio riprende lunedì.",
        "link": LINK,
        "feed": "Comune di Esempio",
        "date": "8 agosto 2026",
        "emoji": "🏫",
    }
