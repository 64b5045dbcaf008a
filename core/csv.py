"""CSV for the files people open in a spreadsheet: the formula guard and streamed lines.

Every export (contacts, a campaign's recipients, the audit log, a person's consent ledger, an
import's bad-row report) goes through here, for two reasons:

- a spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  as a formula (CSV injection), so such a cell gets a leading ``'``. Every such cell, whatever it
  holds: a ``'`` shows in the spreadsheet, so the exports write the numbers they hold as the screen
  shows them (``phone_cell``: 090-1234-5678, a digit first, nothing to neutralise) rather than
  ``+81…``, and text people typed (a name, an attribute, a raw import cell) keeps the guard;
- Excel reads a CSV file as UTF-8 only when it starts with a byte-order mark.

Lines are produced one at a time, so a view can stream a large export in constant memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from core.phone import national_format

BOM = "\ufeff"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """The cell as text that a spreadsheet will show and not run: None is empty, formulas get a ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def phone_cell(e164: str | None) -> str:
    """A stored mobile number as the screen shows it (090-1234-5678), for a CSV cell.

    Starts with a digit, so ``csv_safe`` leaves it alone and the spreadsheet shows no ``'``; it keeps
    its leading 0 (the hyphens make it text) and an import reads it back as the same number. A
    number that is not a Japanese mobile (none is stored, but a file may hold anything) stays as it
    is and is guarded like any other cell.
    """
    return national_format(e164 or "")


class _Echo:
    """A file-like object that hands back what is written, so ``writerow`` returns the line."""

    def write(self, value: str) -> str:
        return value


def csv_line_writer():
    """A ``csv.writer`` whose ``writerow`` returns the formatted line instead of writing it."""
    return csv.writer(_Echo())


def csv_lines(header: Iterable, rows: Iterable[Iterable], *, bom: bool = True) -> Iterator[str]:
    """The header and each row as one CSV line, every cell through ``csv_safe``; a BOM first.

    Lazy: the rows are read as the lines are consumed (give it a queryset's ``iterator()``).
    """
    writer = csv_line_writer()
    if bom:
        yield BOM
    yield writer.writerow([csv_safe(cell) for cell in header])
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row])
