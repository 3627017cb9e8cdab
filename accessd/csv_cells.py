"""Every CSV file accessd writes goes through here: one rule against formula injection.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and one
that starts with a tab or a carriage return after trimming it; ``=HYPERLINK(...)`` typed as a
person's name would then run on the machine of the staff member who opens the export. So,
after OWASP's CSV injection rule (and ASVS 5.0 1.2.10, which adds NUL): a text cell starting
with one of those characters gets a leading ``'``, which spreadsheets take as "this is text"
and do not show. Quoting of commas, quotes and line breaks is the ``csv`` module's (RFC 4180).

Numbers stay numbers (``-1`` as an integer is data, not a formula); ``None`` is an empty cell.
Escaping is idempotent: an escaped cell starts with ``'``, which is not a trigger.

The history CSV, the privacy export and the register of processing activities all write
through ``csv_writer``; ``tests/architecture`` checks that no other module calls
``csv.writer`` itself.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
"""First characters that make a spreadsheet read a cell as a formula (OWASP: = + - @ tab
CR; ASVS 5.0 1.2.10 adds NUL; a leading line feed is trimmed like CR by some spreadsheets)."""
TEXT_MARKER = "'"


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def csv_cell(value: object) -> str | int | float:
    """``value`` as a CSV cell that no spreadsheet runs as a formula.

    Text starting with a formula trigger gets a leading ``'``; ``None`` is empty; integers and
    floats pass as numbers (booleans as ``True``/``False`` text, as ``csv`` writes them).
    """
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else str(value)
    return TEXT_MARKER + text if text.startswith(FORMULA_TRIGGERS) else text


class CellWriter:
    """A ``csv.writer`` whose every cell has gone through ``csv_cell``."""

    def __init__(self, stream: _Writable, **fmtparams: Any) -> None:
        self._writer = csv.writer(stream, **fmtparams)

    def writerow(self, row: Iterable[object]) -> None:
        """Write one row, every cell escaped."""
        self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write several rows, every cell escaped."""
        for row in rows:
            self.writerow(row)


def csv_writer(stream: _Writable, **fmtparams: Any) -> CellWriter:
    """A CSV writer on ``stream`` (``csv.writer``'s dialect options) that escapes every cell."""
    return CellWriter(stream, **fmtparams)
