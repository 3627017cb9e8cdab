"""``accessd user ...`` and ``accessd token ...``: staff accounts and API tokens from a shell.

``register(subparsers)`` adds the commands to the main ``accessd`` parser. Each command sets
``handler``; the main CLI calls ``args.handler(args, ctx)`` with its ``Context`` (anything
with ``sessions`` and ``keys``, or a ``StaffCliContext``), which returns the exit status and
raises ``AccessdError`` (printed by the main CLI as one line) when it refuses.

There is no default account: ``accessd user add NAME --role admin`` makes the first admin.
Every command that changes an account or a token is written to the audit log as
``cli:<unix user>``, in the transaction that makes the change; a refused one is written by
the main CLI (``accessd.cli.audit``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.audit import cli_actor
from accessd.clock import SiteClock, time_label
from accessd.crypto import KeyProvider
from accessd.db import session_scope
from accessd.errors import ApiTokenError, PasswordRejectedError
from accessd.models import AuditOutcome, StaffRole, StaffUser, utcnow
from accessd.staff import (
    IssuedCredentials,
    create_api_token,
    create_staff_user,
    disable_staff_user,
    get_staff_user,
    list_api_tokens,
    list_staff_users,
    name_locks,
    record_audit,
    reset_password,
    revoke_api_token,
    unlock_name,
)
from accessd.staff.policy import Clock
from accessd.staff.totp import has_totp

ROLES = [role.value for role in StaffRole]


@dataclass
class StaffCliContext:
    """What the staff commands need: the database, the keyring, a clock and the terminal."""

    sessions: sessionmaker[Session]
    keys: KeyProvider
    clock: Clock = utcnow
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    actor: str = field(default_factory=cli_actor)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # the site's, for times

    def say(self, *lines: str) -> None:
        """Print lines to the command's output."""
        for line in lines:
            print(line, file=self.stdout)


class _MainContext(Protocol):
    """What the main CLI's ``Context`` offers the staff commands."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def keys(self) -> KeyProvider: ...

    @property
    def clock(self) -> SiteClock: ...


def staff_context(ctx: StaffCliContext | _MainContext) -> StaffCliContext:
    """The staff commands' view of the main CLI's context (tests pass their own)."""
    if isinstance(ctx, StaffCliContext):
        return ctx
    return StaffCliContext(ctx.sessions, ctx.keys, zone=ctx.clock.zone)


def register(subparsers: Any) -> None:
    """Add ``user`` and ``token`` to the main parser's subparsers (``add_subparsers()``)."""
    user = subparsers.add_parser("user", help="staff accounts for the panel")
    users = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)

    add = users.add_parser("add", help="create a staff account (prints its password once)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument("--qr", action="store_true", help="also draw the second factor's QR code")
    add.set_defaults(handler=_run(user_add))

    listing = users.add_parser("list", help="list staff accounts")
    listing.set_defaults(handler=_run(user_list))

    disable = users.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.set_defaults(handler=_run(user_disable))

    reset = users.add_parser(
        "reset-password", help="give an account a new password (ends its sessions)"
    )
    reset.add_argument("username")
    reset.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    reset.add_argument(
        "--new-second-factor",
        action="store_true",
        help="also issue a new TOTP secret (a lost or replaced phone)",
    )
    reset.add_argument("--qr", action="store_true", help="also draw the second factor's QR code")
    reset.set_defaults(handler=_run(user_reset_password))

    unlock = users.add_parser(
        "unlock", help="end an account's sign-in pauses after failed sign-ins (audited)"
    )
    unlock.add_argument("username")
    unlock.set_defaults(handler=_run(user_unlock))

    token = subparsers.add_parser("token", help="API tokens for /api/v1")
    tokens = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    token_add = tokens.add_parser("add", help="create an API token (prints it once)")
    token_add.add_argument("name")
    token_add.add_argument("--role", required=True, choices=ROLES)
    token_add.add_argument(
        "--expires-days", type=int, default=None, help="days until the token stops working"
    )
    token_add.set_defaults(handler=_run(token_add_command))
    token_list = tokens.add_parser("list", help="list API tokens")
    token_list.set_defaults(handler=_run(token_list_command))
    token_revoke = tokens.add_parser("revoke", help="revoke an API token at once")
    token_revoke.add_argument("name")
    token_revoke.set_defaults(handler=_run(token_revoke_command))


Command = Callable[[argparse.Namespace, StaffCliContext], int]


def _run(command: Command) -> Callable[[argparse.Namespace, Any], int]:
    def run(args: argparse.Namespace, ctx: Any) -> int:
        return command(args, staff_context(ctx))

    run.__doc__ = command.__doc__
    return run


def _read_password(ctx: StaffCliContext) -> str:
    # One line; the trailing newline is not part of the password.
    password = ctx.stdin.readline().rstrip("\r\n")
    if not password:
        raise PasswordRejectedError("no password on standard input; pipe it in, one line")
    return password


def _show_credentials(ctx: StaffCliContext, issued: IssuedCredentials, qr: bool) -> None:
    if issued.password is not None:
        ctx.say(
            f"Password (shown once; {issued.user.username} must change it at first sign-in):",
            f"  {issued.password}",
        )
    uri = issued.provisioning_uri
    if uri is not None and issued.totp_secret is not None:
        ctx.say(
            "Second factor: add this account to an authenticator app by scanning the QR code",
            "(--qr, or the panel's second-factor page after sign-in) or by entering the URI:",
            f"  {uri}",
            f"  secret: {issued.totp_secret}",
        )
        if qr:
            import segno  # a QR code for one command: not loaded by every other, the daemon's too

            segno.make(uri, error="m").terminal(out=ctx.stdout, compact=True)


def _audit(ctx: StaffCliContext, db: Session, action: str, target: str, **details: Any) -> None:
    record_audit(
        db,
        actor=ctx.actor,
        action=action,
        target=target,
        details=details or None,
        source_address="local",
        outcome=AuditOutcome.SUCCESS,
        at=ctx.clock(),
    )


def user_add(args: argparse.Namespace, ctx: StaffCliContext) -> int:
    """Create a staff account; print its password (unless given) and second factor once."""
    password = _read_password(ctx) if args.password_stdin else None
    with session_scope(ctx.sessions) as db:
        issued = create_staff_user(
            db, args.username, StaffRole(args.role), provider=ctx.keys, now=ctx.clock(),
            password=password,
        )  # fmt: skip
        _audit(ctx, db, "staff.create", _target(issued.user), role=args.role)
    ctx.say(f"Created staff user {issued.user.username} ({issued.user.role}).")
    _show_credentials(ctx, issued, args.qr)
    return 0


def user_list(args: argparse.Namespace, ctx: StaffCliContext) -> int:
    """Print every staff account: name, role, state, second factor, last sign-in."""
    with session_scope(ctx.sessions) as db:
        users = list_staff_users(db)
        locked = {user.id for user in users
                  if name_locks(db, user.username, now=ctx.clock()).locked}
    if not users:
        ctx.say("No staff users yet; create the first admin: `accessd user add NAME --role admin`.")
        return 0
    ctx.say(f"{'USERNAME':<24} {'ROLE':<9} {'STATE':<9} {'2FA':<4} LAST SIGN-IN")
    for user in users:
        state = "disabled" if user.disabled else "locked" if user.id in locked else "active"
        second = "yes" if has_totp(user) else "no"
        last = _when(user.last_login_at, ctx.zone)
        ctx.say(f"{user.username:<24} {user.role:<9} {state:<9} {second:<4} {last}")
    return 0


def user_disable(args: argparse.Namespace, ctx: StaffCliContext) -> int:
    """Disable an account; its sessions end at once."""
    with session_scope(ctx.sessions) as db:
        user = get_staff_user(db, args.username)
        disable_staff_user(db, user, now=ctx.clock())
        _audit(ctx, db, "staff.disable", _target(user))
    ctx.say(f"Disabled {user.username}; their sessions have ended.")
    return 0


def user_reset_password(args: argparse.Namespace, ctx: StaffCliContext) -> int:
    """Give an account a new password (and optionally a new second factor); sessions end."""
    password = _read_password(ctx) if args.password_stdin else None
    with session_scope(ctx.sessions) as db:
        user = get_staff_user(db, args.username)
        issued = reset_password(
            db, user, now=ctx.clock(), provider=ctx.keys,
            new_second_factor=args.new_second_factor, password=password,
        )  # fmt: skip
        _audit(
            ctx, db, "staff.reset_password", _target(user),
            new_second_factor=args.new_second_factor,
        )  # fmt: skip
    ctx.say(f"Reset the password of {user.username}; their sessions have ended.")
    _show_credentials(ctx, issued, args.qr)
    return 0


def user_unlock(args: argparse.Namespace, ctx: StaffCliContext) -> int:
    """End every sign-in pause of an account (from any address, and everywhere) at once; its
    failed sign-ins count from zero again. Pauses of source addresses end by themselves."""
    now = ctx.clock()
    with session_scope(ctx.sessions) as db:
        user = get_staff_user(db, args.username)
        was = unlock_name(db, user.username, source_address="local", now=now)
        _audit(ctx, db, "staff.unlock", _target(user), **was.audit_details())
    if was.locked:
        ctx.say(f"Unlocked {user.username}: {was.describe()} ended; "
                "failed sign-ins count from zero again.")
    else:
        ctx.say(f"{user.username} was not locked; failed sign-ins count from zero again.")
    return 0


def token_add_command(args: argparse.Namespace, ctx: StaffCliContext) -> int:
    """Create an API token with a role; print it once."""
    now = ctx.clock()
    if args.expires_days is not None and args.expires_days < 1:
        raise ApiTokenError("--expires-days must be at least 1 (or leave it out: no expiry)")
    expires = None if args.expires_days is None else now + dt.timedelta(days=args.expires_days)
    with session_scope(ctx.sessions) as db:
        row, token = create_api_token(
            db, args.name, StaffRole(args.role), created_by=ctx.actor, now=now, expires_at=expires
        )
        _audit(ctx, db, "token.create", f"token:{row.name}", role=args.role)
    ctx.say(
        f"Created API token {row.name} ({row.role}); "
        f"expires: {_when(row.expires_at, ctx.zone)}.",
        "Token (shown once; send it as `Authorization: Bearer <token>`):",
        f"  {token}",
    )
    return 0


def token_list_command(args: argparse.Namespace, ctx: StaffCliContext) -> int:
    """Print every API token: name, role, state, last use."""
    with session_scope(ctx.sessions) as db:
        rows = list_api_tokens(db)
    if not rows:
        ctx.say("No API tokens; create one with `accessd token add NAME --role auditor`.")
        return 0
    ctx.say(f"{'NAME':<24} {'ROLE':<9} {'STATE':<8} LAST USED (UTC)")
    for row in rows:
        state = "revoked" if row.revoked_at is not None else "active"
        used = _when(row.last_used_at, ctx.zone)
        ctx.say(f"{row.name:<24} {row.role:<9} {state:<8} {used}")
    return 0


def token_revoke_command(args: argparse.Namespace, ctx: StaffCliContext) -> int:
    """Revoke an API token; it stops working at once."""
    with session_scope(ctx.sessions) as db:
        row = revoke_api_token(db, args.name, now=ctx.clock())
        _audit(ctx, db, "token.revoke", f"token:{row.name}")
    ctx.say(f"Revoked API token {row.name}.")
    return 0


def _target(user: StaffUser) -> str:
    return f"staff:{user.public_id}"


def _when(moment: dt.datetime | None, zone: ZoneInfo) -> str:
    """A moment in the site's time with its zone ("never" for none)."""
    return "never" if moment is None else time_label(moment, zone, seconds=False)
