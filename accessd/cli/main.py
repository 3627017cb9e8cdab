"""``accessd``: one command for the door, the data and the people.

Each area adds its subcommands through a ``register(subparsers)`` function in its own
``accessd/cli/<area>.py`` module; every handler takes ``(args, ctx)`` and returns an exit code.
Errors raised on purpose (``AccessdError``) print as one line on stderr with exit code 1;
everything else is a bug and shows its traceback.

Around every handler, ``main`` keeps the audit trail (``accessd.cli.audit``): a command that
reads, changes, exports or deletes personal data leaves one record, refused and failed ones
too; a handler adds what only it knows through ``ctx.audit.note(...)``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from functools import cached_property
from importlib import metadata
from typing import TYPE_CHECKING, Any

from accessd.cli.audit import CommandAudit, close_audit, open_audit
from accessd.errors import AccessdError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from accessd.clock import SiteClock, WallClock
    from accessd.config import Settings
    from accessd.crypto import FileKeyProvider

# Modules whose register() adds subcommands, imported lazily so `accessd --help` stays fast.
AREAS = ("accessd.cli.door", "accessd.cli.people", "accessd.cli.staff", "accessd.cli.privacy",
         "accessd.cli.rights", "accessd.cli.zones", "accessd.cli.site")

Handler = Callable[[argparse.Namespace, "Context"], int]


class Context:
    """What handlers need, built on first use: settings, the site's clock, database, keys.

    :param wall: the current moment (aware UTC) for ``clock``; tests pass their own.
    """

    def __init__(self, config: str | None, overrides: dict[str, Any] | None = None,
                 wall: WallClock | None = None) -> None:
        self.config_path = config
        self.overrides = overrides or {}
        self.wall = wall
        self.autocheckpoint = True  # `accessd run` turns it off and checkpoints off its hot path
        # True when this process is the `accessd` command itself (not main() called by a test
        # or a script): only then may a handler replace the process (`accessd run` does).
        self.own_process = False
        self.audit = CommandAudit()  # this command's audit record, opened by `main`

    @cached_property
    def settings(self) -> Settings:
        from accessd.config import load_settings

        return load_settings(self.config_path, overrides=self.overrides)

    @cached_property
    def clock(self) -> SiteClock:
        """The site's time: "today at the site", local days, now."""
        from accessd.clock import SiteClock

        return SiteClock.of(self.settings, wall=self.wall)

    @cached_property
    def engine(self) -> Engine:
        from accessd.db import create_db_engine

        return create_db_engine(self.settings.database.url, autocheckpoint=self.autocheckpoint)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        from accessd.db import make_sessionmaker

        return make_sessionmaker(self.engine)

    @cached_property
    def keys(self) -> FileKeyProvider:
        from accessd.crypto.installation import open_key_provider

        return open_key_provider(self.settings)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accessd", description="Door access control for colocation datacenters.")
    parser.add_argument(
        "--config", default=None,
        help="configuration file (default: $ACCESSD_CONFIG, else /etc/accessd/accessd.toml)")
    parser.add_argument(
        "--log-format", choices=("kv", "json"), default=None,
        help="log lines as key=value pairs (default) or JSON objects; the daemon and the panel "
             "default to [log] format")
    parser.add_argument(
        "--log-level", dest="main_log_level", default=None,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the least severe log events shown (default: WARNING; the daemon and the panel: "
             "[log] level)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    import importlib

    for area in AREAS:
        try:
            module = importlib.import_module(area)
        except ModuleNotFoundError as exc:
            if exc.name != area:
                raise
            continue  # an area not built yet
        module.register(sub)
    # Areas of other packages (the panel's `accessd web`), found without importing them here.
    for entry in metadata.entry_points(group="accessd.cli"):
        entry.load()(sub)
    return parser


def ctx_logs_here(args: argparse.Namespace) -> bool:
    """Whether ``main`` sets logging up: not for the daemon and the panel, which read their
    own ``[log]`` settings (``log_settings``)."""
    return not getattr(args, "configures_logging", False)


def log_settings(args: argparse.Namespace, ctx: Context,
                 level: str | None = None) -> tuple[str, str]:
    """(format, level) for a long-running process: flags, then ``[log]`` in the config."""
    log = ctx.settings.log
    return (args.log_format or log.format, level or args.main_log_level or log.level)


def main(argv: Sequence[str] | None = None, *, wall: WallClock | None = None) -> int:
    """Run ``accessd ARGV...``; ``wall`` replaces the current time (tests move it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if ctx_logs_here(args):
        from accessd.logs import configure_logging

        configure_logging(args.log_format or "kv", args.main_log_level or "WARNING")
    ctx = Context(args.config, wall=wall)
    ctx.own_process = argv is None
    handler: Handler = args.handler
    code: int = 1
    error: BaseException | None = None
    try:
        ctx.audit = open_audit(parser, args, ctx)
        code = handler(args, ctx)
        return code
    except AccessdError as exc:
        error = exc
        print(f"accessd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        error = exc
        return 130
    except BrokenPipeError:
        # Whoever read our output went away (`accessd status | head -1`): what was asked was
        # done and nobody waits for the rest. Send what is still buffered nowhere, so that the
        # interpreter's last flush does not fail too (the recipe of Python's signal docs).
        if not ctx.own_process:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
        return 0
    except BaseException as exc:  # a bug: recorded as failed, then shown with its traceback
        error = exc
        raise
    finally:
        close_audit(ctx.audit, ctx, code, error)
        ctx.close()
        logging.getLogger("accessd.cli").debug("command finished", extra={
            "command": args.command, "code": code,
            "error": type(error).__name__ if error is not None else None})


if __name__ == "__main__":
    sys.exit(main())
