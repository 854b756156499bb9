"""bridge.facts: a wrong date, amount or time in an alert is caught."""

from __future__ import annotations

import pytest

from bridge.facts import fact_tokens, has_date, is_verbatim, unsupported_facts

SOURCE = (
    "La biblioteca resta chiusa dal 15/08/2026 al 08/09/2026. Contributo di 1.500 euro, "
    "rimborso di € 2.000,50. Apertura alle ore 10.30 di venerdì 7 agosto, seduta alle 15:00."
)


@pytest.mark.parametrize(
    ("text", "unsupported"),
    [
        pytest.param("La biblioteca resta chiusa dal 15/08/2026 al 08/09/2026.", [], id="dates-ok"),
        pytest.param("Resta chiusa dal 16/08/2026.", ["16/08/2026"], id="wrong-date"),
        pytest.param("Contributo di 1.500 euro.", [], id="amount-ok"),
        pytest.param("Contributo di 15.000 euro.", ["15.000"], id="wrong-amount"),
        pytest.param("Rimborso di € 2.000,00.", ["2.000,00"], id="wrong-decimals"),
        pytest.param("Contributo di 500 euro.", ["500"], id="part-of-a-number"),
        pytest.param("Apertura alle ore 10.30.", [], id="time-ok"),
        pytest.param("Apertura alle ore 11.30.", ["11.30"], id="wrong-time"),
        pytest.param("Seduta alle 15:30.", ["15:30"], id="wrong-time-colon"),
        pytest.param("Apertura di sabato 7 agosto.", ["sabato"], id="wrong-weekday"),
        pytest.param("Apertura di venerdì 7 settembre.", ["settembre"], id="wrong-month"),
        pytest.param("Apertura di venerdi 7 agosto.", [], id="accent-insensitive"),
    ],
)
def test_unsupported_facts(text: str, unsupported: list[str]) -> None:
    assert unsupported_facts(text, SOURCE) == unsupported


def test_fact_tokens() -> None:
    assert fact_tokens("Dal 12.10.2024 alle ore 9:30, € 1.500,00 (art. 5) lunedì") == [
        "12.10.2024",
        "9:30",
        "1.500,00",
        "5",
        "lunedi",
    ]


@pytest.mark.parametrize(
    ("summary", "verbatim"),
    [
        ("La biblioteca resta chiusa dal 15/08/2026 al 08/09/2026.", True),
        ("Contributo di 1.500 euro, rimborso di € 2.000,50. Apertura alle ore 10.30 di venerdì 7 agosto.", False),
        ("La biblioteca resta chiusa dal 15/08/2026 al 08/09/2026. Contributo di 1.500 euro…", True),
        ("Contributo di 1.500 euro, rimborso di € 2.000,50.", True),
        ("La biblioteca resta aperta dal 15/08/2026 al 08/09/2026.", False),
        ("La biblioteca comunale resta chiusa.", False),
    ],
)
def test_is_verbatim(summary: str, verbatim: bool) -> None:
    assert is_verbatim(summary, SOURCE) is verbatim


@pytest.mark.parametrize(
    ("text", "dated"),
    [
        ("QUANDO: Domenica 27 settembre 2026", True),
        ("chiuso dal 05/08/2026", True),
        ("aperto il 15/08", True),
        ("dal 1° agosto", True),
        ("lunedì 3 alle 9", True),
        ("alle ore 10.30", False),
        ("contributo di 1.500 euro", False),
        ("anno scolastico 2025/2026", False),
        ("variante n. 7", False),
    ],
)
def test_has_date(text: str, dated: bool) -> None:
    assert has_date(text) is dated


@pytest.mark.parametrize(
    ("summary", "source", "verbatim"),
    [
        pytest.param("Chiuso il sabato.", "Chiuso il sabato\n\nAltro.", True, id="period-where-a-paragraph-ends"),
        pytest.param("Chiuso il sabato.", "Chiuso il sabato", True, id="period-where-the-text-ends"),
        pytest.param("Chiuso il sabato.", "Chiuso il sabato\nVenerdì aperto.", False,
                     id="no-period-where-the-paragraph-goes-on"),
        pytest.param("Chiuso il sabato…", "Chiuso il sabato\nVenerdì aperto.", True, id="cut-where-it-goes-on"),
        pytest.param("La raccolta NON sarà effettuata.", "La raccolta\nNON sarà effettuata.", True,
                     id="a-sentence-across-lines-of-a-paragraph"),
        pytest.param("La raccolta NON sarà effettuata.", "La raccolta\n\nNON sarà effettuata.", False,
                     id="never-across-paragraphs"),
    ],
)
def test_is_verbatim_lines_and_paragraphs(summary: str, source: str, verbatim: bool) -> None:
    assert is_verbatim(summary, source) is verbatim
