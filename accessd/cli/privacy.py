"""``accessd purge | verify-certificate | retention | register | dpia``: the privacy commands.

Thin: each handler calls the same services the daemon's scheduler and the panel use
(``accessd.privacy.purge``, ``accessd.privacy.retention``,
``accessd.privacy.processing_register``, ``accessd.privacy.dpia``) and prints
what an operator or an auditor needs to act on.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import getpass
import sys
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accessd.errors import AccessdError

if TYPE_CHECKING:
    from accessd.cli.main import Context
    from accessd.privacy.purge import PlannedPurge


def register(subparsers: Any) -> None:
    """Add the privacy subcommands to the ``accessd`` parser."""
    purge = subparsers.add_parser(
        "purge", help="purge customers whose contract (plus grace) has ended",
        description="Customers are purged automatically by the daemon; --dry-run shows what "
                    "is due and when, --now runs what is due without waiting for the daemon.")
    mode = purge.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true",
                      help="list every customer: contract end, grace, purge due, what")
    mode.add_argument("--now", action="store_true", help="run the purges that are due now")
    purge.set_defaults(handler=_purge)

    verify = subparsers.add_parser(
        "verify-certificate", help="check a purge certificate's signature",
        description="Exit 0 if the certificate is genuine and unaltered, 1 (with the reason) "
                    "if not. Without --public-key it must be signed by this installation.")
    verify.add_argument("file", type=Path, help="the purge certificate (JSON)")
    verify.add_argument("--public-key", metavar="KEY",
                        help="the signing installation's Ed25519 public key (base64 or hex)")
    verify.set_defaults(handler=_verify_certificate)

    retention = subparsers.add_parser("retention", help="retention of logs and history")
    retention_sub = retention.add_subparsers(dest="retention_command", metavar="ACTION",
                                             required=True)
    run = retention_sub.add_parser("run", help="delete what is past its retention period now")
    run.set_defaults(handler=_retention_run)

    processing = subparsers.add_parser(
        "register", help="the register of processing activities (GDPR art. 30)")
    processing.add_argument("--format", choices=("md", "csv", "html"), default="md")
    processing.add_argument("--lang", choices=("en", "nl", "both"), default="both")
    processing.add_argument("--out", type=Path, metavar="FILE", help="write here, not stdout")
    processing.set_defaults(handler=_register)

    dpia = subparsers.add_parser("dpia", help="the facts a DPIA needs (internal document)")
    dpia.add_argument("--format", choices=("json", "md"), default="md")
    dpia.add_argument("--out", type=Path, metavar="FILE", help="write here, not stdout")
    dpia.set_defaults(handler=_dpia)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _purge(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.privacy.purge import certificate_dir, certificate_path, purge_plan, run_due_purges

    zone = ctx.settings.access.timezone
    if args.dry_run:
        with ctx.sessions() as session:
            plan = purge_plan(session, _now(), site_timezone=zone)
        print(_plan_table(plan, zone))
        return 0
    from accessd.backup.housekeeping import key_forgetter

    directory = certificate_dir(ctx.settings)
    records = run_due_purges(ctx.sessions, ctx.keys, ctx.engine, _now(), site_timezone=zone,
                             certificate_dir=directory, actor=_actor(),
                             forget_backup_keys=key_forgetter(ctx.settings, ctx.sessions,
                                                              ctx.keys))
    if not records:
        print("nothing is due: no customer's contract plus grace period has ended "
              "(see `accessd purge --dry-run`)")
    for record in records:
        print(f"purged customer {record.customer_digest[:16]}… ({_what(record.counts)}); "
              "every door was asked to resync its sensor")
        print(f"  certificate for the customer: {certificate_path(record, directory)}")
    return 0


def _plan_table(plan: list[PlannedPurge], zone: str) -> str:
    local = zoneinfo.ZoneInfo(zone)
    rows = [("CUSTOMER", "CONTRACT END", "GRACE", f"PURGE DUE ({zone})", "WHAT")]
    for item in plan:
        due = "-" if item.due_at is None else item.due_at.astimezone(local).strftime(
            "%Y-%m-%d %H:%M %Z") + (" (due now)" if item.due else "")
        rows.append((item.name, str(item.contract_end or "open-ended"), f"{item.grace_days} d",
                     due, _what(item.counts)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
             + "  " + row[4] for row in rows]
    if len(rows) == 1:
        lines.append("(no customers)")
    return "\n".join(line.rstrip() for line in lines)


def _what(counts: dict[str, int]) -> str:
    """What a purge destroys, in words: "3 persons, 1 finger, ..."."""
    words = [f"{n} {category.replace('_', ' ').removesuffix('s')}{'' if n == 1 else 's'}"
             for category, n in counts.items() if n]
    return ", ".join(words) or "nothing held"


def _verify_certificate(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.privacy.purge import verify_certificate

    if args.public_key:
        check = verify_certificate(args.file, _public_key(args.public_key))
    else:
        check = verify_certificate(args.file, provider=ctx.keys)
    if not check.valid:
        print(f"INVALID: {args.file}: {check.reason}", file=sys.stderr)
        return 1
    body = check.body or {}
    print(f"VALID: {args.file}: {check.reason}")
    print(f"  customer digest {body.get('customer_digest')}, contract end "
          f"{body.get('contract_end')}, grace {body.get('grace_days')} days, purge completed "
          f"{body.get('completed_at')}")
    return 0


def _public_key(text: str) -> bytes:
    for decode in (bytes.fromhex, lambda t: base64.b64decode(t, validate=True)):
        try:
            key = decode(text.strip())
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    raise AccessdError("--public-key must be the 32-byte Ed25519 public key, in base64 or hex "
                       "(the certificate's installation_public_key field)")


def _retention_run(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.db import checkpoint_wal
    from accessd.privacy.retention import enforce_retention

    deleted = enforce_retention(ctx.sessions, _now(), ctx.settings.retention)
    if any(deleted.values()) and ctx.engine.dialect.name == "sqlite":
        checkpoint_wal(ctx.engine)  # the deleted rows' old pages leave the -wal file
    for category, count in deleted.items():
        period = getattr(ctx.settings.retention, category)
        print(f"{category.replace('_', ' ')}: {count} deleted (kept: {period})")
    return 0


def _register(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.privacy.processing_register import LANGS, lawful_bases_in_use, render_register

    with ctx.sessions() as session:
        bases = lawful_bases_in_use(session)
    langs = LANGS if args.lang == "both" else (args.lang,)
    _emit(render_register(ctx.settings, args.format, langs, bases), args.out)
    return 0


def _dpia(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.privacy.dpia import dpia_facts, render_json, render_markdown

    with ctx.sessions() as session:
        facts = dpia_facts(ctx.settings, session, _now(), ctx.keys)
    _emit(render_json(facts) if args.format == "json" else render_markdown(facts), args.out)
    return 0


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AccessdError(f"cannot write {out}: {exc.strerror}") from exc
    print(f"written to {out}")
