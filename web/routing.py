"""How a path names a row: ``<int:...>`` in every route is a row id, parsed as
``accessd.inputs`` parses ids.

Werkzeug's own ``int`` takes any run of Unicode digits of any length: ``/doors/٣/alarms``
reaches the view, and a 30-digit id overflows SQLite's 64-bit integers inside the query (a
500). Here a path segment is an id only if it is 1 to 19 ASCII digits from 1 to 2**63 - 1;
anything else matches no route (404), like any other wrong address.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, ValidationError

from accessd.inputs import optional_id


class RowIdConverter(IntegerConverter):
    """``<int:name>``: a row id (ASCII digits, 1..2**63 - 1), else no match."""

    regex = r"[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        row_id = optional_id(value)
        if row_id is None:
            raise ValidationError()
        return row_id


CONVERTERS = {"int": RowIdConverter}
"""Installed by ``create_app`` before any blueprint adds a rule."""
