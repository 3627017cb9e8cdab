"""What the panel raises on purpose (its error pages are ``web.error_pages``).

The services' own refusals are ``accessd.errors``; these are the panel's: a JSON API refusal
that says exactly which parameter was wrong.
"""

from __future__ import annotations


class ApiError(Exception):
    """A refusal that says exactly what was wrong (the table in ``web.error_pages`` is generic)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
