"""CSV cells a spreadsheet shows as text, never runs as a formula (OWASP "CSV injection").

A feed's title is text from outside: "=HYPERLINK(…)" in it must not become a formula in the
office's spreadsheet. Both CSV exports (`channel-bridge history --format csv` and the
console's *Pubblicati*) write their cells through `csv_cell`.
"""

from __future__ import annotations

# A cell starting with one of these, perhaps after blanks, is read as a formula: it is
# written with an apostrophe before it, which spreadsheets show as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: str) -> str:
    """`value` as a spreadsheet must show it: as text, never as a formula."""
    if value.startswith(_FORMULA_START) or value.lstrip(" \t\r\n").startswith(_FORMULA_START[:4]):
        return "'" + value
    return value
