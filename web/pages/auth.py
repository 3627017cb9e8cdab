"""Signing in and out, and the signed-in user's own password and second factor.

Sign-in takes user name, password and the authenticator code in one form: there is no
half-signed-in state to manage, and every failure gets the same message.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length

from accessd.errors import PasswordRejectedError, TotpSetupError, WrongPasswordError
from accessd.models import AuditOutcome
from accessd.staff import (
    GENERIC_LOGIN_FAILURE,
    authenticate,
    new_totp_secret,
    open_pending_secret,
    provisioning_uri,
    replace_second_factor,
    seal_pending_secret,
)
from accessd.staff import change_password as change_own_password
from accessd.staff.policy import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    PASSWORD_MIN_SCORE,
    TOTP_DIGITS,
)
from web.forms import as_sentence
from web.panel import current_panel, db, source_address
from web.qr import qr_svg
from web.request_audit import audit
from web.security import (
    current_staff,
    initial_password_ok,
    login_required,
    public,
    safe_next,
    sign_in,
    sign_out,
)

bp = Blueprint("auth", __name__)

_CODE_ATTRS = {
    "autocomplete": "one-time-code",
    "inputmode": "numeric",
    "pattern": r"[0-9 ]*",
    "maxlength": str(TOTP_DIGITS + 2),
}
_NEW_PASSWORD_ATTRS = {"autocomplete": "new-password", "minlength": str(PASSWORD_MIN_LENGTH)}


PASSWORD_RULES = {
    "too_short": _l("The password must have at least %(count)s characters; a few unrelated words "
                    "make a good one.", count=PASSWORD_MIN_LENGTH),
    "too_long": _l("The password must have at most %(count)s characters.",
                   count=PASSWORD_MAX_LENGTH),
    "user_name": _l("The password must not be the user name."),
    "listed": _l("This password is on the list of common and breached passwords; choose "
                 "another."),
    "guessable": _l("This password is easy to guess; choose another: a few unrelated words make "
                    "a good one."),
}
"""What the panel says when a new password breaks a rule of ``judge_password``."""


def password_refusal(error: PasswordRejectedError) -> str:
    """The refusal of a new password, beside the field, in the reader's language."""
    said = PASSWORD_RULES.get(error.rule or "")
    return str(said) if said is not None else as_sentence(error)


class LoginForm(FlaskForm):
    """User name, password and the current code, together."""

    username = StringField(
        _l("User name"),
        [InputRequired(_l("Enter your user name.")), Length(max=64, message=_l("Too long."))],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("Password"),
        [InputRequired(_l("Enter your password.")), Length(max=PASSWORD_MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    code = StringField(
        _l("Code from your authenticator app"),
        [InputRequired(_l("Enter the 6-digit code your authenticator app shows now."))],
        render_kw=_CODE_ATTRS,
    )
    next = HiddenField()


class ChangePasswordForm(FlaskForm):
    """The current password, and the new one twice."""

    current_password = PasswordField(
        _l("Current password"),
        [InputRequired(_l("Enter your current password."))],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        _l("New password"),
        [InputRequired(_l("Choose a new password."))],
        description=_l("At least %(count)s characters, not a common or breached password; a "
                       "few unrelated words work well.", count=PASSWORD_MIN_LENGTH),
        render_kw=_NEW_PASSWORD_ATTRS,
    )
    confirm = PasswordField(
        _l("New password again"),
        [
            InputRequired(_l("Type the new password again.")),
            EqualTo("new_password", _l("The two new passwords differ; type them again.")),
        ],
        render_kw=_NEW_PASSWORD_ATTRS,
    )


class SecondFactorForm(FlaskForm):
    """Confirms a new authenticator app: the current password and the app's first code."""

    pending = HiddenField()
    current_password = PasswordField(
        _l("Current password"),
        [InputRequired(_l("Enter your current password."))],
        render_kw={"autocomplete": "current-password"},
    )
    code = StringField(
        _l("Code from the new app"),
        [InputRequired(_l("Enter the 6-digit code the app shows for this account."))],
        render_kw=_CODE_ATTRS,
    )


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str:
    """Sign in with user name, password and code."""
    form = LoginForm()
    if current_staff() is not None:
        return redirect(safe_next(form.next.data) or url_for("dashboard.index"))
    failed = False
    if form.validate_on_submit():
        panel = current_panel()
        result = authenticate(
            db(), form.username.data or "", form.password.data or "", form.code.data or "",
            provider=panel.keys, source_address=source_address(), now=panel.now(),
        )  # fmt: skip
        audit().actor = form.username.data or ""
        audit().note("auth.login", outcome=AuditOutcome.SUCCESS if result.ok else
                     AuditOutcome.DENIED, result=result.outcome.value)  # fmt: skip
        if result.user is not None:
            sign_in(result.user)
            db().commit()
            return redirect(safe_next(form.next.data) or url_for("dashboard.index"))
        db().commit()  # the failed attempt is the lockout counter: it must be kept
        failed = True
    elif not form.next.data:
        form.next.data = safe_next(_next_argument())
    return render_template(
        "auth/login.html", form=form, failure=GENERIC_LOGIN_FAILURE if failed else None
    )


def _next_argument() -> str | None:
    return request.args.get("next")


@bp.post("/logout")
@login_required
@initial_password_ok
def logout() -> Response:
    """Sign out: the session ends on the server, so a copied cookie is useless too."""
    audit().note("auth.logout")
    sign_out()
    db().commit()
    flash(_("You are signed out."), "success")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@initial_password_ok
def change_password() -> Response | str:
    """Change one's own password; every other session of this user ends."""
    user = current_staff()
    assert user is not None
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            change_own_password(
                db(), user, form.current_password.data or "", form.new_password.data or "",
                now=current_panel().now(),
            )  # fmt: skip
        except WrongPasswordError as exc:
            form.current_password.errors = [as_sentence(exc)]
        except PasswordRejectedError as exc:
            form.new_password.errors = [password_refusal(exc)]
        else:
            audit().note("auth.change_password", target=f"staff:{user.public_id}")
            sign_in(user)  # the change ended every session; this browser gets a new one
            db().commit()
            flash(_("Password changed. Any other sessions of yours have been signed out."),
                  "success")
            return redirect(url_for("dashboard.index"))
    return render_template("auth/change_password.html", form=form,
                           min_length=PASSWORD_MIN_LENGTH, min_score=PASSWORD_MIN_SCORE)


@bp.route("/account/second-factor", methods=["GET", "POST"])
@login_required
def second_factor() -> Response | str:
    """Move one's second factor to a new authenticator app (a new phone)."""
    user = current_staff()
    assert user is not None
    panel = current_panel()
    form = SecondFactorForm()
    secret = None
    if form.validate_on_submit():
        try:
            replace_second_factor(
                db(), user, password=form.current_password.data or "",
                pending=form.pending.data or "", code=form.code.data or "",
                provider=panel.keys, now=panel.now(),
            )  # fmt: skip
        except WrongPasswordError as exc:
            form.current_password.errors = [as_sentence(exc)]
        except TotpSetupError as exc:
            form.code.errors = [as_sentence(exc)]
        else:
            audit().note("auth.replace_second_factor", target=f"staff:{user.public_id}")
            sign_in(user)
            db().commit()
            flash(_("Second factor replaced: from now on, use the codes of the new app."),
                  "success")
            return redirect(url_for("dashboard.index"))
        try:  # show the same QR code again: the person may have scanned it already
            secret = open_pending_secret(user, form.pending.data or "", panel.keys, panel.now())
        except TotpSetupError:
            secret = None
    if secret is None:
        secret = new_totp_secret()
        form.pending.data = seal_pending_secret(user, secret, panel.keys, panel.now())
    uri = provisioning_uri(user.username, secret)
    return render_template(
        "auth/second_factor.html", form=form, qr=qr_svg(uri), secret=_grouped(secret)
    )


def _grouped(secret: str) -> str:
    # Groups of four, as apps show them, for typing the secret in by hand.
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))

