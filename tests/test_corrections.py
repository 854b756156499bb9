"""Whether a posted item changed "in what matters" (bridge.corrections), and the "Rettifica:"
follow-up: table-driven over real items of the corpus (../shared, never copied here), each
edited the way a comune's editor edits a published page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge import render
from bridge.channels import outgoing_for
from bridge.config import ChannelConfig
from bridge.corrections import CORRECTION_PREFIX, Change, Version, correction_alert, what_changed
from bridge.item import Alert

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
REAL = SHARED / "items-real.jsonl"
CURATED = SHARED / "items-curated.jsonl"


def _rows(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        pytest.skip(f"the corpus is not beside the repository ({path})")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["link"]: row for row in rows}


def corpus_item(link: str) -> Version:
    """The item of the corpus with `link`, as it was posted (title and lead)."""
    rows = {**_rows(REAL), **_rows(CURATED)}
    row = rows[link]
    return Version(row["title"], row.get("lead_text") or "")


def edited(version: Version, field: str, old: str, new: str) -> Version:
    text = getattr(version, field)
    assert old in text, f"{old!r} is not in the {field} of the corpus item: {text!r}"
    edited_text = text.replace(old, new, 1)
    return Version(edited_text, version.summary) if field == "title" else Version(version.title, edited_text)


CASSOLA = "https://www.comune.cassola.vi.it/home/dettaglio/news/punto-digitale-facile-2026"
VELO = "https://www.comune.velodastico.vi.it/Novita/Comunicati/Convocazione-Consiglio-Comunale"
ORGIANO = ("https://www.comune.orgiano.vi.it/it/news/colli-berici-in-festival-2026-fraglia-dei-musici-ensemble-"
           "presenta-vivaldi-e-piazzolla-tra-le-loro-stagioni")
POZZOLEONE = "https://www.comune.pozzoleone.vi.it/novita/convocazione-del-consiglio-comunale-10-08-2026/"
SCHIO = ("https://www.comune.schio.vi.it/Novita/Avvisi/Lavori-di-rifacimento-segnaletica-in-via-dell-Artigianato-"
         "chiusura-al-transito-nel-tratto-interessato-dal-sottopasso-del-torrente-Timonchio")
VICENZA_LAVORI = ("https://www.comune.vicenza.it/Novita/Comunicati/Lavori-stradali-dal-24-agosto-all-8-settembre-"
                  "carreggiata-ristretta-in-via-Mora-e-strada-chiusa-in-viale-Astichello")
SEMAFORO = "https://www.comune.vicenza.it/Novita/Comunicati/Guasto-al-semaforo-tra-strada-Marosticana-e-strada-di-Polegge"
IMU = "https://www.comune.pozzoleone.vi.it/novita/imu-2026-scadenza-acconto-entro-il-16-giugno-2026/"
TARI = "https://www.comune.sarego.vi.it/novita/scadenza-pagamento-prima-rata-tari-2026/"

# (corpus item, field edited, old, new, the kinds of change expected: () for none)
CASES = [
    # what matters
    (VELO, "summary", "30.07.2026", "31.07.2026", ("date",)),
    (VELO, "summary", "alle ore 19.00", "alle ore 20.30", ("time",)),
    (POZZOLEONE, "summary", "LUNEDI’ 10 AGOSTO 2026", "MARTEDI’ 11 AGOSTO 2026", ("date",)),
    (POZZOLEONE, "summary", "alle ore 17:30 in prima", "alle ore 18:00 in prima", ("time",)),
    (CASSOLA, "summary", "alle 12.30", "alle 12.00", ("time",)),
    (CASSOLA, "summary", "Piazza Europa", "Piazza Garibaldi", ("place",)),
    (ORGIANO, "summary", "presso Villa Fracanzan-Piovene", "presso Villa Valmarana ai Nani", ("place",)),
    (SCHIO, "summary", "venerdì 7 agosto 2026", "lunedì 10 agosto 2026", ("date",)),
    (IMU, "title", "16 giugno", "30 giugno", ("date",)),
    (VICENZA_LAVORI, "title", "via Mora", "via Rossi", ("title", "place")),
    (SEMAFORO, "title", "Guasto al semaforo", "Semaforo spento", ("title",)),
    (TARI, "title", "PRIMA RATA", "SECONDA RATA", ("title",)),
    (VELO, "summary", "Il giorno 30.07.2026 alle ore 19.00", "Rinviato a data da destinarsi", ("date", "time")),
    # typo level: nothing to correct
    (SEMAFORO, "title", "Guasto al semaforo", "Guasto al semaforo,", ()),
    (SEMAFORO, "title", "semaforo", "semafor", ()),
    (SEMAFORO, "title", "Marosticana", "Marostticana", ()),
    (TARI, "title", "SCADENZA PAGAMENTO PRIMA RATA TARI 2026", "Scadenza pagamento prima rata TARI 2026", ()),
    (VELO, "summary", "l'Aula Magna", "l’Aula Magna", ()),
    (POZZOLEONE, "summary", "LUNEDI’", "LUNEDÌ", ()),
    (ORGIANO, "summary", "Sabato 11 luglio alle ore 21:00", "Sabato 11 luglio, alle ore 21:00,", ()),
    (ORGIANO, "summary", "Fracanzan-Piovene", "Fracanzan Piovene", ()),
    (CASSOLA, "summary", "Piazza Europa", "Piazza  Europa", ()),
    (CASSOLA, "summary", "biblioteca", "bibliotecca", ()),
    # a fact added beside those already said is more news, not a correction
    (CASSOLA, "summary", "dalle 9.30 alle 12.30.", "dalle 9.30 alle 12.30 e dalle 15.00 alle 17.00.", ()),
]


@pytest.mark.parametrize(("link", "field", "old", "new", "kinds"), CASES,
                         ids=[f"{case[1]}: {case[2]!r} -> {case[3]!r}" for case in CASES])
def test_what_changed_on_real_items(link: str, field: str, old: str, new: str, kinds: tuple[str, ...]) -> None:
    posted = corpus_item(link)
    correction = what_changed(posted, edited(posted, field, old, new))
    assert (correction.kinds if correction else ()) == kinds


def test_an_unchanged_item_has_no_correction() -> None:
    posted = corpus_item(VELO)
    assert what_changed(posted, posted) is None


def test_the_change_is_said_as_written_in_italian_and_english() -> None:
    posted = corpus_item(VELO)
    correction = what_changed(posted, edited(posted, "summary", "alle ore 19.00", "alle ore 20.30"))
    assert correction is not None
    assert correction.changes == (Change("time", "19.00", "20.30"),)
    assert correction.italian == "Aggiornato: l'orario era «19.00», ora è «20.30»."
    assert correction.english == 'changed: time "19.00" -> "20.30"'
    place = what_changed(corpus_item(CASSOLA), edited(corpus_item(CASSOLA), "summary", "Piazza Europa",
                                                      "Piazza Garibaldi"))
    assert place is not None and place.changes == (Change("place", "Piazza Europa", "Piazza Garibaldi"),)


def test_a_fact_gone_without_a_replacement_says_so() -> None:
    posted = Version("Chiusura uffici", "Gli uffici restano chiusi il 14 agosto.")
    correction = what_changed(posted, Version("Chiusura uffici", "Gli uffici restano chiusi."))
    assert correction is not None
    assert correction.italian == "Aggiornato: la data era «14 agosto», ora non compare più."
    assert correction.english == 'changed: date "14 agosto" -> (none)'


def test_several_changes_are_listed_in_one_sentence() -> None:
    posted = Version("Consiglio comunale", "Il giorno 28/07/2026 alle ore 19.30 presso la sala delle adunanze.")
    now = Version("Consiglio comunale", "Il giorno 29/07/2026 alle ore 20.30 presso il teatro civico.")
    correction = what_changed(posted, now)
    assert correction is not None
    assert correction.kinds == ("date", "time", "place")
    assert correction.italian.startswith("Aggiornati: la data era «28/07/2026», ora è «29/07/2026»; l'orario")


def alert(title: str, summary: str, link: str = "https://www.comune.example.it/notizie/consiglio") -> Alert:
    return Alert(feed_id="notizie", feed_name="Notizie", title=title, summary=summary, link=link,
                 image_url="https://www.comune.example.it/foto.jpg")


@pytest.mark.parametrize("kind", ["waha", "telegram", "mastodon", "webhook", "console"])
def test_the_rettifica_post_goes_through_each_channel_renderer_within_its_limits(kind: str) -> None:
    now = alert("Convocazione Consiglio Comunale " + "molto importante " * 30,
                "Il giorno 31.07.2026 alle ore 19.00 presso l'Aula Magna.")
    posted = Version("Convocazione Consiglio Comunale " + "molto importante " * 30,
                     "Il giorno 30.07.2026 alle ore 19.00 presso l'Aula Magna.")
    correction = what_changed(posted, Version.of(now))
    assert correction is not None
    follow_up = correction_alert(now, correction)
    assert follow_up.title.startswith(CORRECTION_PREFIX)
    assert follow_up.link == now.link and follow_up.image_url is None
    config = ChannelConfig(name="c", type=kind, url="http://127.0.0.1:1", chat_id="x", max_length=300,
                           images=True)
    message = outgoing_for(config, follow_up)
    assert message.image_url is None
    assert now.link in message.text
    assert "Rettifica" in message.text
    if message.limit is not None:
        assert message.length <= message.limit


def test_the_rettifica_post_says_what_changed() -> None:
    now = alert("Convocazione Consiglio Comunale", "Il giorno 31.07.2026 alle ore 19.00.")
    correction = what_changed(Version("Convocazione Consiglio Comunale", "Il giorno 30.07.2026 alle ore 19.00."),
                              Version.of(now))
    assert correction is not None
    text = render.plain(correction_alert(now, correction))
    assert "Rettifica: Convocazione Consiglio Comunale" in text
    assert "la data era «30.07.2026», ora è «31.07.2026»" in text
    assert text.rstrip().endswith(now.link)
