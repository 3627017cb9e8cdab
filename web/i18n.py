"""The panel's languages: one message catalogue (Flask-Babel), English and Dutch.

Every text a person reads is written once, in plain English, as the catalogue's message id:
``_()`` in Python, ``{{ _('...') }}`` in templates, ``N_()`` in ``accessd.labels`` for the words
of stored codes. ``make messages`` extracts them (``babel.cfg``) into
``web/translations/messages.pot``, updates ``web/translations/nl/LC_MESSAGES/messages.po`` and
compiles the ``.mo`` the panel reads; the compiled file is committed, so a fresh clone needs no
compile step (``tests/web/test_i18n.py`` fails when it is older than the ``.po``).
docs/translations.md says how to add a string.

The language is the person's choice (the switch in the header: a cookie, kept across sign-in
and sign-out, since choosing a language is not a secret), else the browser's Accept-Language,
else English. Dutch follows the register of processing (``accessd.privacy.processing_register``),
which already speaks it: "u" is not used, the panel addresses staff plainly.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, redirect, request, url_for
from flask_babel import Babel, get_locale, gettext
from werkzeug.wrappers import Response

from accessd.labels import describe_key, describe_value, label, reason_label
from web.security import public, safe_next

LANGUAGES = {"en": "English", "nl": "Nederlands"}
"""The panel's languages, each named in itself (as a language switch shows them)."""
DEFAULT_LANGUAGE = "en"
COOKIE = "accessd_lang"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def chosen_language() -> str:
    """The language of this request: the person's choice, the browser's, or English."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), DEFAULT_LANGUAGE) or \
        DEFAULT_LANGUAGE


def current_language() -> str:
    """The language this page is shown in (its ``<html lang>``)."""
    locale = get_locale()
    return str(locale.language) if locale is not None else DEFAULT_LANGUAGE


def init_i18n(app: Flask) -> None:
    """Flask-Babel on ``app`` with the committed catalogue, the template filters that turn
    stored codes into words, and the language switch (``POST /language``)."""
    Babel(app, locale_selector=chosen_language,
          default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.filters["label"] = lambda value: gettext(label(value))
    app.jinja_env.filters["reason"] = lambda value: gettext(reason_label(value)) if value else ""
    app.jinja_env.globals["detail_key"] = lambda key: gettext(describe_key(key))
    app.jinja_env.globals["detail_value"] = describe_detail_value
    app.jinja_env.globals["languages"] = LANGUAGES
    app.jinja_env.globals["current_language"] = current_language
    app.add_url_rule("/language", "language", choose_language, methods=["POST"])


def describe_detail_value(value: object) -> str:
    """An audit detail's value in words of the page's language (``accessd.labels``)."""
    return describe_value(value, gettext)


@public
def choose_language() -> Response:
    """Remember the language chosen in the header and go back to the page it was chosen on."""
    wanted = request.form.get("language", "")
    back = safe_next(request.form.get("next")) or url_for("dashboard.index")
    response = redirect(back)
    if wanted in LANGUAGES:
        response.set_cookie(
            COOKIE, wanted, max_age=365 * 24 * 3600, path="/", httponly=True, samesite="Lax",
            secure=not current_app.config.get("ACCESSD_INSECURE_HTTP", False))
    return response
