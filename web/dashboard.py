"""The dashboard: the first page after sign-in (door states and latest events come later)."""

from __future__ import annotations

from flask import Blueprint, render_template

from web.navigation import NavLink
from web.security import current_staff, login_required

bp = Blueprint("dashboard", __name__)
nav = [NavLink("Dashboard", "dashboard.index", order=0)]


@bp.get("/")
@login_required
def index() -> str:
    """Who is signed in, with which role."""
    return render_template("dashboard.html", user=current_staff())
