"""What the panel's forms share: a form that carries only its CSRF token, and messages."""

from __future__ import annotations

from flask_wtf import FlaskForm


class ActionForm(FlaskForm):
    """A button that changes something (disable, reset): a POST with its CSRF token only."""


def as_sentence(error: Exception) -> str:
    """A service's refusal as a sentence to show beside a field."""
    text = str(error)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
