"""bridge.sentences: every abbreviation of issue 4 inside a sentence (no split) and with the
real sentence end after it (split); "ecc.", "S.p.A.", "c.a.", "p.v." also at the end."""

from __future__ import annotations

import pytest

from bridge.sentences import is_complete_sentence, split_sentences

NEXT = "Il servizio riprende lunedì."

# (abbreviation, a sentence with it inside): the sentence must stay whole and the next
# sentence must still be split off.
INSIDE = [
    ("art.", "Ai sensi dell'art. 5 del regolamento gli uffici chiudono."),
    ("artt.", "Visti gli artt. 107 e 109 del TUEL è approvato il bando."),
    ("n.", "Con delibera n. 45 è approvato il bilancio."),
    ("nn.", "Sono disponibili nn. 3 posti."),
    ("Dott.", "Riceve il Dott. Rossi ogni martedì."),
    ("Sig.ra", "Interviene la Sig.ra Bianchi per l'associazione."),
    ("Prof.", "Relatore il Prof. Gialli dell'Università."),
    ("Avv.", "Assiste l'Avv. Neri per il Comune."),
    ("Ing.", "Il progetto è firmato dall'Ing. Rosa."),
    ("p.zza", "Ritrovo in p.zza Garibaldi alle 9."),
    ("v.le", "Chiuso il tratto di v.le Roma."),
    ("loc.", "Mercato in loc. Ponte di Costozza."),
    ("fraz.", "Festa in fraz. Madonna dei Prati."),
    ("S.", "Processione verso la chiesa di S. Maria Assunta."),
    ("S.p.A.", "Il servizio è gestito da Viacqua S.p.A. per conto del Comune."),
    ("c.a.", "Domande entro il 30 settembre c.a. presso l'URP."),
    ("p.v.", "La riunione si terrà il 10 ottobre p.v. in sala consiliare."),
    ("ecc.", "Portare documenti, fotografie ecc. allo sportello."),
    ("D.Lgs.", "Ai sensi del D.Lgs. 50/2016 la gara è aperta."),
    ("D.P.R.", "Secondo il D.P.R. 445/2000 vale l'autocertificazione."),
    ("tel.", "Per informazioni tel. 0444 660223 in orario d'ufficio."),
    ("ore 10.30", "Il consiglio si riunisce alle ore 10.30 in municipio."),
    ("12.10.2024", "La seduta del 12.10.2024 è rinviata."),
    ("1.500 euro", "Contributo fino a 1.500 euro per famiglia."),
]

# Abbreviations that do end a sentence before a capital.
AT_END = [
    ("ecc.", "Servono libri, quaderni, penne ecc."),
    ("S.p.A.", "La gestione passa ad AIM S.p.A."),
    ("c.a.", "Il termine scade il 31 dicembre c.a."),
    ("p.v.", "Entro il 30 settembre p.v."),
    ("n. 12.", "Aperto il punto vaccinale in via Roma n. 12."),
    ("art. 12.", "Lo prevede l'art. 12."),
    ("esempio.it.", "Tutte le informazioni sono sul sito www.comune.esempio.it."),
]


@pytest.mark.parametrize(("abbreviation", "sentence"), INSIDE, ids=[a for a, _ in INSIDE])
def test_abbreviation_inside_a_sentence(abbreviation: str, sentence: str) -> None:
    assert abbreviation in sentence
    assert split_sentences(f"{sentence} {NEXT}") == [sentence, NEXT]


@pytest.mark.parametrize(("abbreviation", "sentence"), AT_END, ids=[a for a, _ in AT_END])
def test_abbreviation_ending_a_sentence(abbreviation: str, sentence: str) -> None:
    assert sentence.endswith(abbreviation.split()[-1])
    assert split_sentences(f"{sentence} {NEXT}") == [sentence, NEXT]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Servono penne ecc. e matite.", ["Servono penne ecc. e matite."]),
        ("Gestito da AIM S.p.A. che garantisce il servizio.", ["Gestito da AIM S.p.A. che garantisce il servizio."]),
        ("Scrivere a info@comune.esempio.it. Risposta in 3 giorni.",
         ["Scrivere a info@comune.esempio.it.", "Risposta in 3 giorni."]),
        ("Dal sito comune.esempio.it/servizi si accede.", ["Dal sito comune.esempio.it/servizi si accede."]),
    ],
)
def test_lower_case_continues_and_addresses_end(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("segment", "complete"),
    [("15/08/2026 chiuso.", True), ("Ufficio chiuso.", False), ("Chiuso.", False), ("Ufficio chiuso oggi.", True)],
)
def test_two_words_make_a_sentence_only_with_a_number(segment: str, complete: bool) -> None:
    assert is_complete_sentence(segment) is complete
