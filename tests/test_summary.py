"""bridge.summary and bridge.sentences: Italian sentences, lead extraction, length limits."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge import render
from bridge.item import Alert, Item
from bridge.sentences import is_complete_sentence, split_sentences
from bridge.summary import TITLE_ROOM_BESIDE_LONG_LINK, build_alert, excess, is_thin
from bridge.template import DEFAULT_TEMPLATE, parse_template
from bridge.text import clean_title, html_to_text, strip_boilerplate

LINK = "https://www.comune.esempio.it/novita/avviso"


def make_item(title: str, text: str = "", content: str = "", link: str | None = LINK) -> Item:
    return Item(feed_id="notizie", title=title, link=link, guid=None, text=text, content=content)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Primo. Secondo! Terzo?", ["Primo.", "Secondo!", "Terzo?"], id="basic"),
        pytest.param(
            "Ai sensi dell'art. 5 e artt. 6-7 del D.Lgs. 50/2016 e del D.P.R. n. 445 si "
            "comunica. Nn. 3 posti.",
            [
                "Ai sensi dell'art. 5 e artt. 6-7 del D.Lgs. 50/2016 e del D.P.R. n. 445 si "
                "comunica.",
                "Nn. 3 posti.",
            ],
            id="legal-references",
        ),
        pytest.param(
            "Riceve il Dott. Rossi con la Dott.ssa Bianchi, il Sig. Neri e la Sig.ra Verdi. "
            "Presenti il Prof. Gialli, l'Avv. Blu e l'Ing. Rosa. Fine.",
            [
                "Riceve il Dott. Rossi con la Dott.ssa Bianchi, il Sig. Neri e la Sig.ra Verdi.",
                "Presenti il Prof. Gialli, l'Avv. Blu e l'Ing. Rosa.",
                "Fine.",
            ],
            id="titles",
        ),
        pytest.param(
            "Ritrovo in p.zza Garibaldi, v.le Roma, loc. Ponte, fraz. Madonna, S. Maria. Poi via.",
            ["Ritrovo in p.zza Garibaldi, v.le Roma, loc. Ponte, fraz. Madonna, S. Maria.", "Poi via."],
            id="addresses",
        ),
        pytest.param(
            "Libri, quaderni ecc. per la scuola. Penne, matite ecc. Il bando scade.",
            ["Libri, quaderni ecc. per la scuola.", "Penne, matite ecc.", "Il bando scade."],
            id="ecc",
        ),
        pytest.param(
            "Gestisce Viacqua S.p.A. con altri. Affidato a Viacqua S.p.A. Il servizio parte.",
            ["Gestisce Viacqua S.p.A. con altri.", "Affidato a Viacqua S.p.A.", "Il servizio parte."],
            id="spa",
        ),
        pytest.param(
            "Alle ore 10.30 del 12.10.2024 contributo di 1.500 euro. Info tel. 0444 660223 int. 202.",
            ["Alle ore 10.30 del 12.10.2024 contributo di 1.500 euro.", "Info tel. 0444 660223 int. 202."],
            id="numbers-times-dates",
        ),
        pytest.param(
            "Partenza da Via G.B. Zonato. Libro di G. Verdi. Fine del testo.",
            ["Partenza da Via G.B. Zonato.", "Libro di G. Verdi.", "Fine del testo."],
            id="initials",
        ),
        pytest.param(
            "Entro il 30 settembre p.v. Le domande in Comune. Alla c.a. del sindaco. Fine.",
            ["Entro il 30 settembre p.v.", "Le domande in Comune.", "Alla c.a. del sindaco.", "Fine."],
            id="pv-ca",
        ),
        pytest.param(
            "Il sindaco: «Intervento importante. Grazie a tutti.» Il cantiere parte.",
            ["Il sindaco: «Intervento importante. Grazie a tutti.»", "Il cantiere parte."],
            id="quotation",
        ),
        pytest.param(
            'Progetto "Ci sto? Affare fatica!" 2026: attivo il bando. Iscriviti!',
            ['Progetto "Ci sto? Affare fatica!" 2026: attivo il bando.', "Iscriviti!"],
            id="quoted-title-with-question",
        ),
        pytest.param(
            "Servizio (ex Guardia Medica). Chiamare il 116117.",
            ["Servizio (ex Guardia Medica).", "Chiamare il 116117."],
            id="parenthesis-before-period",
        ),
        pytest.param(
            "Rischio per temporali.In allegato l’avviso.",
            ["Rischio per temporali.", "In allegato l’avviso."],
            id="glued-wordpress-description",
        ),
        pytest.param(
            "Sono aperte le iscrizioni ai C.E.R. 2026!!! ⛱️",
            ["Sono aperte le iscrizioni ai C.E.R. 2026!!! ⛱️"],
            id="emoji-tail",
        ),
        pytest.param(
            "Titolo senza punto\nPrima frase. Seconda\n\nTerza frase.",
            ["Titolo senza punto", "Prima frase.", "Seconda", "Terza frase."],
            id="line-and-paragraph-breaks",
        ),
        pytest.param("Nuovi libri in Biblioteca G. Bedesc ...", ["Nuovi libri in Biblioteca G. Bedesc ..."], id="cut"),
        pytest.param("", [], id="empty"),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("Il servizio riprende lunedì.", True),
        ("Sono aperte le iscrizioni!!! ⛱️", True),
        ("Cosa fare in caso di tessera persa?", True),
        ("Il sindaco: «Lavori attesi.»", True),
        ("Strada chiusa dal 22 al 24 luglio", False),
        ("Il Comune intende assegnare...", False),
        ("Il Comune intende assegnare…", False),
        ("Chiuso.", False),
        ("Rilascio di ordinanza,", False),
    ],
)
def test_is_complete_sentence(segment: str, expected: bool) -> None:
    assert is_complete_sentence(segment) is expected


@pytest.mark.parametrize(
    ("title", "text", "content", "expected_summary"),
    [
        pytest.param(
            "Sagra dell’Assunta",
            "Sagra dell’Assunta dal 12 al 18 agosto organizzata dalla Pro Loco.Programma "
            "completo nella locandina allegata.",
            "",
            "Sagra dell’Assunta dal 12 al 18 agosto organizzata dalla Pro Loco. Programma "
            "completo nella locandina allegata.",
            id="two-sentences-glued",
        ),
        pytest.param(
            "Allerta meteo",
            "Con nota delle ore 13.00 la Regione ha diramato lo stato di attenzione. In "
            "allegato l’avviso. Si raccomanda la massima attenzione sul sito […]",
            "",
            "Con nota delle ore 13.00 la Regione ha diramato lo stato di attenzione. In "
            "allegato l’avviso.",
            id="at-most-two",
        ),
        pytest.param(
            "Allerta meteo",
            "Con nota delle ore 13.00 la Regione ha diramato lo stato di attenzione. Si "
            "raccomanda di consultare gli aggiornamenti sul sito […]",
            "",
            "Con nota delle ore 13.00 la Regione ha diramato lo stato di attenzione.",
            id="truncated-second-sentence-dropped",
        ),
        pytest.param(
            "Centri estivi 2026 - Contributo a sostegno delle famiglie.",
            "GIOVEDÌ, 06 AGOSTO 2026\nCentri estivi 2026 - Contributo a sostegno delle famiglie.\n"
            "Domande online dal 10/08/2026 al 11/09/2026.\n\nTempo di lettura:\n5 min\n\n"
            "LEGGI DI PIÙ",
            "",
            "Domande online dal 10/08/2026 al 11/09/2026.",
            id="myportal-title-line-skipped",
        ),
        pytest.param(
            "Avviso richiamo giocattolo",
            "Avviso richiamo giocattolo. Il Ministero della Salute segnala un giocattolo.",
            "",
            "Il Ministero della Salute segnala un giocattolo.",
            id="first-sentence-repeats-title",
        ),
        pytest.param(
            "Dalla Parola alla voce",
            "Biblioteca e Cultura Dalla Parola alla voce. Un percorso tra i salmi di David ...",
            "",
            "",
            id="listing-snippet-category-title",
        ),
        pytest.param(
            "Parchi riaperti",
            "Parchi riaperti dalle 14",
            "Parchi riaperti dalle 14.\n\nPer informazioni: Ufficio stampa",
            "Parchi riaperti dalle 14.",
            id="thin-text-falls-back-to-content",
        ),
        pytest.param(
            "Lavori urgenti",
            "Strada chiusa dal 22 al 24 luglio",
            "",
            "Strada chiusa dal 22 al 24 luglio.",
            id="whole-lead-line-closed-with-a-period",
        ),
        pytest.param(
            "Pulizia strade",
            "Pulizia delle strade in corso.\nORARI\nIl servizio riprende lunedì.",
            "",
            "Pulizia delle strade in corso.",
            id="lead-stops-at-heading",
        ),
        pytest.param(
            "Bonus istruzione",
            "Il Comune di Romano d’Ezzelino intende assegnare dei bonus monetari...",
            "",
            "",
            id="ellipsis-is-cut-text",
        ),
        pytest.param("Avviso", "", "", "", id="empty-description"),
        pytest.param(
            "Nuovo bando",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
            "",
            "",
            id="lorem-ipsum",
        ),
    ],
)
def test_build_alert_summary(title: str, text: str, content: str, expected_summary: str) -> None:
    alert = build_alert(make_item(title, text, content), feed_name="Notizie")
    assert alert.summary == expected_summary


def test_build_alert_fields() -> None:
    published = datetime(2026, 8, 20, 9, 5, tzinfo=UTC)
    item = Item(
        feed_id="notizie",
        title="SCADENZA TARI 2026",
        link=LINK,
        guid="g1",
        text="La prima rata scade il 16 giugno.",
        published=published,
        categories=("Tributi",),
        image_url="https://www.comune.esempio.it/a.jpg",
    )
    alert = build_alert(item, feed_name="Notizie dal Comune", urgent=True)
    assert alert == Alert(
        feed_id="notizie",
        feed_name="Notizie dal Comune",
        title="Scadenza TARI 2026",
        summary="La prima rata scade il 16 giugno.",
        link=LINK,
        published=published,
        urgent=True,
        image_url="https://www.comune.esempio.it/a.jpg",
        categories=("Tributi",),
    )


def test_build_alert_requires_link() -> None:
    with pytest.raises(ValueError, match="no link"):
        build_alert(make_item("Avviso", link=None), feed_name="Notizie")


def test_a_link_longer_than_the_limit_gets_a_short_title_never_a_cut_link() -> None:
    long_link = LINK + "x" * 400
    title = "Avviso " + "molto lungo " * 20
    alert = build_alert(make_item(title, "Il mercato si sposta in piazza Garibaldi.", link=long_link), feed_name="N")
    assert alert.link == long_link
    assert alert.summary == ""
    assert alert.title.endswith("…") and len(alert.title) <= TITLE_ROOM_BESIDE_LONG_LINK
    assert excess(alert, max_length=400) > 0  # what the caller reports


# -- one length policy: the alert fits its platform as the platform counts -----------------

LONG_TEXT = ("Il mercato settimanale si sposta in piazza Garibaldi per i lavori. "
             "Le bancarelle saranno aperte dalle 7 alle 13 con i consueti orari estivi. ") * 3


@pytest.mark.parametrize(
    ("channel_type", "max_length"),
    [("waha", 150), ("whapi", 151), ("telegram", 150), ("mastodon", 150), ("webhook", 150), ("console", 150)],
)
def test_the_alert_fits_its_platform_so_no_channel_cuts_it_again(channel_type: str, max_length: int) -> None:
    platform = render.platform_for(channel_type, max_length)
    alert = build_alert(make_item("Mercato", LONG_TEXT), feed_name="N", max_length=max_length, platform=platform)
    assert alert.summary  # whole sentences or a cut with "…", made by the summariser
    assert platform.measure(alert, DEFAULT_TEMPLATE) <= platform.text_limit
    assert len(render.plain(alert)) <= max_length
    # The channel's own fit finds nothing to do: the summary is the summariser's, not a blind clip.
    assert render.fit(alert, platform.text_limit, lambda a: platform.measure(a, DEFAULT_TEMPLATE)) == alert


def test_whatsapp_counts_its_markup() -> None:
    platform = render.platform_for("waha", 150)
    alert = build_alert(make_item("Mercato", LONG_TEXT), feed_name="N", max_length=150, platform=platform)
    assert len(render.whatsapp(alert)) <= 150  # the two asterisks of the title included


def test_mastodon_counts_a_long_link_as_23_and_leaves_room_for_more_words() -> None:
    long_link = LINK + "/" + "a" * 200
    one_sentence = "Il mercato si sposta " + "e le bancarelle restano in piazza " * 20 + "fino a sera."
    item = make_item("Mercato", one_sentence, link=long_link)
    alert = build_alert(item, feed_name="N", max_length=1000, platform=render.platform_for("mastodon", None))
    assert render.mastodon_length(render.plain(alert)) <= 500
    assert len(render.plain(alert)) > 500  # the 23-character link left room a character count would not


def test_platform_limits_live_in_render() -> None:
    assert (render.WHATSAPP.text_limit, render.WHATSAPP.caption_limit) == (4096, 1024)
    assert (render.TELEGRAM.text_limit, render.TELEGRAM.caption_limit) == (4096, 1024)
    assert render.platform_for("mastodon", None).text_limit == 500
    assert render.platform_for("mastodon", 1000).text_limit == 1000
    assert render.platform_for("waha", 9000).text_limit == 4096
    assert render.platform_for("telegram", 300).text_limit == 300


def test_second_sentence_dropped_when_it_does_not_fit() -> None:
    first = "Il mercato settimanale si sposta in piazza Garibaldi."
    second = "Le bancarelle saranno aperte dalle 7 alle 13 con i consueti orari estivi."
    item = make_item("Mercato", f"{first} {second}")
    fits_one = len(render.plain(build_alert(item, feed_name="N"))) - len(second) - 1
    alert = build_alert(item, feed_name="N", max_length=fits_one)
    assert alert.summary == first
    assert len(render.plain(alert)) == fits_one


def test_summary_empty_when_first_sentence_does_not_fit() -> None:
    item = make_item("Mercato", "Il mercato settimanale si sposta in piazza Garibaldi.")
    alert = build_alert(item, feed_name="N", max_length=len("Mercato") + 2 + len(LINK) + 10)
    assert alert.summary == ""
    assert render.plain(alert) == f"Mercato\n\n{LINK}"


@pytest.mark.parametrize(
    ("max_length", "expected_title"),
    [
        (len(LINK) + 2 + 37, "Divieto di transito e di sosta in…"),
        (len(LINK) + 2 + 10, "Divieto…"),
        (len(LINK) + 2 + 3, "Di…"),
        (len(LINK) + 2 + 2, "D…"),
    ],
)
def test_long_title_shortened_at_word_boundary(max_length: int, expected_title: str) -> None:
    item = make_item(
        "Divieto di transito e di sosta in piazza durante la sagra di agosto",
        "Il divieto vale dalle 7 alle 24.",
    )
    alert = build_alert(item, feed_name="N", max_length=max_length)
    assert alert.title == expected_title
    assert alert.summary == ""
    assert len(render.plain(alert)) <= max_length


@pytest.mark.parametrize("max_length", range(len(LINK) + 4, 420, 7))
def test_never_longer_than_max_length(max_length: int) -> None:
    item = make_item(
        "Ordinanza di chiusura temporanea del ponte sul Timonchio per lavori urgenti",
        "Il ponte resta chiuso dal 3 al 31 agosto per lavori della linea ferroviaria. "
        "Il transito pedonale è garantito sul lato nord. Per informazioni tel. 0444 660223.",
    )
    alert = build_alert(item, feed_name="N", max_length=max_length)
    assert len(render.plain(alert)) <= max_length
    assert alert.summary == "" or alert.summary.endswith((".", "…"))


def test_deterministic() -> None:
    item = make_item("Avviso", "Prima frase del testo. Seconda frase del testo. Terza.")
    alerts = {build_alert(item, feed_name="N").to_dict().__repr__() for _ in range(5)}
    assert len(alerts) == 1


@pytest.mark.parametrize(
    ("title", "text", "expected_summary"),
    [
        pytest.param(
            "Punti luce a Saviabona",
            "Illuminazione più omogenea per una maggiore sicurezza",
            "Illuminazione più omogenea per una maggiore sicurezza.",
            id="opencity-subtitle-line",
        ),
        pytest.param(
            "Mensa scolastica",
            "Iscrizioni di nuovi utenti al servizio di mensa scolastica\nAltro testo del corpo.",
            "Iscrizioni di nuovi utenti al servizio di mensa scolastica…",
            id="lead-line-stands-alone-its-paragraph-goes-on",
        ),
        pytest.param(
            "Mensa scolastica",
            "Iscrizioni di nuovi utenti al servizio di mensa scolastica\n\nAltro testo del corpo.",
            "Iscrizioni di nuovi utenti al servizio di mensa scolastica.",
            id="lead-line-stands-alone-its-paragraph-ends",
        ),
        pytest.param("Calendario", "Calendario raccolta 2026", "", id="too-few-words"),
        pytest.param("Sciopero", "Lunedì 18 maggio 2026", "", id="bare-date-line"),
        pytest.param("Bando", "Il Comune intende assegnare dei contributi per", "", id="ends-on-preposition"),
        pytest.param("Bando", "Il Comune intende assegnare dei contributi,", "", id="ends-on-comma"),
        pytest.param("Bando", "Il Comune intende assegnare dei contributi...", "", id="ends-on-ellipsis"),
        pytest.param("Bando", "IL COMUNE INTENDE ASSEGNARE DEI CONTRIBUTI",
                     "Il comune intende assegnare dei contributi.", id="all-caps-body-in-sentence-case"),
        pytest.param("Bando", "BANDO\n\nIl Comune intende assegnare dei contributi.",
                     "Il Comune intende assegnare dei contributi.", id="all-caps-heading-skipped"),
        pytest.param("Bando", "Graduatorie pubblicate sul sito www.ente.it/bandi", "", id="web-address"),
        pytest.param(
            "Contributi Europei",
            "Contributi Europei\nI contributi europei sono finanziamenti erogati dall'UE",
            "I contributi europei sono finanziamenti erogati dall'UE.",
            id="title-line-then-lead-line",
        ),
        pytest.param(
            "Sagra",
            "AVVISI\n\nSagra di paese con musica dal vivo e stand\n\nIl programma è in allegato.",
            "Sagra di paese con musica dal vivo e stand.",
            id="label-line-skipped",
        ),
        pytest.param(
            "Orari estivi",
            "Chiuso il sabato.\nIl servizio riprende lunedì.\nTerza frase del testo.",
            "Chiuso il sabato. Il servizio riprende lunedì.",
            id="sentences-across-lines",
        ),
        pytest.param(
            "Orari estivi",
            "Gli uffici restano chiusi il sabato mattina.\nUn'altra riga senza punto finale qui",
            "Gli uffici restano chiusi il sabato mattina.",
            id="lead-line-only-first",
        ),
    ],
)
def test_selection(title: str, text: str, expected_summary: str) -> None:
    assert build_alert(make_item(title, text), feed_name="N").summary == expected_summary


@pytest.mark.parametrize(
    ("max_length", "expected_summary"),
    [
        (400, None),  # fits whole
        (len("Lavori") + 2 + len(LINK) + 2 + 80, "Dal 3 al 31 agosto il ponte sul Timonchio resta chiuso al traffico…"),
        (len("Lavori") + 2 + len(LINK) + 2 + 120,
         "Dal 3 al 31 agosto il ponte sul Timonchio resta chiuso al traffico, per i lavori della linea "
         "ferroviaria Vicenza-Schio…"),  # the clause boundary ";" in the second half
        (len("Lavori") + 2 + len(LINK) + 2 + 45, "Dal 3 al 31 agosto il ponte sul Timonchio…"),
        (len("Lavori") + 2 + len(LINK) + 2 + 20, ""),  # "Dal 3 al 31 agosto…": a stub, fewer than six words
    ],
)
def test_long_sentence_cut_at_clause_or_word(max_length: int, expected_summary: str | None) -> None:
    sentence = (
        "Dal 3 al 31 agosto il ponte sul Timonchio resta chiuso al traffico, per i lavori della linea "
        "ferroviaria Vicenza-Schio; il transito pedonale è garantito sul lato nord."
    )
    alert = build_alert(make_item("Lavori", sentence), feed_name="N", max_length=max_length)
    assert alert.summary == (sentence if expected_summary is None else expected_summary)
    assert len(render.plain(alert)) <= max_length


def test_cut_never_ends_on_a_number_or_function_word() -> None:
    sentence = "Il ponte resta chiuso dal 3 al 31 agosto per lavori urgenti della linea ferroviaria regionale."
    for max_length in range(len(LINK) + 30, len(LINK) + 110):
        summary = build_alert(make_item("Ponte", sentence), feed_name="N", max_length=max_length).summary
        if summary.endswith("…"):
            last = summary[:-1].split()[-1]
            assert not any(c.isdigit() for c in last) and last not in {"dal", "al", "per", "della"}, summary


def test_article_lead_used_for_thin_item() -> None:
    item = make_item("Allerta caldo", "Allerta caldo")
    assert is_thin(item)
    alert = build_alert(item, feed_name="N", article="Il bollettino prevede 38 gradi da venerdì 14 agosto.")
    assert alert.summary == "Il bollettino prevede 38 gradi da venerdì 14 agosto."


def test_feed_sentence_preferred_to_article() -> None:
    item = make_item("Allerta caldo", "Temperature fino a 38 gradi venerdì.")
    assert not is_thin(item)
    alert = build_alert(item, feed_name="N", article="Il bollettino prevede caldo intenso.")
    assert alert.summary == "Temperature fino a 38 gradi venerdì."


def test_template_counts_in_the_length() -> None:
    template = parse_template("{emoji} {title} · {feed}\n\n{summary}\n\n{link}")
    item = make_item("Mercato", "Il mercato settimanale si sposta in piazza Garibaldi.")
    for max_length in range(len(LINK) + 40, 200, 5):
        alert = build_alert(item, feed_name="Notizie dal Comune", max_length=max_length, template=template)
        assert len(render.plain(alert, template)) <= max_length


# -- a line that does not end a sentence is never closed as if it did ----------------------


@pytest.mark.parametrize(
    ("title", "text", "expected_summary"),
    [
        pytest.param(
            "Raccolta rifiuti",
            "In occasione della festività del 15 agosto la raccolta dei rifiuti\nNON sarà effettuata.",
            "In occasione della festività del 15 agosto la raccolta dei rifiuti NON sarà effettuata.",
            id="broken-before-a-shouted-word",
        ),
        pytest.param(
            "Anagrafe",
            "L'ufficio anagrafe resterà chiuso\nVenerdì 14 agosto 2026 per inventario.",
            "L'ufficio anagrafe resterà chiuso Venerdì 14 agosto 2026 per inventario.",
            id="broken-before-a-weekday",
        ),
        pytest.param(
            "Rette scolastiche",
            "Le famiglie residenti che per l'anno scolastico\n2025/2026 pagano rette possono chiedere la riduzione.",
            "Le famiglie residenti che per l'anno scolastico 2025/2026 pagano rette possono chiedere la riduzione.",
            id="broken-before-a-number",
        ),
        pytest.param(
            "Mostra mercato",
            "QUANDO:\nDomenica 27 settembre 2026, dalle ore 9:30 alle ore 18:30.",
            "QUANDO: Domenica 27 settembre 2026, dalle ore 9:30 alle ore 18:30.",
            id="label-line-and-its-value",
        ),
        pytest.param(
            "Progetti di quartiere",
            "Presentati dai consigli di quartiere, hanno ottenuto il maggior numero di voti\n"
            "Sindaco Possamai: «Sono state attivate tantissime energie»",
            "Presentati dai consigli di quartiere, hanno ottenuto il maggior numero di voti…",
            id="a-line-its-paragraph-goes-on-after-is-shown-cut",
        ),
    ],
)
def test_a_line_broken_inside_a_sentence_is_joined_or_shown_cut(title: str, text: str, expected_summary: str) -> None:
    assert build_alert(make_item(title, text), feed_name="N").summary == expected_summary


CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "items-real.jsonl"


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared corpus is not beside the repository")
def test_no_real_alert_closes_a_line_whose_paragraph_goes_on() -> None:
    closed_early = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = html_to_text(row.get("raw_description_html", ""))
        if not row.get("link"):
            continue
        item = make_item(clean_title(row.get("title", ""), text), text, link=row["link"])
        try:
            summary = build_alert(item, feed_name="N", max_length=400).summary
        except ValueError:
            continue
        last = re.split(r"(?<=[.!?…])\s+", summary)[-1]
        if not last.endswith(".") or last.endswith(".."):
            continue
        for paragraph in strip_boilerplate(text).split("\n\n"):
            lines = [" ".join(source_line.split()) for source_line in paragraph.split("\n")]
            if any(source_line.endswith(last[:-1]) for source_line in lines[:-1]):
                closed_early.append((summary, paragraph))
    assert closed_early == []


# -- a shouted body is read as a shouted title is ------------------------------------------


def test_an_all_caps_body_keeps_its_dates() -> None:
    item = make_item("Biblioteca: chiusura estiva", "15/08/2026 CHIUSO. 14/08/2026 APERTURA STRAORDINARIA")
    assert build_alert(item, feed_name="N").summary == "15/08/2026 chiuso. 14/08/2026 apertura straordinaria."


def test_an_all_caps_body_keeps_its_acronyms() -> None:
    item = make_item("Tributi", "IL VERSAMENTO DELLA TARI SCADE IL 16 SETTEMBRE 2026. PAGAMENTO CON PAGOPA O F24.")
    assert build_alert(item, feed_name="N").summary.startswith("Il versamento della TARI scade il 16 settembre 2026.")


# -- the fact the citizen needs, without the formula before it -----------------------------

BRESSANVIDO = (
    "NOTIZIA\nMOSTRA MERCATO - 28^ FESTA DELLA TRANSUMANZA\n\n"
    "Si rende noto che l’Amministrazione Comunale di Bressanvido, con deliberazione di Giunta Comunale n. 85 "
    "del 05/08/2026 ha istituito, in occasione della 28^ Festa della Transumanza, una mostra mercato "
    "straordinaria, lungo la S.P. 51 – Via San Benedetto – in prossimità dello stabilimento Latterie Vicentine.\n\n"
    "QUANDO:\nDomenica 27 settembre 2026, dalle ore 9:30 alle ore 18:30.\n\n"
    "TERMINI DI AMMISSIONE:\na. L’istanza deve pervenire entro le ore 23:59 del 4 settembre 2026;"
)


def test_the_formula_and_the_deliberation_go_and_the_when_line_comes() -> None:
    alert = build_alert(make_item("Mostra mercato - 28^ festa della transumanza", BRESSANVIDO), feed_name="N")
    assert alert.summary == (
        "L’Amministrazione Comunale di Bressanvido ha istituito, in occasione della 28^ Festa della Transumanza, "
        "una mostra mercato straordinaria, lungo la S.P. 51 – Via San Benedetto – in prossimità dello "
        "stabilimento Latterie Vicentine. QUANDO: Domenica 27 settembre 2026, dalle ore 9:30 alle ore 18:30."
    )


def test_with_room_for_one_unit_the_when_line_wins_over_a_preamble_without_a_date() -> None:
    title = "Mostra mercato - 28^ festa della transumanza"
    alert = build_alert(make_item(title, BRESSANVIDO), feed_name="N", max_length=len(title) + len(LINK) + 90)
    assert alert.summary == "QUANDO: Domenica 27 settembre 2026, dalle ore 9:30 alle ore 18:30."


def test_a_lead_with_its_own_date_is_kept() -> None:
    text = ("Il mercato si sposta in piazza Roma sabato 3 ottobre. Le bancarelle saranno quaranta.\n\n"
            "QUANDO: sabato 3 ottobre 2026, dalle 8 alle 13.")
    assert build_alert(make_item("Mercato", text), feed_name="N").summary == (
        "Il mercato si sposta in piazza Roma sabato 3 ottobre. Le bancarelle saranno quaranta."
    )


@pytest.mark.parametrize(
    ("text", "expected_summary"),
    [
        ("Si informa la cittadinanza che il mercato di sabato è sospeso per maltempo.",
         "Il mercato di sabato è sospeso per maltempo."),
        ("Con la presente si comunica che gli uffici comunali resteranno chiusi lunedì.",
         "Gli uffici comunali resteranno chiusi lunedì."),
        ("Si rende noto che, con deliberazione di Consiglio Comunale n. 16 di reg. in data 16/06/2026, è stato "
         "adottato il Piano delle Acque.", "È stato adottato il Piano delle Acque."),
    ],
)
def test_bureaucratic_formulas_are_dropped(text: str, expected_summary: str) -> None:
    assert build_alert(make_item("Avviso ai cittadini", text), feed_name="N").summary == expected_summary


def test_raw_control_characters_never_reach_an_alert() -> None:
    controls = "".join(chr(c) for c in [*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F, *range(0x80, 0x85), 0x9B])
    item = make_item(f"Avviso{controls} chiusura", f"Il ponte{controls} resta chiuso fino a domenica.")
    alert = build_alert(item, feed_name="N")
    text = render.whatsapp(alert)
    assert alert.summary == "Il ponte resta chiuso fino a domenica."
    assert not any(c in text for c in controls)
