"""`accessd customer|person|consent|events` through `accessd.cli.main.main`, on a real config."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.models import Customer, EventKind, Person
from tests.customers import seed
from tests.customers.conftest import Run

TODAY = dt.date.today()
START = (TODAY - dt.timedelta(days=100)).isoformat()
END = (TODAY + dt.timedelta(days=100)).isoformat()
Accessd = Callable[..., Run]


@pytest.fixture
def acme(accessd: Accessd) -> None:
    """Acme Hosting, consent-based, with Ada (PIN) and Bob (finger)."""
    assert accessd("customer", "add", "Acme Hosting", "--start", START, "--end", END,
                   "--grace-days", "30", "--lawful-basis", "consent").code == 0
    assert accessd("person", "add", "Acme Hosting", "Ada Lovelace", "--email",
                   "ada@example.com", "--credential", "pin").code == 0
    assert accessd("person", "add", "1", "Bob Byte", "--credential", "finger").code == 0


def test_a_customer_is_added_listed_and_shown(accessd: Accessd, acme: None) -> None:
    listed = accessd("customer", "list")
    assert listed.code == 0
    assert re.search(rf"1\s+Acme Hosting\s+{START}\s+{END}\s+30\s+consent\s+2\s+active; "
                     r"purge due on", listed.out)
    shown = accessd("customer", "show", "acme hosting")
    assert "State         active; purge due on" in shown.out
    assert re.search(r"Ada Lovelace\s+pin\s+\d{4}\s+0\s+no\s+active", shown.out)
    assert re.search(r"Bob Byte\s+finger\s+-\s+0\s+no\s+active", shown.out)


def test_a_new_customer_is_given_its_reference_and_show_repeats_it(
        accessd: Accessd, sessions: sessionmaker[Session]) -> None:
    added = accessd("customer", "add", "Nimbus B.V.", "--start", START)
    assert added.code == 0
    with sessions() as session:
        reference = session.scalars(select(Customer.reference)).one()
    assert reference is not None and re.fullmatch(r"([0-9A-Z]{5}-){4}[0-9A-Z]{5}", reference)
    assert f"Customer reference: {reference} (give it to the customer" in added.out
    assert re.search(rf"Reference\s+{reference} \(the customer's",
                     accessd("customer", "show", "Nimbus B.V.").out)
    assert json.loads(accessd("customer", "show", "1", "--json").out)["reference"] == reference


def test_list_and_show_speak_json_for_scripts(accessd: Accessd, acme: None) -> None:
    (customer,) = json.loads(accessd("customer", "list", "--json").out)
    purge_on = dt.date.fromisoformat(END) + dt.timedelta(days=31)
    assert customer["name"] == "Acme Hosting"
    assert (customer["state"], customer["purge_on"], customer["days_to_purge"]) == (
        "active", purge_on.isoformat(), (purge_on - TODAY).days)
    shown = json.loads(accessd("customer", "show", "1", "--json").out)
    assert [p["name"] for p in shown["persons"]] == ["Ada Lovelace", "Bob Byte"]
    person = json.loads(accessd("person", "show", "Ada Lovelace", "--json").out)
    assert (person["credential"], person["pin_set"], person["fingers"]) == ("pin", False, [])
    people = json.loads(accessd("person", "list", "--customer", "Acme Hosting", "--json").out)
    assert [p["keypad_code"] is not None for p in people] == [True, False]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["customer", "add", "X", "--start", "2025-13-01"],
         "argument --start: '2025-13-01' is not a date; use YYYY-MM-DD"),
        (["customer", "add", "X", "--start", START, "--end", "31-12-2025"],
         "argument --end: '31-12-2025' is not a date"),
        (["customer", "add", "X", "--start", START, "--grace-days", "ninety"],
         "argument --grace-days: invalid int value"),
        (["customer", "add", "X", "--start", START, "--grace-days", "91"],
         "--grace-days: 91 is not allowed; use 0 to 90 days"),
        (["customer", "add", "X", "--start", END, "--end", START],
         f"--end: {START} is before the contract start {END}"),
        (["customer", "add", "X", "--start", START, "--lawful-basis", "necessity"],
         "--necessity-ref: the lawful basis 'necessity' (UAVG art. 29) needs the reference"),
        (["customer", "add", "X", "--start", START, "--lawful-basis", "contract"],
         "argument --lawful-basis: invalid choice: 'contract'"),
        (["customer", "add", "X"], "the following arguments are required: --start"),
        (["customer", "show", "Acme Hostin"],
         "no customer 'Acme Hostin' (give the id, public id or exact name); did you mean "
         "'Acme Hosting'?"),
        (["customer", "end", "Acme Hosting", "--last-day", "2001-01-01", "--yes"],
         f"--last-day: 2001-01-01 is before the contract start {START}"),
        (["customer", "set-basis", "1", "necessity"], "--ref: the lawful basis 'necessity'"),
        (["person", "add", "Acme Hosting", "Eve", "--email", "eve-at-example"],
         "--email: 'eve-at-example' is not an e-mail address"),
        (["person", "show", "Ada"], "did you mean 'Ada Lovelace'?"),
        (["person", "add", "Acme Hosting", "Eve \u202egnp.exe"],
         "NAME: the name holds an invisible control character (U+202E RIGHT-TO-LEFT OVERRIDE)"),
        (["customer", "add", "Evil\u2067 Corp", "--start", "2026-01-01"],
         "U+2067 RIGHT-TO-LEFT ISOLATE"),
        (["person", "restrict", "Ada Lovelace", "--reason", " "],
         "--reason: the reason must say why"),
        (["person", "rectify", "Ada Lovelace"], "give at least one of --name, --email, --notes"),
        (["consent", "record", "Ada Lovelace", "--witness", ""],
         "--witness: the witness must not be empty"),
        (["events", "list", "--kind", "opened"], "--kind: 'opened' is not an event kind"),
        (["events", "list", "--since", "2025-02-01", "--until", "2025-01-01"],
         "--until: the period ends on 2025-01-01, not after it starts (2025-02-01)"),
        (["events", "list", "--limit", "0"], "--limit: 0 is not allowed; use 1 to 1000"),
        (["events", "list", "--door", "frnt"], "no door 'frnt'"),
        (["events", "list", "--before", "9" * 30], "is not a whole number from 1 to"),
        (["events", "list", "--since", "0001-01-01"], "outside the dates this system handles"),
        (["customer", "show", "9" * 30], "no customer '" + "9" * 30),
        (["person", "show", "²"], "no person"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(
    accessd: Accessd, acme: None, argv: list[str], says: str
) -> None:
    run = accessd(*argv)
    assert run.code in (1, 2)
    assert run.out == ""
    assert run.err.count("\n") == 1, run.err
    assert says in run.err


def test_ending_a_contract_from_a_script_needs_yes(
    accessd: Accessd, acme: None, sessions: sessionmaker[Session]
) -> None:
    refused = accessd("customer", "end", "Acme Hosting", "--last-day", START)
    assert refused.code == 1
    assert "standard input is not a terminal; add --yes" in refused.err
    assert "2 people, 0 finger templates" in refused.out  # the plan is shown all the same
    with sessions() as session:
        assert session.scalars(select(Customer.contract_end)).one() == dt.date.fromisoformat(END)

    done = accessd("customer", "end", "Acme Hosting", "--last-day", START, "--yes")
    assert done.code == 0
    # Its purge moment (31 days after START) passed long ago: the next purge check runs it.
    assert "has passed: at the next purge check, by " in done.out
    assert "its data is purged at the next purge check, by " in done.out
    assert "00:00 after 30 days of grace) has passed" in done.out
    with sessions() as session:
        assert session.scalars(select(Customer.contract_end)).one() == dt.date.fromisoformat(
            START)


@pytest.mark.parametrize(("answer", "code", "ended"), [("y\n", 0, True), ("\n", 1, False)])
def test_ending_a_contract_at_a_terminal_asks_first(
    accessd: Accessd, acme: None, sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch, answer: str, code: int, ended: bool,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal(answer))
    last_day = (TODAY + dt.timedelta(days=10)).isoformat()
    run = accessd("customer", "end", "1", "--last-day", last_day)
    assert run.code == code
    assert "This cannot be undone." in run.out
    with sessions() as session:
        contract_end = session.scalars(select(Customer.contract_end)).one()
    assert (contract_end == dt.date.fromisoformat(last_day)) is ended


def test_a_pin_is_printed_once_as_the_keypad_entry_and_never_logged(
    accessd: Accessd, acme: None, sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    run = accessd("person", "set-pin", "Ada Lovelace")
    assert run.code == 0
    (entry,) = re.findall(r"\b(\d{4})\*(\d{6})#", run.out)
    code, pin = entry
    assert run.out.count(pin) == 1
    assert pin not in caplog.text and pin not in run.err
    with sessions() as session:
        ada = session.scalars(select(Person).where(Person.name == "Ada Lovelace")).one()
        assert ada.keypad_code == code
        assert ada.pin_hash is not None and pin not in ada.pin_hash


def test_a_chosen_pin_is_read_from_stdin(
    accessd: Accessd, acme: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("482915\n"))
    run = accessd("person", "set-pin", "Bob Byte", "--pin-stdin", "--credential",
                  "finger_or_pin")
    assert run.code == 0
    assert re.search(r"Keypad entry for Bob Byte: \d{4}\*482915#", run.out)
    bob = json.loads(accessd("person", "show", "Bob Byte", "--json").out)
    assert (bob["credential"], bob["pin_set"]) == ("finger_or_pin", True)


def test_a_pin_set_without_a_way_in_change_leaves_it_and_says_how(
    accessd: Accessd, acme: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("482915\n"))
    run = accessd("person", "set-pin", "Bob Byte", "--pin-stdin")
    assert run.code == 0
    assert "the door does not take this PIN" in run.out
    assert "--credential finger_or_pin" in run.out
    bob = json.loads(accessd("person", "show", "Bob Byte", "--json").out)
    assert (bob["credential"], bob["pin_set"]) == ("finger", True)
    assert accessd("person", "rectify", "Bob Byte", "--credential", "finger_or_pin").code == 0
    bob = json.loads(accessd("person", "show", "Bob Byte", "--json").out)
    assert bob["credential"] == "finger_or_pin"


def test_a_duplicate_person_is_refused_unless_confirmed(accessd: Accessd, acme: None) -> None:
    args = ["person", "add", "Acme Hosting", "Bob Byte"]  # Bob has no e-mail either
    run = accessd(*args)
    assert run.code == 1 and "already has a person named Bob Byte" in run.err
    assert accessd(*args, "--same-name-ok").code == 0


def test_a_weak_chosen_pin_is_refused(
    accessd: Accessd, acme: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("123456\n"))
    run = accessd("person", "set-pin", "Bob Byte", "--pin-stdin")
    assert (run.code, run.out) == (1, "")
    assert "among the first anyone would try" in run.err


def test_restriction_consent_and_rectification_round_trip(accessd: Accessd, acme: None) -> None:
    assert accessd("person", "restrict", "Bob Byte", "--reason", "request 14").code == 0
    assert accessd("person", "restrict", "Bob Byte", "--reason", "again").code == 1
    assert "restricted" in accessd("person", "list").out
    assert accessd("person", "unrestrict", "Bob Byte").code == 0
    recorded = accessd("consent", "record", "Bob Byte", "--witness", "alice")
    assert "text version 1, witnessed by alice" in recorded.out  # the configured version
    again = accessd("consent", "record", "Bob Byte", "--witness", "alice",
                    "--text-version", "2")
    assert again.code == 1 and "already gave consent" in again.err
    fixed = accessd("person", "rectify", "Bob Byte", "--name", "Robert Byte", "--email", "")
    assert fixed.out == "Robert Byte: name corrected.\n"
    bob = json.loads(accessd("person", "show", "Robert Byte", "--json").out)
    assert (bob["restricted"], bob["consent"], bob["email"]) == (False, True, None)


def test_switching_basis_warns_about_enrolled_people_without_consent(
    accessd: Accessd, acme: None, sessions: sessionmaker[Session]
) -> None:
    assert accessd("customer", "set-basis", "1", "necessity", "--ref", "DPIA-7").code == 0
    with sessions() as session, session.begin():
        seed.finger(session, session.scalars(select(Person).where(Person.id == 2)).one())
    run = accessd("customer", "set-basis", "1", "consent")
    assert run.code == 0
    assert "1 person has fingers enrolled but no consent on record" in run.out
    assert "Bob Byte (id 2)" in run.out


@pytest.fixture
def history(accessd: Accessd, acme: None, sessions: sessionmaker[Session]) -> int:
    """25 events at the front door: Ada granted, unknown fingers refused. Returns the count."""
    base = dt.datetime.combine(TODAY - dt.timedelta(days=3), dt.time(9), tzinfo=dt.UTC)
    with sessions() as session, session.begin():
        ada = session.scalars(select(Person).where(Person.id == 1)).one()
        front = seed.door(session, "front")
        for n in range(25):
            if n % 5:
                seed.event(session, EventKind.GRANTED, base + dt.timedelta(minutes=n), who=ada,
                           where=front)
            else:
                seed.event(session, EventKind.UNKNOWN_FINGER, base + dt.timedelta(minutes=n),
                           where=front)
    return 25


def test_events_are_listed_a_page_at_a_time(accessd: Accessd, history: int) -> None:
    first = json.loads(accessd("events", "list", "--limit", "10", "--json").out)
    assert len(first["events"]) == 10 and first["next_before"] == first["events"][-1]["id"]
    seen = [e["id"] for e in first["events"]]
    before = first["next_before"]
    while before is not None:
        page = json.loads(accessd("events", "list", "--limit", "10", "--before", str(before),
                                  "--json").out)
        seen += [e["id"] for e in page["events"]]
        before = page["next_before"]
    assert sorted(seen, reverse=True) == seen and len(set(seen)) == history

    table = accessd("events", "list", "--kind", "refused", "--door", "front", "--limit", "3")
    assert table.out.count("unknown finger") == 3 and "unknown_finger" not in table.out
    assert "Ada" not in table.out
    assert "More: add --before" in table.out


def test_events_filter_by_customer_person_and_local_days(accessd: Accessd, history: int) -> None:
    def count(*argv: str) -> int:
        return len(json.loads(accessd("events", "list", "--json", *argv).out)["events"])

    assert count("--customer", "Acme Hosting") == 20
    assert count("--person", "Ada Lovelace", "--kind", "granted") == 20
    since = (TODAY - dt.timedelta(days=3)).isoformat()
    assert count("--since", since, "--until", (TODAY - dt.timedelta(days=2)).isoformat()) == 25
    assert count("--until", since) == 0


def test_events_export_streams_a_private_csv_file(
    accessd: Accessd, history: int, tmp_path: Path
) -> None:
    out = tmp_path / "events.csv"
    run = accessd("events", "export", "--out", str(out))
    assert run.code == 0 and f"Exported {history} events" in run.out
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == history + 1
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    anonymous = [r for r in csv.DictReader(lines) if r["kind"] == "unknown_finger"]
    assert len(anonymous) == 5
    assert all(r["person"] == r["person_id"] == r["customer"] == "" for r in anonymous)

    again = accessd("events", "export", "--out", str(out))
    assert again.code == 1 and "already exists" in again.err
    assert len(out.read_text().splitlines()) == history + 1  # untouched


def test_events_export_to_stdout_keeps_the_summary_off_it(
    accessd: Accessd, history: int
) -> None:
    run = accessd("events", "export", "--out", "-", "--kind", "granted")
    assert len(run.out.splitlines()) == 21
    assert "Exported 20 events" in run.err
