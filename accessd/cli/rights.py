"""CLI for backups and data-subject rights: backup, restore, export, erase, withdraw-consent,
requests. Each handler calls the services in ``accessd.backup.archive`` and
``accessd.rights.actions``.

``consent record`` lives in ``accessd.cli.people``; withdrawing is ``withdraw-consent`` here,
because argparse cannot have two ``consent`` commands.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from accessd.errors import UsageError
from accessd.models import Customer, DataSubjectRequest, Person, RequestKind

if TYPE_CHECKING:
    from accessd.cli.main import Context
    from accessd.rights.requests import OpenRequest




def register(subparsers: Any) -> None:
    """Add this area's commands to ``accessd``'s subparsers."""
    _register_backup(subparsers)
    _register_rights(subparsers)
    _register_requests(subparsers)


def _register_backup(subparsers: Any) -> None:
    backup = subparsers.add_parser(
        "backup", help="write an encrypted backup of the database (or verify / prune them)",
        description="Without an action: write an encrypted, verified backup.")
    backup.add_argument("--out", type=Path, metavar="DIR",
                        help="directory for the backup (default: backup.dir; the key file "
                             "stays in backup.dir)")
    backup.add_argument("--compress", action="store_true",
                        help="compress (about half the size, about twice the time)")
    backup.set_defaults(handler=_backup)
    actions = backup.add_subparsers(dest="backup_action", metavar="ACTION")
    verify = actions.add_parser("verify", help="check that a backup decrypts and is complete")
    verify.add_argument("file", type=Path, metavar="FILE")
    verify.set_defaults(handler=_backup_verify)
    prune = actions.add_parser("prune", help="delete backups older than backup.max_age_months")
    prune.set_defaults(handler=_backup_prune)

    restore = subparsers.add_parser(
        "restore", help="replace the database with a backup, re-applying every erasure since")
    restore.add_argument("file", type=Path, metavar="FILE")
    restore.add_argument("--yes-i-stopped-the-daemon", dest="daemon_stopped",
                         action="store_true",
                         help="confirm the door daemon and the panel are stopped")
    restore.add_argument("--live-database-lost", action="store_true",
                         help="restore although the current database (and its erasure "
                              "ledger) is missing or unreadable")
    restore.set_defaults(handler=_restore)


def _register_rights(subparsers: Any) -> None:
    export = subparsers.add_parser("export", help="export everything held (JSON and CSV, zip)")
    export_what = export.add_subparsers(dest="export_what", metavar="WHAT", required=True)
    for what, handler in (("person", _export_person), ("customer", _export_customer)):
        parser = export_what.add_parser(what, help=f"everything held on one {what}")
        parser.add_argument(what, metavar=what.upper(),
                            help="id, public id or exact name")
        parser.add_argument("--out", type=Path, required=True, metavar="FILE.zip")
        parser.set_defaults(handler=handler)

    erase = subparsers.add_parser("erase", help="erase a person (cannot be undone)")
    erase_what = erase.add_subparsers(dest="erase_what", metavar="WHAT", required=True)
    person = erase_what.add_parser("person", help="templates, consents and the person; "
                                                  "access history anonymised")
    person.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    person.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    _by(person)
    person.set_defaults(handler=_erase_person)

    from accessd.cli.people import subcommands

    remove = subcommands(subparsers, "person").add_parser(
        "remove-finger", help="delete one enrolled finger (to enrol it again, or no longer "
                              "used); its template leaves every sensor")
    remove.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    remove.add_argument("--finger", required=True, metavar="FINGER",
                        help="which finger, e.g. right_index")
    remove.add_argument("--yes", action="store_true",
                        help="confirm: the template is deleted for good")
    _by(remove)
    remove.set_defaults(handler=_remove_finger)

    withdraw = subparsers.add_parser(
        "withdraw-consent", help="record a withdrawal of consent; deletes the fingers at once")
    withdraw.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    _by(withdraw)
    withdraw.set_defaults(handler=_withdraw_consent)


def _register_requests(subparsers: Any) -> None:
    requests = subparsers.add_parser("requests", help="list open data-subject requests")
    requests.set_defaults(handler=_requests)
    request = subparsers.add_parser("request", help="record, extend or close a request")
    actions = request.add_subparsers(dest="request_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="record a request as received")
    add.add_argument("kind", choices=[k.value for k in RequestKind], metavar="KIND",
                     help=", ".join(k.value for k in RequestKind))
    add.add_argument("--received", type=_date, required=True, metavar="YYYY-MM-DD")
    subject = add.add_mutually_exclusive_group(required=True)
    subject.add_argument("--person", metavar="PERSON")
    subject.add_argument("--customer", metavar="CUSTOMER")
    add.add_argument("--requester", required=True, metavar="NAME")
    add.add_argument("--contact", metavar="ADDRESS", help="where the answer goes")
    _by(add)
    add.set_defaults(handler=_request_add)
    extend = actions.add_parser("extend", help="extend the deadline (at most 3 months)")
    extend.add_argument("id", type=int, metavar="ID")
    extend.add_argument("--until", type=_date, required=True, metavar="YYYY-MM-DD")
    extend.add_argument("--reason", required=True)
    extend.set_defaults(handler=_request_extend)
    close = actions.add_parser("close", help="close a request with its outcome")
    close.add_argument("id", type=int, metavar="ID")
    close.add_argument("--outcome", required=True)
    _by(close)
    close.set_defaults(handler=_request_close)


def _by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", default=None, metavar="NAME",
                        help="staff member doing it (default: the system user)")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None


# --- handlers ---------------------------------------------------------------------------------


def _backup(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.backup.archive import create_backup
    from accessd.cli.progress_bar import progress_for

    with progress_for("backup", "sections") as progress:
        path = create_backup(ctx.settings, ctx.engine, ctx.keys, ctx.clock.now(),
                             out_dir=args.out, compress=args.compress, progress=progress)
    ctx.audit.note(file=str(path))
    print(f"backup written and verified: {path} ({path.stat().st_size} bytes)")
    return 0


def _backup_verify(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.backup.archive import verify_backup
    from accessd.backup.keys import backup_dir, key_file_path, load

    key_file = key_file_path(backup_dir(ctx.settings))
    keys = load(key_file, ctx.keys) if key_file.exists() else None
    info = verify_backup(args.file, ctx.keys, keys)
    print(f"{info.path}: ok, format {info.version}, made {info.created_at:%Y-%m-%d %H:%M:%S} "
          f"UTC under master key {info.master_key_id}, {info.database_bytes} bytes of data read")
    if info.version > 1:
        print(f"  {info.customer_sections} customer sections, {info.unreadable_sections} of "
              "them unreadable (their keys were destroyed: purged customers)"
              + ("" if keys else f"; no key file at {key_file}, so none was opened"))
    return 0


def _backup_prune(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.backup.archive import prune_backups

    deleted = prune_backups(ctx.settings, ctx.clock.now())
    ctx.audit.note(deleted=[path.name for path in deleted])
    for path in deleted:
        print(f"deleted {path}")
    if not deleted:
        print(f"no backup older than {ctx.settings.backup.max_age_months} months")
    return 0


def _restore(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.backup.archive import restore_backup

    if not args.daemon_stopped:  # refused here, before anything is read
        raise UsageError("stop the door daemon and the panel first (e.g. `systemctl stop "
                         "accessd accessd-web`), then restore with --yes-i-stopped-the-daemon")
    from accessd.cli.progress_bar import progress_for

    with progress_for("restore", "bytes") as progress:
        report = restore_backup(args.file, ctx.settings, ctx.engine, ctx.keys,
                                daemon_stopped=args.daemon_stopped,
                                live_database_lost=args.live_database_lost,
                                progress=progress)
    replay = report.replay
    ctx.audit.note(file=str(args.file), backup_made=report.backup_created_at.isoformat(),
                   ledger_entries=replay.ledger_entries)
    print(f"restored the backup made {report.backup_created_at:%Y-%m-%d %H:%M:%S} UTC: "
          f"{report.merged.customers} customers and {report.merged.persons} persons came back; "
          f"{report.customers_without_key} customers and {report.merged.persons_without_key} "
          "persons stay gone (their keys were destroyed)")
    if report.unaccounted_customers:
        print(f"warning: {report.unaccounted_customers} customer sections have no key in the "
              "key file and no purge on record; they were not restored")
    print(f"re-applied {replay.ledger_entries} ledger entries "
          f"({report.ledger_entries_since_backup} recorded after the backup): "
          f"{replay.customers_purged} customers purged, {replay.persons_erased} persons erased, "
          f"{replay.fingers_deleted} fingers deleted, {replay.consents_withdrawn} consents "
          "withdrawn")
    if replay.fingers_without_key:
        print(f"{replay.fingers_without_key} fingers had no usable data key and were dropped: "
              "those people must enrol again")
    print(f"{replay.doors_asked_to_resync} doors will resync their sensors when the daemon "
          "starts; start it now")
    return 0


def _export_person(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.cli.progress_bar import progress_for
    from accessd.rights.export import export_person

    with _read_session(ctx) as session, progress_for("export", "records") as progress:
        summary = export_person(session, _person(session, args.person), args.out,
                                progress=progress)
    ctx.audit.note(file=str(args.out), counts=summary.counts)
    _print_export(args.out, summary.counts)
    return 0


def _export_customer(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.cli.progress_bar import progress_for
    from accessd.rights.export import export_customer

    with _read_session(ctx) as session, progress_for("export", "records") as progress:
        summary = export_customer(session, _customer(session, args.customer), args.out,
                                  progress=progress)
    ctx.audit.note(file=str(args.out), counts=summary.counts)
    _print_export(args.out, summary.counts)
    return 0


def _erase_person(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.rights.actions import erase_person

    if not args.yes:
        raise UsageError("erasing a person cannot be undone (templates, consents and the "
                           "person are deleted, history anonymised); add --yes to go ahead")
    with ctx.sessions.begin() as session:
        person = _person(session, args.person)
        public_id = person.public_id
        summary = erase_person(session, person, _staff(args), provider=ctx.keys)
        ctx.audit.note(fingers=summary.fingers, consents=summary.consents,
                       access_events_anonymised=summary.access_events_anonymised)
    print(f"erased person {public_id}: {summary.fingers} fingers, {summary.consents} consents, "
          f"{summary.access_events_anonymised} access events anonymised")
    _after_destruction(ctx, summary.doors_asked_to_resync)
    return 0


def _remove_finger(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.rights.actions import remove_finger

    if not args.yes:
        raise UsageError("removing a finger deletes its template here and on every sensor "
                         "for good; add --yes to go ahead")
    with ctx.sessions.begin() as session:
        person = _person(session, args.person)
        name = person.name
        done = remove_finger(session, person, args.finger, _staff(args), provider=ctx.keys)
        ctx.audit.note(finger=done.label.value)
    print(f"{done.label.value.replace('_', ' ')} of {name} removed; {done.fingers_left} "
          "finger(s) left")
    _after_destruction(ctx, done.doors_asked_to_resync)
    return 0


def _withdraw_consent(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.rights.actions import withdraw_consent

    with ctx.sessions.begin() as session:
        person = _person(session, args.person)
        public_id = person.public_id
        summary = withdraw_consent(session, person, _staff(args), provider=ctx.keys)
        ctx.audit.note(fingers_deleted=summary.fingers_deleted)
    print(f"consent of {public_id} withdrawn ({summary.consents_withdrawn} records); "
          f"{summary.fingers_deleted} fingers deleted; credential now {summary.credential}")
    _after_destruction(ctx, summary.doors_asked_to_resync)
    return 0


def _requests(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.rights.requests import request_overview

    retention = ctx.settings.retention.open_data_subject_requests
    with _read_session(ctx) as session:
        overview = request_overview(session, ctx.clock.today(), retention=retention)
    listed = overview.listed
    ctx.audit.note(open=len(listed))
    people, customers = overview.subjects.persons, overview.subjects.customers
    if not listed:
        print("no open data-subject requests")
        return 0
    rows = [("ID", "KIND", "RECEIVED", "DUE", "STATE", "SUBJECT", "REQUESTER")]
    for item in listed:
        r = item.request
        state = (f"OVERDUE {-item.days_left} d" if item.overdue
                 else f"{item.days_left} d left") + (" (extended)" if r.extended_due_on else "")
        subject = (f"person {people[r.person_id].public_id}" if r.person_id in people
                   else f"customer {customers[r.customer_id]}" if r.customer_id in customers
                   else "-")
        rows.append((str(r.id), str(r.kind), str(r.received_on), str(item.due_on), state,
                     subject, r.requester_name))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    overdue = sum(item.overdue for item in listed)
    print(f"{len(listed)} open, {overdue} overdue")
    for item in listed:
        if item.reminder:
            print(_deletion_reminder(item, str(retention)))
    return 0


def _deletion_reminder(item: OpenRequest, retention: str) -> str:
    """The reminder that an open request is deleted soon unless it is answered and closed."""
    r, days = item.request, item.days_to_deletion or 0
    when = (f"on {item.deleted_on} (in {days} day{'' if days == 1 else 's'})" if days > 0
            else "at the next retention run")
    return (f"REMINDER: request {r.id} (received {r.received_on}) was never closed: it is "
            f"deleted {when}, {retention} after receipt (retention.open_data_subject_requests)."
            f" Answer it and close it: `accessd request close {r.id} --outcome ...`")


def _request_add(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.rights.requests import record_request

    with ctx.sessions.begin() as session:
        person = _person(session, args.person) if args.person else None
        customer = _customer(session, args.customer) if args.customer else None
        request = record_request(session, RequestKind(args.kind), args.received,
                                 requester_name=args.requester, person=person,
                                 customer=customer, requester_contact=args.contact,
                                 handled_by=_staff(args))
        ctx.audit.note(target=f"request:{request.public_id}")
        print(f"request {request.id} recorded; answer it by {request.due_on}")
    return 0


def _request_extend(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.rights.requests import extend_request

    with ctx.sessions.begin() as session:
        request = _request(session, args.id)
        extend_request(request, args.until, args.reason, today=ctx.clock.today())
    print(f"request {args.id} now due on {args.until}; tell the requester why: {args.reason}")
    return 0


def _request_close(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.rights.requests import close_request

    with ctx.sessions.begin() as session:
        close_request(_request(session, args.id), args.outcome, by=_staff(args))
    print(f"request {args.id} closed")
    return 0


# --- helpers ----------------------------------------------------------------------------------


def _read_session(ctx: Context) -> Session:
    from accessd.db import read_only_engine

    # Deferred: a long export or listing must not hold the lock the doors write events under.
    return Session(read_only_engine(ctx.engine))


def _staff(args: argparse.Namespace) -> str:
    return str(args.by or getpass.getuser())[:64]


def _after_destruction(ctx: Context, doors: int) -> None:
    from accessd.backup.housekeeping import sync_backup_keys

    warning = sync_backup_keys(ctx.settings, ctx.sessions, ctx.keys)  # their backup key goes
    if warning:
        print(f"warning: {warning}")
    if doors:
        print(f"{doors} doors asked to resync: their sensors drop the templates once each "
              "door's daemon runs")
    if ctx.engine.dialect.name == "sqlite":
        from accessd.db import checkpoint_wal

        if checkpoint_wal(ctx.engine).busy:
            print("note: another process held a read, so old pages may remain in the -wal "
                  "file until the next checkpoint (the hourly reconciliation makes one)")


def _print_export(path: Path, counts: dict[str, int]) -> None:
    listed = ", ".join(f"{n} {name}" for name, n in counts.items())
    print(f"exported to {path} (mode 0600; it holds personal data): {listed}")


def _person(session: Session, text: str) -> Person:
    from accessd.customers.people import get_person

    return get_person(session, text)


def _customer(session: Session, text: str) -> Customer:
    from accessd.customers.contracts import get_customer

    return get_customer(session, text)


def _request(session: Session, request_id: int) -> DataSubjectRequest:
    from accessd.rights.requests import get_request

    return get_request(session, request_id)
