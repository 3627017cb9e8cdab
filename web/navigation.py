"""The menu: each page module lists its links, each shown only to those its view admits.

A module adds ``nav = [NavLink("Customers", "customers.index", order=20)]`` beside its ``bp``;
who sees the link follows from the view's own ``@role_required``, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request

from accessd.staff import role_allows
from web.security import access_of, current_staff

EXTENSION = "accessd_nav"


@dataclass(frozen=True, slots=True)
class NavLink:
    """One menu entry: its label, the endpoint it opens, and its place (low first)."""

    label: str
    endpoint: str
    order: int = 50


def register_links(app: Flask, links: list[NavLink]) -> None:
    """Add a module's links to the app's menu."""
    menu: list[NavLink] = app.extensions.setdefault(EXTENSION, [])
    menu.extend(links)
    menu.sort(key=lambda link: (link.order, link.label))


def visible_links() -> list[dict[str, Any]]:
    """The menu for the signed-in staff member, with the current page marked."""
    user = current_staff()
    if user is None:
        return []
    shown = []
    for link in current_app.extensions.get(EXTENSION, []):
        access = access_of(current_app.view_functions[link.endpoint])
        if access is None or access.kind != "staff":
            continue
        if access.roles and not role_allows(user.role, access.roles):
            continue
        current = request.endpoint == link.endpoint
        shown.append({"label": link.label, "endpoint": link.endpoint, "current": current})
    return shown
