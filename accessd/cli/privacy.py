"""``accessd purge | verify-certificate | public-key | retention | register | dpia``: the
privacy commands.

Thin: each handler calls the same services the daemon's scheduler and the panel use
(``accessd.privacy.purge``, ``accessd.privacy.certificate``, ``accessd.privacy.retention``,
``accessd.privacy.processing_register``, ``accessd.privacy.dpia``) and prints
what an operator or an auditor needs to act on.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accessd.errors import AccessdError, UsageError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from accessd.cli.main import Context
    from accessd.privacy.purge import CheckedPurge, PlannedPurge


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
    mode.add_argument("--status", action="store_true",
                      help="every purge record: completed, or which doors it still waits for")
    purge.add_argument("--customer-reference", metavar="REF",
                       help="with --status: only the purges of the customer holding this "
                            "reference (records keep no name; the reference tells them apart)")
    purge.set_defaults(handler=_purge)

    verify = subparsers.add_parser(
        "verify-certificate", help="check a purge certificate against a trusted key",
        description="Exit 0 if the certificate is genuine, unaltered and signed by the trusted "
                    "key, 1 (with the reason) if not. The trusted key is --public-key (as the "
                    "facility published it), else this installation's own; a key printed in "
                    "the certificate is never trusted.")
    verify.add_argument("file", type=Path, help="the purge certificate (JSON)")
    verify.add_argument("--public-key", metavar="KEY",
                        help="the installation's Ed25519 public key as the facility published "
                             "it (`accessd public-key`): base64, hex, PEM, or a file holding it")
    verify.add_argument("--customer-reference", metavar="REF",
                        help="the reference the customer was given at contract start: confirms "
                             "the certificate is about that customer")
    verify.set_defaults(handler=_verify_certificate)

    public = subparsers.add_parser(
        "public-key", help="the installation's public key, to publish for certificate checks",
        description="Prints the Ed25519 public key that signs purge certificates and the "
                    "ledger, with its fingerprint. Publish both (website, contract annex) so "
                    "customers check certificates against the key you published, never against "
                    "one a certificate carries.")
    public.add_argument("--format", choices=("text", "pem", "json"), default="text")
    public.set_defaults(handler=_public_key_command)

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


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _purge(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.privacy.purge import certificate_dir, list_purges, purge_plan, run_due_purges

    if args.customer_reference is not None and not args.status:
        raise UsageError("--customer-reference goes with --status")
    zone = ctx.clock.zone
    if args.dry_run:
        with ctx.sessions() as session:
            plan = purge_plan(session, ctx.clock.now(), site_timezone=zone)
        print(_plan_table(plan, zone))
        return 0
    from accessd.backup.housekeeping import backup_destruction

    directory = certificate_dir(ctx.settings)
    moved: set[int] = set()
    if args.now:
        from accessd.cli.progress_bar import progress_for

        with progress_for("purge", "events") as progress:
            records = run_due_purges(ctx.sessions, ctx.keys, ctx.engine, ctx.clock.now(),
                                     site_timezone=zone, certificate_dir=directory,
                                     actor=_actor(), progress=progress,
                                     destroy_backups=backup_destruction(
                                         ctx.settings, ctx.sessions, ctx.keys))
        moved = {record.id for record in records}
        if not records:
            print("nothing is due: no customer's contract plus grace period has ended "
                  "(see `accessd purge --dry-run`)")
    with ctx.sessions() as session:
        checked = list_purges(session, ctx.keys)
        if args.customer_reference is not None:
            from accessd.privacy.purge import purges_of_reference

            theirs = purges_of_reference(checked, args.customer_reference)
            checked = [c for c in checked if c.record.id in theirs]
            if not checked:
                print("no purge record was made for the customer holding this reference")
                return 1
        shown = [c for c in reversed(checked)
                 if args.status or c.record.id in moved or c.waiting]
        for item in shown:
            print(_purge_text(item, directory))
    if args.status and not checked:
        print("no purges yet")

    return 0


def _purge_text(item: CheckedPurge, directory: Path) -> str:
    from accessd.privacy.purge import certificate_path

    record = item.record
    lines = [f"purge {record.id}, customer {record.customer_digest[:16]}… "
             f"({_what(record.counts)}): {record.status.value.replace('_', ' ')}"]
    if item.waiting:
        lines.append("  waiting for these doors to confirm their sensor dropped the templates: "
                     + "; ".join(w.describe() for w in item.waiting))
        lines.append("  its certificate is signed once every door has confirmed (each door's "
                     "`accessd run` must be running)")
    elif record.certificate:
        lines.append(f"  certificate for the customer: {certificate_path(record, directory)}")
    return "\n".join(lines)


def _plan_table(plan: list[PlannedPurge], zone: ZoneInfo) -> str:
    rows = [("CUSTOMER", "CONTRACT END", "GRACE", f"PURGE DUE ({zone.key})", "WHAT")]
    for item in plan:
        due = "-" if item.due_at is None else item.due_at.astimezone(zone).strftime(
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
    from accessd.privacy.certificate import parse_public_key, verify_certificate

    if args.public_key:
        check = verify_certificate(args.file, parse_public_key(args.public_key),
                                   customer_reference=args.customer_reference)
    else:
        check = verify_certificate(args.file, provider=ctx.keys,
                                   customer_reference=args.customer_reference)
    if not check.valid:
        print(f"INVALID: {args.file}: {check.reason}", file=sys.stderr)
        return 1
    body = check.body or {}
    print(f"VALID: {args.file}: {check.reason}")
    print(f"  contract end {body.get('contract_end')}, grace {body.get('grace_days')} days, "
          f"purge completed {body.get('completed_at')}")
    destroyed = body.get("destroyed") or {}
    for sensor in destroyed.get("sensors") or []:
        print(f"  sensor at door {sensor.get('door')}: "
              + (f"confirmed wiped at {sensor['confirmed_at']}" if sensor.get("confirmed_at")
                 else str(sensor.get("note") or "not confirmed")))
    if args.customer_reference is None and body.get("customer_reference"):
        print("  add --customer-reference REF to confirm it is about the customer holding REF")
    print("  compare the key's fingerprint above with the one the facility published")
    return 0


def _public_key_command(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.privacy.certificate import installation_key_id, key_fingerprint, public_key_pem

    public = ctx.keys.signing_public_key()
    if args.format == "pem":
        sys.stdout.write(public_key_pem(public))
        return 0
    facts = {"algorithm": "Ed25519", "public_key": base64.b64encode(public).decode(),
             "fingerprint": key_fingerprint(public), "key_id": installation_key_id(public)}
    if args.format == "json":
        print(json.dumps(facts, indent=2))
        return 0
    print(f"installation public key (Ed25519, base64): {facts['public_key']}")
    print(f"fingerprint: {facts['fingerprint']}")
    print(f"key id:      {facts['key_id']}")
    print("Publish the key and its fingerprint where customers find them (website, contract "
          "annex); they check a certificate with\n  accessd verify-certificate FILE "
          "--public-key KEY --customer-reference REF")
    return 0


def _retention_run(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.db import checkpoint_wal
    from accessd.privacy.retention import enforce_retention

    deleted = enforce_retention(ctx.sessions, ctx.clock.now(), ctx.settings.retention,
                                today=ctx.clock.today())
    ctx.audit.note(deleted=deleted)
    if any(deleted.values()) and ctx.engine.dialect.name == "sqlite":
        checkpoint_wal(ctx.engine)  # the deleted rows' old pages leave the -wal file
    for category, count in deleted.items():
        period = getattr(ctx.settings.retention, category)
        print(f"{category.replace('_', ' ')}: {count} deleted (kept: {period})")
    return 0


def _register(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.privacy.processing_register import LANGS, installation_facts, render_register

    with ctx.sessions() as session:
        facts = installation_facts(session)
    langs = LANGS if args.lang == "both" else (args.lang,)
    _emit(render_register(ctx.settings, args.format, langs, facts), args.out)
    return 0


def _dpia(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.privacy.dpia import dpia_facts, render_json, render_markdown

    with ctx.sessions() as session:
        facts = dpia_facts(ctx.settings, session, ctx.clock.now(), ctx.keys)
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
