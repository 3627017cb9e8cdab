"""The command line's audit trail: each command that reads, changes, exports or deletes personal
data leaves exactly one record in the staff audit log, as each of the panel's requests does.

Which commands, under which action and about which target, is declared once, here
(``AUDITED``), by the command's words (``"person add"``, ``"door unlock"``): no area module
repeats the plumbing, and a command added without a declaration fails the test that walks
the whole parser (``tests/cli/test_audit.py``) until it is declared here or listed in
``NOT_AUDITED`` with the reason.

Like the panel's request audit (``web.request_audit``), the record is opened before the
handler runs, with its target resolved to a public id while it still exists (an erased
person is gone afterwards); the handler may add to it (``ctx.audit.note(target=..., **facts)``,
e.g. the id of the person it just added); ``main`` writes it afterwards, in a transaction of
its own, however the command ended:

- ``success``: the handler returned 0;
- ``refused``: it raised an ``AccessdError`` that is a refusal: ``InputError`` (a bad value, a
  target that does not exist), ``RefusedError`` (a rule), or the root class itself (a
  command's own refusal with its message);
- ``failed``: anything else: a storage, file, key or daemon error, an exit status other than
  0, an interruption, a bug.

The actor is the operating-system user (``cli:<user>``): who ran the command. A ``--by NAME``
given to the command (the staff member it names in the records it writes) is kept in the
details. Details hold what the command was and chosen facts (never a free text a person
typed, which may name someone); a refusal keeps its error's class, not its message. The
staff-account commands (``accessd.cli.staff``) write their own success record in the same
transaction as the change they make; for them only refusals and failures are written here.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from accessd.errors import AccessdError, ConfigError, InputError, RefusedError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from accessd.cli.main import Context
    from accessd.models import AuditOutcome

SOURCE = "local"
"""The source address of every command-line record (the panel's are IP addresses)."""


def os_user() -> str:
    """The operating-system user running this command (its uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): the uid still identifies
        return str(os.getuid())


def cli_actor() -> str:
    """The audit log's actor for a command: ``cli:<os user>``."""
    return f"cli:{os_user()}"


@dataclass(frozen=True, slots=True)
class Audited:
    """How one command is audited.

    :param action: the audit log's action, the panel's word where the panel does the same.
    :param targets: kinds of target, tried in order (``person``, ``customer``, ``request``,
        ``door``, ``staff``, ``token``), each read from the argument of the same name or the
        one named after a colon (``"staff:username"``); the ``door`` from ``--door``, else
        this installation's door.
    :param facts: arguments copied into the details (dates, kinds, choices: never free text).
    :param when: only invocations for which this holds are audited (``purge --now``).
    :param refusals_only: the command writes its own success record.
    """

    action: str
    targets: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    when: Callable[[argparse.Namespace], bool] | None = None
    refusals_only: bool = False


AUDITED: dict[str, Audited] = {
    # customers, people, consent, the access history (accessd.cli.people)
    "customer add": Audited("customer.create", facts=("lawful_basis",)),
    "customer show": Audited("customer.view", ("customer",)),
    "customer end": Audited("customer.end_contract", ("customer",), ("last_day",)),
    "customer set-basis": Audited("customer.set_basis", ("customer",), ("lawful_basis",)),
    "person add": Audited("person.create", ("customer",), ("credential",)),
    "person list": Audited("person.list", ("customer",)),
    "person show": Audited("person.view", ("person",)),
    "person restrict": Audited("person.restrict", ("person",)),
    "person unrestrict": Audited("person.unrestrict", ("person",)),
    "person set-pin": Audited("person.set_pin", ("person",)),  # never the PIN
    "person rectify": Audited("person.rectify", ("person",)),
    "consent record": Audited("consent.record", ("person",), ("text_version",)),
    "events list": Audited("events.read", ("person", "customer"), ("kind", "since", "until")),
    "events export": Audited("events.export", ("person", "customer"),
                             ("kind", "since", "until")),
    # rights, requests, backups (accessd.cli.rights)
    "export person": Audited("person.export", ("person",)),
    "export customer": Audited("customer.export", ("customer",)),
    "erase person": Audited("person.erase", ("person",)),
    "withdraw-consent": Audited("person.withdraw_consent", ("person",)),
    "person remove-finger": Audited("person.remove_finger", ("person",), ("finger",)),
    "requests": Audited("request.list"),
    "request add": Audited("request.record", ("person", "customer"), ("kind", "received")),
    "request extend": Audited("request.extend", ("request:id",), ("until",)),
    "request close": Audited("request.close", ("request:id",)),
    "backup": Audited("backup.create"),
    "backup prune": Audited("backup.prune"),
    "restore": Audited("backup.restore", facts=("live_database_lost",)),
    # purge and retention (accessd.cli.privacy)
    "purge": Audited("purge.run", when=lambda args: bool(args.now)),
    "retention run": Audited("retention.run"),
    # the door's commands (accessd.cli.door, declared here so that module stays untouched)
    "enroll": Audited("enrolment.start", ("person",), ("finger", "door")),
    "door unlock": Audited("door.remote_unlock", ("door",)),
    "door provision": Audited("door.provision_wire_key", ("door",)),
    "sensor approve": Audited("door.approve_sensor", ("door",)),
    "resync": Audited("door.resync", ("door",)),
    "alarm clear": Audited("door.clear_alarms", ("door",)),
    "keys rotate": Audited("keys.rotate"),
    # zones, doors' places and modes, grants, holidays (accessd.cli.zones)
    "zone add": Audited("zone.create", facts=("name", "kind", "parent")),
    "zone move": Audited("zone.move", facts=("name", "parent", "top")),
    "zone remove": Audited("zone.delete", facts=("name",)),
    "zone new-customers": Audited("zone.grant_new_customers", facts=("name", "state")),
    "door place": Audited("door.place", ("door",), ("zone", "no_zone")),
    "door mode": Audited("door.set_mode", ("door",), ("mode",)),
    "grant add": Audited("grant.set", ("person", "customer"),
                         ("zone", "closed_on_holidays", "valid_from", "valid_until")),
    "grant list": Audited("grant.list", ("person", "customer")),
    "grant revoke": Audited("grant.revoke", ("person", "customer"), ("zone",)),
    "holiday add": Audited("holiday.add", facts=("day",)),
    "holiday remove": Audited("holiday.remove", facts=("day",)),
    # a site's doors (accessd.cli.site); the password is never a fact
    "site add-door-role": Audited("site.add_door_role", ("door",), ("role",)),
    # staff accounts and API tokens (accessd.cli.staff writes their successes itself)
    "user add": Audited("staff.create", facts=("role",), refusals_only=True),
    "user disable": Audited("staff.disable", ("staff:username",), refusals_only=True),
    "user reset-password": Audited("staff.reset_password", ("staff:username",),
                                   refusals_only=True),
    "user unlock": Audited("staff.unlock", ("staff:username",), refusals_only=True),
    "token add": Audited("token.create", facts=("role",), refusals_only=True),
    "token revoke": Audited("token.revoke", ("token:name",), refusals_only=True),
}
"""Every audited command, by its words."""

NOT_AUDITED: dict[str, str] = {
    "init": "creates the installation; there is no database to write to before it",
    "run": "the door daemon; what it does is recorded in the access history",
    "migrate": "brings the schema up to date; no personal data is read or changed",
    "web": "serves the panel, which audits each request itself",
    "status": "door and device state, no personal data",
    "doctor": "checks configuration, keys, database and devices; no personal data",
    "verify-log": "checks the hash chains; prints event ids, no personal data",
    "public-key": "prints the installation's public key and its fingerprint, no personal data",
    "customer list": "companies and counts, no personal data",
    "backup verify": "checks a backup decrypts; shows no personal data",
    "verify-certificate": "checks a signature; certificates hold no personal data",
    "register": "the register of processing holds no personal data",
    "dpia": "counts and settings per customer (companies), no personal data",
    "user list": "lists staff accounts (names and roles): the facility's own accounts",
    "token list": "lists API tokens: names and roles, no personal data",
    "zone list": "zones, door names and counts of grants, no personal data",
    "door list": "door names, zones and modes, no personal data",
    "holiday list": "the site's holidays, no personal data",
}
"""Commands deliberately not audited, and why."""


@dataclass
class CommandAudit:
    """The audit record of one command while it runs (``spec`` ``None``: not audited)."""

    spec: Audited | None = None
    command: str = ""
    target: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def note(self, target: str | None = None, **details: Any) -> None:
        """Say what the command did: its target once known (a new person), and facts."""
        if target is not None:
            self.target = target
        self.details.update(details)


def command_words(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The subcommands ``args`` chose, as typed: ``"person add"``, ``"backup"``."""
    words: list[str] = []
    current = parser
    while True:
        sub = _subcommands(current)
        chosen = getattr(args, sub.dest, None) if sub is not None else None
        if sub is None or chosen is None:
            return " ".join(words)
        words.append(chosen)
        current = sub.choices[chosen]


def every_command(parser: argparse.ArgumentParser) -> list[str]:
    """Every command ``parser`` accepts, by its words (a group with optional subcommands,
    like ``backup``, is a command of its own too)."""
    found: list[str] = []

    def walk(current: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        sub = _subcommands(current)
        if sub is None or not sub.required:
            found.append(" ".join(words))
        if sub is not None:
            for name, child in sub.choices.items():
                walk(child, (*words, name))

    walk(parser, ())
    return [words for words in found if words]


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and action.dest != argparse.SUPPRESS:
            return action
    return None


def open_audit(parser: argparse.ArgumentParser, args: argparse.Namespace,
               ctx: Context) -> CommandAudit:
    """The record of this command, its target resolved now (before anything is destroyed)."""
    command = command_words(parser, args)
    spec = AUDITED.get(command)
    if spec is None or (spec.when is not None and not spec.when(args)):
        return CommandAudit()
    record = CommandAudit(spec, command)
    record.details["command"] = command
    by = getattr(args, "by", None)
    if by:
        record.details["by"] = str(by)
    for name in spec.facts:
        value = getattr(args, name, None)
        if value not in (None, [], False):
            record.details[name] = value if isinstance(value, bool | int) else str(value)
    for kind in spec.targets:
        if _resolve(record, kind, args, ctx):
            break
    return record


def close_audit(record: CommandAudit, ctx: Context, code: int,
                error: BaseException | None) -> None:
    """Write the record with the outcome ``code``/``error`` say (nothing for a command that
    is not audited, or a staff command's success); a record that cannot be written is said
    on stderr, never silently lost."""
    from accessd.models import AuditOutcome

    spec = record.spec
    if spec is None or isinstance(error, ConfigError):  # without settings nothing happened
        return
    outcome = outcome_of(code, error)
    if spec.refusals_only and outcome is AuditOutcome.SUCCESS:
        return
    details = dict(record.details)
    if error is not None:
        details["error"] = type(error).__name__
    elif code:
        details["exit_status"] = code
    try:
        from accessd.db import session_scope
        from accessd.staff import record_audit

        with session_scope(ctx.sessions) as session:
            record_audit(session, actor=cli_actor(), action=spec.action, outcome=outcome,
                         target=record.target, details=details, source_address=SOURCE,
                         at=ctx.clock.now())
    except Exception as exc:  # the command's own outcome stands; say what was not recorded
        print(f"accessd: warning: the audit record of `{record.command}` ({outcome}) could "
              f"not be written: {exc}", file=sys.stderr)


def outcome_of(code: int, error: BaseException | None) -> AuditOutcome:
    """How a command ended, for the audit log (see the module's docstring)."""
    from accessd.models import AuditOutcome

    if error is None:
        return AuditOutcome.SUCCESS if code == 0 else AuditOutcome.FAILED
    if isinstance(error, InputError | RefusedError) or type(error) is AccessdError:
        return AuditOutcome.REFUSED
    return AuditOutcome.FAILED


# --- targets, by public id -----------------------------------------------------------------

def _resolve(record: CommandAudit, target: str, args: argparse.Namespace,
             ctx: Context) -> bool:
    """Set the record's target as ``target`` (``kind[:argument]``) says; whether one was
    given."""
    kind, _, argument = target.partition(":")
    ref = getattr(args, argument or kind, None)
    if kind == "door":
        ref = ref or ctx.settings.door.name
    if ref is None:
        return False
    try:
        with ctx.sessions() as session:
            record.target = _TARGETS[kind](session, str(ref))
    except (AccessdError, LookupError, ValueError):
        # Not found, or ambiguous: the handler refuses in its own words. Keep the reference
        # when it is an id; a name typed may be a person's.
        record.details["ref"] = str(ref) if _is_id(str(ref)) or kind == "door" else "(a name)"
    except Exception as exc:  # the database itself: the handler will meet it too
        record.details["ref_unresolved"] = type(exc).__name__
    return True


def _person(session: Session, ref: str) -> str:
    from accessd.customers.people import get_person

    return f"person:{get_person(session, ref).public_id}"


def _customer(session: Session, ref: str) -> str:
    from accessd.customers.contracts import get_customer

    return f"customer:{get_customer(session, ref).public_id}"


def _request(session: Session, ref: str) -> str:
    from accessd.rights.requests import get_request

    return f"request:{get_request(session, int(ref)).public_id}"


def _door(session: Session, ref: str) -> str:
    from accessd.history.query import door_named

    door = door_named(session, ref)
    if door is None:
        raise LookupError(ref)
    return f"door:{door.name}"


def _staff(session: Session, ref: str) -> str:
    from accessd.staff import get_staff_user

    return f"staff:{get_staff_user(session, ref).public_id}"


def _token(session: Session, ref: str) -> str:
    return f"token:{ref}"


_TARGETS: dict[str, Callable[[Session, str], str]] = {
    "person": _person, "customer": _customer, "request": _request, "door": _door,
    "staff": _staff, "token": _token,
}


def _is_id(text: str) -> bool:
    if text.strip().isdigit():
        return True
    try:
        uuid.UUID(text.strip())
    except ValueError:
        return False
    return True
