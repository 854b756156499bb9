"""The shipped zone table: lookups by name, ISTAT code or zone code, a comune on two zones, the
`channel-bridge zones` command, and that the table is rebuilt byte for byte from the open data."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

import pytest

from bridge import cli
from bridge.alerts import zones
from bridge.alerts.zones import ZoneError, area_for, resolve

SHARED = Path(__file__).parents[2] / "shared" / "alerts"
REPOSITORY = Path(__file__).parents[1]


def test_the_table_holds_every_comune_and_zone() -> None:
    assert len(zones.comuni()) == 7904
    assert len(zones.zones()) == 187
    assert sum(1 for comune in zones.comuni() if not comune.zone) == 12
    assert all(comune.zone in zones.zones() for comune in zones.comuni() if comune.zone)


def test_the_shipped_table_is_what_the_script_builds_from_the_open_data() -> None:
    spec = importlib.util.spec_from_file_location("zones_table", REPOSITORY / "bench" / "zones_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build(SHARED)
    data = resources.files("bridge.alerts").joinpath("data")
    assert built == {name: data.joinpath(name).read_text(encoding="utf-8") for name in ("comuni.csv", "zone.csv")}


def test_the_data_credits_its_sources_and_licence() -> None:
    text = resources.files("bridge.alerts").joinpath("data", "README.md").read_text(encoding="utf-8")
    assert "opendatasicilia" in text and "Dipartimento della Protezione Civile" in text and "CC BY 4.0" in text


@pytest.mark.parametrize("query", ["Piacenza", "piacenza", "  PIACENZA ", "033032", "33032"])
def test_a_comune_by_name_or_code(query: str) -> None:
    (comune,) = resolve(query).comuni
    assert (comune.istat, comune.name, comune.province, comune.zone) == ("033032", "Piacenza", "PC", "Emil-H1")


@pytest.mark.parametrize("query", ["Agliè", "aglie", "AGLIE'", "Aglie\u0300"])
def test_names_are_accent_and_case_insensitive(query: str) -> None:
    assert [comune.istat for comune in resolve(query).comuni] == ["001001"]


def test_a_shared_name_lists_every_comune() -> None:
    found = resolve("Samone")
    assert [(comune.istat, comune.province, comune.zone) for comune in found.comuni] == [
        ("001235", "TO", "Piem-I"), ("022165", "TN", "Tren-B")]


def test_a_zone_code_names_its_zone() -> None:
    found = resolve("emil-h1")
    assert found.zone is not None
    assert (found.zone.code, found.zone.name) == ("Emil-H1", "Bassa collina piacentino-parmense")
    assert found.zone_comuni == sum(1 for comune in zones.comuni() if comune.zone == "Emil-H1") > 0


@pytest.mark.parametrize(("query", "message"), [
    ("", "give a comune's name"),
    ("999999", 'no comune has ISTAT code "999999"'),
    ("1234567", 'no comune has ISTAT code "1234567"'),
    ("Atlantide", 'no comune or alert zone is called "Atlantide"'),
])
def test_what_is_not_in_the_table_is_named(query: str, message: str) -> None:
    with pytest.raises(ZoneError, match=message):
        resolve(query)


def test_the_meteoalarm_region_of_a_comune_where_it_is_known() -> None:
    (turin,) = resolve("Torino").comuni
    assert turin.emma_id == "IT005"
    (piacenza,) = resolve("Piacenza").comuni
    assert piacenza.emma_id is None  # not seen in Meteoalarm's feed: the operator names it


def test_a_comune_on_two_zones_gets_the_second_from_zones() -> None:
    assert area_for(istat="033032").zones == ("Emil-H1",)
    area = area_for(istat="033032", zones=("emil-h2", "Emil-H1"), regions=("it008",))
    assert (area.zones, area.regions) == (("Emil-H1", "Emil-H2"), ("IT008",))
    assert area_for(istat="001272").regions == ("IT005",)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"istat": "999999"}, 'istat: no comune has code "999999"'),
    ({"zones": ("Emil-Z9",)}, 'zones: "Emil-Z9" is not an alert zone code'),
    ({"regions": ("IT021",)}, 'regions: "IT021" is not a Meteoalarm region'),
    ({"regions": ("Lazio",)}, 'regions: "Lazio" is not a Meteoalarm region'),
])
def test_a_bad_area_is_named(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ZoneError, match=message):
        area_for(**arguments)  # type: ignore[arg-type]


def test_the_zones_command_prints_a_comune(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["zones", "Piacenza"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "Piacenza (PC, Emilia-Romagna), ISTAT 033032",
        "  alert zone: Emil-H1 (Bassa collina piacentino-parmense)",
        '  Meteoalarm region: not known for Emilia-Romagna: name it with regions = ["IT0.."]',
        '  config: istat = "033032" (a comune on two zones adds the other: zones = ["..."])',
    ]


def test_the_zones_command_lists_a_shared_name_and_a_zone(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["zones", "samone"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('2 comuni are called "samone"; pick one by its ISTAT code:\n')
    assert "ISTAT 001235" in out and "ISTAT 022165" in out and "Meteoalarm region: IT002" in out
    assert cli.main(["zones", "Tren-B"]) == 0
    assert capsys.readouterr().out.startswith("zone Tren-B: Provincia Autonoma di Trento (")


def test_the_zones_command_names_what_it_cannot_find(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["zones", "Atlantide"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert 'no comune or alert zone is called "Atlantide"' in captured.err
