"""What the panel's forms share: a form that carries only its CSRF token, messages, and the
check that a day lies in the range accessd handles."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field
from wtforms.validators import ValidationError

from accessd.errors import InvalidInputError
from accessd.inputs import check_day

DATE_HINT = _l("Pick the day in the calendar.")
"""The hint of every date field (``type="date"``): the browser shows its own date picker, in
the order of its language (mm/dd/yyyy, dd-mm-jjjj...), so no hint names a format (issue 12)."""


class ActionForm(FlaskForm):
    """A button that changes something (disable, reset): a POST with its CSRF token only."""


def as_sentence(error: Exception) -> str:
    """A service's refusal as a sentence to show beside a field: a refused value's problem
    alone (the field's label is right above it: "The name has 5000 characters; at most 200
    fit, so shorten it.", not "Name: is 5000 characters"), in the panel's language."""
    text = error.problem if isinstance(error, InvalidInputError) else str(error)
    text = gettext(text.strip().rstrip("."))  # the service's words, where the catalogue has them
    return text[:1].upper() + text[1:] + "."


class WithinDays:
    """A ``DateField`` validator: the day lies in ``accessd.inputs``' range (a day such as
    0001-01-01 parses, but its local midnight cannot be converted to UTC)."""

    def __call__(self, form: Any, field: Field) -> None:
        if field.data is None:
            return
        try:
            check_day(field.name, field.data)
        except InvalidInputError as exc:
            raise ValidationError(exc.problem[:1].upper() + exc.problem[1:] + ".") from None
