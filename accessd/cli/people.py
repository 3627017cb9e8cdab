"""``accessd customer|person|consent|events``: customers, their people and the access history.

Handlers parse, call the services in ``accessd.customers.contracts``,
``accessd.customers.people`` and
``accessd.history.query`` (the panel calls the same ones) and print; no rule lives here.
Writes run in one transaction each; reads run in read-only (deferred) transactions, so that
listing or exporting never holds up the door recording its events. Bad input is one line on
stderr naming the option, exit 2 (parsing) or 1 (refused by a service).
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import functools
import getpass
import json
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, NoReturn

from sqlalchemy.orm import Session

from accessd.cli.main import Context, Handler
from accessd.customers.contracts import (
    ContractStatus,
    CustomerSummary,
    PurgePlan,
    add_customer,
    contract_status,
    customer_summary,
    end_contract,
    get_customer,
    list_customers,
    parse_date,
    preview_end_contract,
    set_lawful_basis,
)
from accessd.customers.people import (
    PersonSummary,
    add_person,
    get_person,
    keypad_entry,
    list_persons,
    person_summary,
    pin_usable,
    record_consent,
    rectify_person,
    restrict_person,
    set_pin,
    unrestrict_person,
    with_pin,
)
from accessd.db import make_sessionmaker, read_only_engine, session_scope
from accessd.errors import InvalidInputError, UsageError
from accessd.history.query import (
    PAGE_MAX,
    EventFilter,
    EventRow,
    export_csv,
    find_door,
    local_period,
    page_events,
    parse_kinds,
)
from accessd.inputs import parse_id
from accessd.labels import label, reason_label
from accessd.models import Credential, LawfulBasis, Person


class _Parser(argparse.ArgumentParser):
    """Parsing errors as one line naming the option, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``customer``, ``person``, ``consent`` and ``events`` to the main parser."""
    _register_customer(_group(subparsers, "customer", "colocation customers and contracts"))
    _register_person(_group(subparsers, "person", "a customer's people and their credentials"))
    _register_consent(_group(subparsers, "consent", "consent to fingerprint identification"))
    _register_events(_group(subparsers, "events", "the access history"))


def subcommands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The subcommands of group ``name`` (``person``, ``consent``...), for another area to add
    its own to (``person erase``): argparse refuses a second parser of the same name."""
    parser = subparsers.choices[name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise KeyError(name)


# --- customer ----------------------------------------------------------------------------

def _register_customer(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _command(group, "add", _customer_add, "record a customer and its contract")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--start", dest="contract_start", type=_date, required=True,
                   metavar="DATE", help="first day of the contract (YYYY-MM-DD)")
    p.add_argument("--end", dest="contract_end", type=_date, metavar="DATE",
                   help="last day of the contract, if already known")
    p.add_argument("--grace-days", dest="grace_days", type=int, metavar="N",
                   help="days after the last day before the data is purged (0-90; default "
                        "purge.grace_days)")
    p.add_argument("--lawful-basis", dest="lawful_basis", choices=[b.value for b in LawfulBasis],
                   help="ground for fingerprint identification (may be recorded later)")
    p.add_argument("--necessity-ref", dest="necessity_reference", metavar="TEXT",
                   help="reference to the security assessment ('necessity' needs one)")
    p = _command(group, "list", _customer_list, "customers with their contract state")
    _json_option(p)
    p = _command(group, "show", _customer_show, "a customer's contract, state and people")
    p.add_argument("customer", metavar="CUSTOMER", help="id, public id or exact name")
    _json_option(p)
    p = _command(group, "end", _customer_end,
                 "set a contract's last day; shows what will be purged and when")
    p.add_argument("customer", metavar="CUSTOMER", help="id, public id or exact name")
    p.add_argument("--last-day", dest="last_day", type=_date, required=True, metavar="DATE",
                   help="last day of service (YYYY-MM-DD)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = _command(group, "set-basis", _customer_set_basis,
                 "record the lawful basis for the customer's fingerprints")
    p.add_argument("customer", metavar="CUSTOMER", help="id, public id or exact name")
    p.add_argument("lawful_basis", metavar="consent|necessity")
    p.add_argument("--ref", "--necessity-ref", dest="necessity_reference", metavar="TEXT",
                   help="reference to the security assessment ('necessity' needs one)")


def _customer_add(args: argparse.Namespace, ctx: Context) -> int:
    with session_scope(ctx.sessions) as session:
        customer = add_customer(
            session, args.name, args.contract_start, args.contract_end, settings=ctx.settings,
            grace_days=args.grace_days, lawful_basis=args.lawful_basis,
            necessity_reference=args.necessity_reference, now=ctx.clock.now())
        status = contract_status(customer, ctx.clock)
        name, customer_id, reference = customer.name, customer.id, customer.reference
        ctx.audit.note(target=f"customer:{customer.public_id}")
    print(f"Added customer {customer_id} {name!r}: {status.describe()}.")
    print(f"Customer reference: {reference} (give it to the customer: with it they confirm "
          "that a purge certificate is theirs; `accessd customer show` shows it again)")
    if args.lawful_basis is None:
        print(f"No lawful basis recorded yet: fingers cannot be enrolled until "
              f"`accessd customer set-basis {customer_id} consent|necessity`.")
    return 0


def _customer_list(args: argparse.Namespace, ctx: Context) -> int:
    with _reading(ctx) as session:
        summaries = list_customers(session, ctx.clock)
        if args.json:
            _print_json([_customer_json(s) for s in summaries])
            return 0
        rows = [(str(s.customer.id), s.customer.name, str(s.customer.contract_start),
                 str(s.customer.contract_end or "-"), str(s.customer.grace_days),
                 s.customer.lawful_basis or "-", str(s.persons), s.status.describe())
                for s in summaries]
    _print_table(("ID", "NAME", "START", "LAST DAY", "GRACE", "BASIS", "PEOPLE", "STATE"),
                 rows, empty="No customers yet: `accessd customer add NAME --start DATE`.")
    return 0


def _customer_show(args: argparse.Namespace, ctx: Context) -> int:
    with _reading(ctx) as session:
        customer = get_customer(session, args.customer)
        summary = customer_summary(session, customer, ctx.clock)
        status = summary.status
        people = list_persons(session, customer)
        if args.json:
            _print_json({**_customer_json(summary), "persons": [_person_json(p) for p in people]})
            return 0
        basis = customer.lawful_basis or "none recorded (enrolment is refused)"
        if customer.necessity_reference:
            basis = f"{basis} ({customer.necessity_reference})"
        _print_fields([
            ("Customer", f"{customer.name} (id {customer.id}, public id {customer.public_id})"),
            ("Contract", f"{customer.contract_start} to {customer.contract_end or 'open-ended'}"
                         f", grace {customer.grace_days} days"),
            ("State", status.describe()),
            ("Lawful basis", basis),
            ("Reference", f"{customer.reference or 'none'} (the customer's, to confirm its "
                          "purge certificate)"),
            ("People", str(len(people))),
        ])
        rows = [_person_row(p, with_customer=False) for p in people]
    if rows:
        print()
        _print_table(_PERSON_HEADERS[:1] + _PERSON_HEADERS[2:], rows)
    return 0


def _customer_end(args: argparse.Namespace, ctx: Context) -> int:
    # Shown and confirmed outside any write transaction: a person deciding must not keep the
    # door from recording events. The write then repeats the checks and reports final counts.
    with _reading(ctx) as session:
        customer = get_customer(session, args.customer)
        plan = preview_end_contract(session, customer, args.last_day, settings=ctx.settings,
                                    now=ctx.clock.now())
    print(_plan_text(plan, ctx))
    if not args.yes:
        _confirm(f"End the contract of {plan.customer_name!r} on {plan.last_day}? [y/N] ")
    with session_scope(ctx.sessions) as session:
        customer = get_customer(session, str(plan.customer_id))  # gone meanwhile: one line
        plan = end_contract(session, customer, args.last_day, settings=ctx.settings,
                            now=ctx.clock.now())
    if plan.already_due:
        print(f"Done: {plan.customer_name!r} ended on {plan.last_day}; its data is purged at "
              f"the next purge check, by {_site_time(plan.runs_by, ctx)} at the latest.")
    else:
        print(f"Done: {plan.customer_name!r} ends on {plan.last_day}; purge due on "
              f"{plan.purge_on}.")
    return 0


def _customer_set_basis(args: argparse.Namespace, ctx: Context) -> int:
    with session_scope(ctx.sessions) as session:
        customer = get_customer(session, args.customer)
        lacking = set_lawful_basis(session, customer, args.lawful_basis, args.necessity_reference)
        name = customer.name
        lacking_names = [f"{p.name} (id {p.id})" for p in lacking]
    print(f"Lawful basis of {name!r}: {args.lawful_basis}.")
    if lacking_names:
        who = _plural(len(lacking_names), "person has", "people have")
        print(f"{who} fingers enrolled but no consent on record; record their consent "
              "(`accessd consent record`) or delete their fingers: " + ", ".join(lacking_names))
    return 0


# --- person ------------------------------------------------------------------------------

_PERSON_HEADERS = ("ID", "CUSTOMER", "NAME", "CREDENTIAL", "KEYPAD", "FINGERS", "CONSENT",
                   "STATE")


def _register_person(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _command(group, "add", _person_add, "record one of a customer's people")
    p.add_argument("customer", metavar="CUSTOMER", help="id, public id or exact name")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--email", metavar="E")
    p.add_argument("--credential", choices=[c.value for c in Credential], default="none",
                   help="how they will enter (default none: staff let them in)")
    p.add_argument("--same-name-ok", dest="allow_duplicate", action="store_true",
                   help="add although the customer has a person of this name and e-mail "
                        "(someone else who shares the name)")
    p = _command(group, "list", _person_list, "people, their credentials and fingers")
    p.add_argument("--customer", metavar="C", help="only this customer's people")
    _json_option(p)
    p = _command(group, "show", _person_show, "one person's record")
    p.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    _json_option(p)
    p = _command(group, "restrict", _person_restrict,
                 "refuse the person at the door and keep the data (GDPR art. 18)")
    p.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p = _command(group, "unrestrict", _person_unrestrict, "lift a restriction")
    p.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    p = _command(group, "set-pin", _person_set_pin,
                 "give the person a PIN (generated unless --pin-stdin); shown once")
    p.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    p.add_argument("--pin-stdin", dest="pin", action="store_true",
                   help="read the PIN from standard input instead of generating one")
    p.add_argument("--credential", choices=[c.value for c in Credential],
                   help="the way in from now on (default: unchanged; the door takes the PIN "
                        "only with pin or finger_or_pin)")
    p = _command(group, "rectify", _person_rectify,
                 "correct a person's details (GDPR art. 16); an empty value clears it")
    p.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    p.add_argument("--name")
    p.add_argument("--email")
    p.add_argument("--notes")
    p.add_argument("--credential", choices=[c.value for c in Credential],
                   help="the way in: none, finger, pin or finger_or_pin")


def _person_add(args: argparse.Namespace, ctx: Context) -> int:
    with session_scope(ctx.sessions) as session:
        customer = get_customer(session, args.customer)
        person = add_person(session, customer, args.name, args.email, args.credential,
                            clock=ctx.clock, allow_duplicate=args.allow_duplicate)
        line = (f"Added person {person.id} {person.name!r} to {customer.name!r} "
                f"(credential {person.credential}")
        line += f", keypad code {person.keypad_code})." if person.keypad_code else ")."
        person_id, uses_pin = person.id, person.keypad_code is not None
        ctx.audit.note(target=f"person:{person.public_id}",
                       customer=str(customer.public_id))
    print(line)
    if uses_pin:
        print(f"Set their PIN with `accessd person set-pin {person_id}`.")
    return 0


def _person_list(args: argparse.Namespace, ctx: Context) -> int:
    with _reading(ctx) as session:
        customer = None if args.customer is None else get_customer(session, args.customer)
        people = list_persons(session, customer)
        ctx.audit.note(persons=len(people))
        if args.json:
            _print_json([_person_json(p) for p in people])
            return 0
        rows = [_person_row(p) for p in people]
    _print_table(_PERSON_HEADERS, rows, empty="No people yet: `accessd person add CUSTOMER NAME`.")
    return 0


def _person_show(args: argparse.Namespace, ctx: Context) -> int:
    with _reading(ctx) as session:
        person = get_person(session, args.person)
        record = _person_json(person_summary(session, person), full=True)
    if args.json:
        _print_json(record)
        return 0
    _print_fields([(key.replace("_", " ").capitalize(), _text(value))
                   for key, value in record.items() if key not in ("fingers", "consents")])
    for key in ("fingers", "consents"):
        print(f"\n{key.capitalize()}:")
        items = record[key]
        for item in items:
            print("  " + ", ".join(f"{k} {_text(v)}" for k, v in item.items()))
        if not items:
            print("  none")
    return 0


def _person_restrict(args: argparse.Namespace, ctx: Context) -> int:
    with session_scope(ctx.sessions) as session:
        person = get_person(session, args.person)
        restrict_person(session, person, args.reason, now=ctx.clock.now())
        name = person.name
    print(f"{name} is restricted: refused at every door, data kept. "
          f"Lift it with `accessd person unrestrict {args.person}`.")
    return 0


def _person_unrestrict(args: argparse.Namespace, ctx: Context) -> int:
    with session_scope(ctx.sessions) as session:
        person = get_person(session, args.person)
        unrestrict_person(session, person)
        name = person.name
    print(f"{name} is no longer restricted.")
    return 0


def _person_set_pin(args: argparse.Namespace, ctx: Context) -> int:
    chosen = _read_pin() if args.pin else None
    with session_scope(ctx.sessions) as session:
        person = get_person(session, args.person)
        pin = set_pin(session, person, chosen, credential=args.credential)
        entry, name = keypad_entry(person, pin), person.name
        credential, usable = person.credential, pin_usable(person)
    # Shown once, here, and nowhere else: only its hash is stored, nothing logs it.
    print(f"Keypad entry for {name}: {entry}")
    print("Hand it over now; it cannot be shown again (set a new PIN if it is lost).")
    if not usable:
        print(f"Note: {name}'s way in is {credential.value.replace('_', ' ')}: the door does "
              f"not take this PIN until it includes PIN (`accessd person rectify "
              f"{args.person!r} --credential {with_pin(credential).value}`).")
    return 0


def _person_rectify(args: argparse.Namespace, ctx: Context) -> int:
    if (args.name is None and args.email is None and args.notes is None
            and args.credential is None):
        raise UsageError("person rectify: give at least one of --name, --email, --notes, "
                         "--credential")
    with session_scope(ctx.sessions) as session:
        person = get_person(session, args.person)
        changed = rectify_person(session, person, name=args.name, email=args.email,
                                 notes=args.notes, credential=args.credential)
        name = person.name
    print(f"{name}: {', '.join(changed)} corrected." if changed else f"{name}: nothing changed.")
    return 0


# --- consent -----------------------------------------------------------------------------

def _register_consent(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _command(group, "record", _consent_record,
                 "record a person's explicit consent, witnessed by a staff member")
    p.add_argument("person", metavar="PERSON", help="id, public id or exact name")
    p.add_argument("--text-version", dest="text_version", metavar="V",
                   help="version of the consent text shown (default enrollment."
                        "consent_text_version)")
    p.add_argument("--witness", dest="witnessed_by", required=True, metavar="STAFF",
                   help="user name of the staff member who witnessed it")


def _consent_record(args: argparse.Namespace, ctx: Context) -> int:
    version = args.text_version or ctx.settings.enrollment.consent_text_version
    with session_scope(ctx.sessions) as session:
        person = get_person(session, args.person)
        consent = record_consent(session, person, version, args.witnessed_by,
                                 now=ctx.clock.now())
        line = (f"Consent of {person.name} recorded (text version {consent.text_version}, "
                f"witnessed by {consent.witnessed_by}).")
    print(line)
    return 0


# --- events ------------------------------------------------------------------------------

def _register_events(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _command(group, "list", _events_list, "access history, newest first")
    _filter_options(p)
    p.add_argument("--limit", type=int, default=50, metavar="N",
                   help=f"events per page (1-{PAGE_MAX}, default 50)")
    p.add_argument("--before", type=_event_id, metavar="ID",
                   help="the page after this event id (printed at the end of each page)")
    _json_option(p)
    p = _command(group, "export", _events_export, "access history as CSV, streamed")
    p.add_argument("--out", required=True, metavar="FILE.csv",
                   help="file to create (mode 0600; never overwritten), or - for stdout")
    _filter_options(p)


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--customer", metavar="C", help="id, public id or exact name")
    p.add_argument("--person", metavar="P", help="id, public id or exact name")
    p.add_argument("--door", metavar="D", help="id or name")
    p.add_argument("--kind", action="append", default=[], metavar="K",
                   help="event kind (granted, denied, unknown_finger... or refused); repeatable")
    p.add_argument("--since", type=_date, metavar="DATE", help="from this local day on")
    p.add_argument("--until", type=_date, metavar="DATE",
                   help="up to, not including, this local day")


def _events_list(args: argparse.Namespace, ctx: Context) -> int:
    with _reading(ctx) as session:
        page = page_events(session, _event_filter(session, args, ctx), before=args.before,
                           limit=args.limit)
    ctx.audit.note(events=len(page.rows))
    if args.json:
        _print_json({"events": [_event_json(e) for e in page.rows],
                     "next_before": page.next_before})
        return 0
    # Words, not codes (accessd.labels); --json keeps the codes for programs.
    rows = [(str(e.id), ctx.clock.label(e.at), e.door or "-",
             e.customer or "-", e.person or "-", label(e.kind),
             label(e.method) if e.method else "-",
             reason_label(e.reason) + (f" (about event {e.refers_to})" if e.refers_to else ""))
            for e in page.rows]
    zone = ctx.clock.zone.key
    _print_table(("ID", f"TIME ({zone})", "DOOR", "CUSTOMER", "PERSON", "WHAT", "HOW", "DETAIL"),
                 rows, empty="No events match.")
    if page.next_before is not None:
        print(f"\nMore: add --before {page.next_before}")
    return 0


def _events_export(args: argparse.Namespace, ctx: Context) -> int:
    lines = 0
    with _reading(ctx) as session:
        where = _event_filter(session, args, ctx)
        with _export_target(args.out) as out:
            for line in export_csv(session, where):
                out.write(line)
                lines += 1
    count = lines - 1  # the header
    ctx.audit.note(events=count)
    report = sys.stderr if args.out == "-" else sys.stdout
    print(f"Exported {count} events to {args.out}.", file=report)
    return 0


def _event_filter(session: Session, args: argparse.Namespace, ctx: Context) -> EventFilter:
    since, until = local_period(args.since, args.until, ctx.clock.zone)
    return EventFilter(
        customer_id=None if args.customer is None else get_customer(session, args.customer).id,
        person_id=None if args.person is None else get_person(session, args.person).id,
        door_id=None if args.door is None else find_door(session, args.door).id,
        kinds=parse_kinds(args.kind), since=since, until=until)


@contextmanager
def _export_target(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
        return
    try:
        # Exclusive and private: an export holds personal data, and must not replace a file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"--out: {path} already exists; choose another name") from None
    except OSError as exc:
        raise UsageError(f"--out: cannot create {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
    except BaseException:
        os.unlink(path)  # half an export is worse than none: it looks complete
        raise


# --- shared ------------------------------------------------------------------------------

def _group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = subparsers.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True,
                                 parser_class=_Parser)


def _command(
    group: argparse._SubParsersAction[argparse.ArgumentParser], name: str, handler: Handler,
    help: str,
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help, description=help)
    parser.set_defaults(handler=_naming_options(handler, parser))
    return parser


def _naming_options(handler: Handler, parser: argparse.ArgumentParser) -> Handler:
    """``handler`` with services' field errors reworded to name the option the user typed
    (the services name fields, ``contract_end``; the user typed ``--end``)."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, ctx: Context) -> int:
        try:
            return handler(args, ctx)
        except InvalidInputError as exc:
            label = _option_labels(parser).get(exc.field)
            if label is None:
                raise
            raise UsageError(f"{label}: {exc.problem}") from exc

    return run


def _option_labels(parser: argparse.ArgumentParser) -> dict[str, str]:
    labels = {}
    for action in parser._actions:
        if action.option_strings:
            labels[action.dest] = action.option_strings[0]
        else:
            labels[action.dest] = str(action.metavar or action.dest.upper())
    return labels


def _date(text: str) -> dt.date:
    try:
        return parse_date("date", text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None


def _event_id(text: str) -> int:
    try:
        return parse_id("before", text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")


def _reading(ctx: Context) -> Session:
    return make_sessionmaker(read_only_engine(ctx.engine))()


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError("not confirmed: standard input is not a terminal; add --yes to "
                         "confirm from a script")
    if input(question).strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed; nothing changed")


def _read_pin() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("PIN (not shown): ")
    return sys.stdin.readline().strip()


def _plan_text(plan: PurgePlan, ctx: Context) -> str:
    grace = f" after {_plural(plan.grace_days, 'day')} of grace" if plan.grace_days else ""
    if not plan.already_due:
        when = (f"On {plan.purge_on} at 00:00 ({ctx.clock.zone.key}){grace}, at the first "
                f"purge check from then (by {_site_time(plan.runs_by, ctx)})")
    else:
        when = (f"That moment ({plan.purge_on} 00:00{grace}) has passed: at the next purge "
                f"check, by {_site_time(plan.runs_by, ctx)} at the latest (checks run every "
                f"{plan.check_minutes} minutes)")
    return (f"The contract of {plan.customer_name!r} ends on {plan.last_day} (its last day).\n"
            f"{when}, accessd destroys {_plural(plan.persons, 'person', 'people')}, "
            f"{_plural(plan.fingers, 'finger template')}, "
            f"{_plural(plan.consents, 'consent record')}, "
            f"{_plural(plan.events, 'access event')} and the customer's data key.\n"
            "This cannot be undone.")


def _site_time(moment: dt.datetime | None, ctx: Context) -> str:
    """A UTC moment as the site's wall time, with its zone."""
    if moment is None:
        return "-"
    return f"{ctx.clock.local(moment):%Y-%m-%d %H:%M} ({ctx.clock.zone.key})"


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _person_row(summary: PersonSummary, *, with_customer: bool = True) -> tuple[str, ...]:
    p = summary.person
    row = (str(p.id), summary.customer_name, p.name, str(p.credential), p.keypad_code or "-",
           str(summary.fingers), "yes" if summary.consent else "no",
           "restricted" if p.restricted else "active" if p.active else "inactive")
    return row if with_customer else row[:1] + row[2:]


def _customer_json(summary: CustomerSummary) -> dict[str, Any]:
    c = summary.customer
    return {"id": c.id, "public_id": c.public_id, "name": c.name, "reference": c.reference,
            "contract_start": c.contract_start, "contract_end": c.contract_end,
            "grace_days": c.grace_days, "lawful_basis": c.lawful_basis,
            "necessity_reference": c.necessity_reference, "persons": summary.persons,
            **_status_json(summary.status)}


def _status_json(status: ContractStatus) -> dict[str, Any]:
    return {"state": status.state, "purge_on": status.purge_on,
            "days_to_purge": status.days_to_purge, "state_text": status.describe()}


def _person_json(summary: PersonSummary, *, full: bool = False) -> dict[str, Any]:
    p: Person = summary.person
    record: dict[str, Any] = {
        "id": p.id, "public_id": p.public_id, "customer": summary.customer_name,
        "name": p.name, "email": p.email, "credential": p.credential,
        "keypad_code": p.keypad_code, "fingers": summary.fingers, "consent": summary.consent,
        "restricted": p.restricted, "active": p.active}
    if full:
        record.update(
            notes=p.notes, restricted_reason=p.restricted_reason,
            restricted_since=p.restricted_since, pin_set=p.pin_hash is not None,
            pin_locked_until=p.pin_locked_until, created_at=p.created_at,
            fingers=[{"label": f.label, "slot": f.sensor_slot, "enrolled_at": f.enrolled_at}
                     for f in p.fingers],
            consents=[{"given_at": c.given_at, "text_version": c.text_version,
                       "witnessed_by": c.witnessed_by, "withdrawn_at": c.withdrawn_at}
                      for c in p.consents])
    return record


def _event_json(event: EventRow) -> dict[str, Any]:
    return {"id": event.id, "at": event.at, "kind": event.kind, "method": event.method,
            "reason": event.reason, "door": event.door, "customer": event.customer,
            "person": event.person, "person_id": event.person_id,
            "refers_to": event.refers_to}


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=_json_value, ensure_ascii=False))


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | enum.Enum):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _print_fields(fields: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name.ljust(width)}  {value}")


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                 empty: str = "") -> None:
    if not rows:
        if empty:
            print(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
