"""Rebuild the alert-zone tables shipped in bridge/alerts/data/ from the open data.

Usage: .venv/bin/python bench/zones_table.py [DIR]

DIR holds the two opendatasicilia tables (default ../shared/alerts beside the repository):
`07_dpc_zone_comuni_ISTAT_opendatasicilia.csv` (ISTAT code -> DPC alert zone, one row per
comune) and `13_dpc_zone_opendatasicilia.csv` (zone code -> name). Writes `comuni.csv`
(istat, nome, provincia, regione, zona) and `zone.csv` (codice, nome), sorted, UTF-8, so that
a rebuild from the same tables gives the same bytes (tests/test_alerts_zones.py checks it).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DATA = REPOSITORY / "bridge" / "alerts" / "data"


def _csv(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def build(source: Path) -> dict[str, str]:
    """The shipped files' text, by file name, from the open-data tables in `source`."""
    with open(source / "07_dpc_zone_comuni_ISTAT_opendatasicilia.csv", encoding="utf-8", newline="") as file:
        comuni = sorted((row["pro_com_t"], row["comune_nome"], row["provincia_sigla"], row["regione_nome"],
                         row["zona_codice"]) for row in csv.DictReader(file))
    with open(source / "13_dpc_zone_opendatasicilia.csv", encoding="utf-8", newline="") as file:
        zones = sorted((row["zona_codice"], row["zona_nome"]) for row in csv.DictReader(file))
    return {"comuni.csv": _csv(("istat", "nome", "provincia", "regione", "zona"), comuni),
            "zone.csv": _csv(("codice", "nome"), zones)}


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else REPOSITORY.parent / "shared" / "alerts"
    for name, text in build(source).items():
        (DATA / name).write_text(text, encoding="utf-8")
        print(f"{DATA / name}: {text.count(chr(10)) - 1} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
