"""Rebuild the alert-zone tables shipped in bridge/alerts/data/ from the open data.

Usage: .venv/bin/python bench/zones_table.py [DIR]

DIR holds the two opendatasicilia tables (default ../shared/alerts beside the repository):
`07_dpc_zone_comuni_ISTAT_opendatasicilia.csv` (ISTAT code -> DPC alert zone, one row per
comune) and `13_dpc_zone_opendatasicilia.csv` (zone code -> name). Writes `comuni.csv`
(istat, nome, provincia, regione, zona) and `zone.csv` (codice, nome), sorted, UTF-8, so that
a rebuild from the same tables gives the same bytes.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DATA = REPOSITORY / "bridge" / "alerts" / "data"


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else REPOSITORY.parent / "shared" / "alerts"
    with open(source / "07_dpc_zone_comuni_ISTAT_opendatasicilia.csv", encoding="utf-8", newline="") as file:
        comuni = sorted((row["pro_com_t"], row["comune_nome"], row["provincia_sigla"], row["regione_nome"],
                         row["zona_codice"]) for row in csv.DictReader(file))
    with open(source / "13_dpc_zone_opendatasicilia.csv", encoding="utf-8", newline="") as file:
        zones = sorted((row["zona_codice"], row["zona_nome"]) for row in csv.DictReader(file))
    with open(DATA / "comuni.csv", "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(("istat", "nome", "provincia", "regione", "zona"))
        writer.writerows(comuni)
    with open(DATA / "zone.csv", "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(("codice", "nome"))
        writer.writerows(zones)
    print(f"{len(comuni)} comuni, {len(zones)} zones written to {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
