"""The staff panel: a Flask app on the services of ``accessd``, sharing the daemon's database.

``create_app(config)`` (``web.app``) builds it; nothing runs at import time. Each area is a
module ``web/pages/<area>.py`` exporting a blueprint ``bp`` (and optionally ``nav``, its menu
links); ``create_app`` registers every such module it finds, so a new page is one module plus its
templates. Its views must declare their access (``web.security``) or the app refuses to start.

This package's ``__init__`` imports nothing: ``accessd`` loads ``web.cli`` (its ``accessd web``
subcommand) through an entry point in every process, the door's daemon too, which must not
carry Flask, Jinja and WTForms (8 MB) for a command it never runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from web.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
