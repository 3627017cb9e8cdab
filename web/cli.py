"""``accessd web``: the panel's subcommand, added to the ``accessd`` command from outside.

``accessd`` never imports the panel (the door must not depend on it): the ``accessd.cli``
entry-point group in ``pyproject.toml`` names this ``register``, and ``accessd.cli.main``
loads whatever that group lists. A door installed without the panel simply has no ``web``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accessd.cli.main import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``accessd web`` to the main parser."""
    p = sub.add_parser("web", help="serve the staff panel (waitress)")
    p.add_argument("--insecure-http", action="store_true",
                   help="cookies without Secure: only for a plain-HTTP demo on localhost")
    p.add_argument("--proxy-hops", type=int, default=0,
                   help="reverse proxies (TLS) in front to trust for client address and scheme")
    p.set_defaults(handler=cmd_web, configures_logging=True)


def cmd_web(args: argparse.Namespace, ctx: Context) -> int:
    """Serve the panel with waitress until interrupted."""
    from accessd.cli.main import log_settings
    from accessd.logs import configure_logging
    from web.wsgi import serve

    configure_logging(*log_settings(args, ctx))
    ctx.keys  # noqa: B018 - the panel seals second factors with the keyring: check it first
    serve(ctx.settings, insecure_http=args.insecure_http, proxy_hops=args.proxy_hops)
    return 0
