"""`accessd user ...` and `accessd token ...`, through a tiny argparse harness like the main CLI."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import re
from typing import Any
from zoneinfo import ZoneInfo

import pyotp
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.staff import StaffCliContext, register
from accessd.crypto import FileKeyProvider
from accessd.db import session_scope
from accessd.errors import AccessdError
from accessd.models import AuditRecord, StaffRole, StaffUser
from accessd.staff import get_staff_user, must_change_password, verify_api_token
from accessd.staff.passwords import verify_password
from tests.web.conftest import FakeClock


class Cli:
    """Parses and runs a command line; returns (exit status, output), errors as the main CLI
    would print them."""

    def __init__(self, sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock):
        self.parser = argparse.ArgumentParser(prog="accessd")
        register(self.parser.add_subparsers(dest="command", required=True))
        self.sessions, self.keys, self.clock = sessions, keys, clock

    def __call__(self, *argv: str, stdin: str = "") -> tuple[int, str]:
        out = io.StringIO()
        args = self.parser.parse_args(argv)
        ctx = StaffCliContext(
            self.sessions, self.keys, self.clock, io.StringIO(stdin), out, actor="cli:tester"
        )
        try:
            status = args.handler(args, ctx)
        except AccessdError as exc:
            return 1, f"accessd: {exc}"
        return status, out.getvalue()


@pytest.fixture
def cli(sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock) -> Cli:
    return Cli(sessions, keys, clock)


def test_user_add_prints_a_generated_password_and_the_second_factor_once(
    cli: Cli, sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock
) -> None:
    status, out = cli("user", "add", "Ada", "--role", "admin")
    assert status == 0
    assert "Created staff user ada (admin)." in out
    password = re.search(r"Password \(shown once.*\n  (\S+)", out)
    uri = re.search(r"  (otpauth://totp/\S+)", out)
    assert password and uri
    totp = pyotp.parse_uri(uri.group(1))
    assert totp.issuer == "accessd" and totp.name == "ada"
    with session_scope(sessions) as db:
        user = get_staff_user(db, "ada")
        assert verify_password(user.password_hash, password.group(1))
        assert must_change_password(user)
        assert user.role is StaffRole.ADMIN


def test_user_add_reads_the_password_from_stdin(
    cli: Cli, sessions: sessionmaker[Session]
) -> None:
    status, out = cli("user", "add", "bob", "--role", "operator", "--password-stdin",
                      stdin="my own long passphrase\n")  # fmt: skip
    assert status == 0 and "Password" not in out and "otpauth://" in out
    with session_scope(sessions) as db:
        user = get_staff_user(db, "bob")
        assert verify_password(user.password_hash, "my own long passphrase")
        assert not must_change_password(user)


def test_user_add_can_draw_the_qr_code_in_the_terminal(cli: Cli) -> None:
    status, out = cli("user", "add", "qr", "--role", "auditor", "--qr")
    assert status == 0
    assert "█" in out or "▀" in out


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (("user", "add", "Bad Name", "--role", "admin"), "", "a user name has"),
        (("user", "add", "short", "--role", "admin", "--password-stdin"), "short\n", "at least 12"),
        (("user", "add", "empty", "--role", "admin", "--password-stdin"), "", "no password"),
        (("user", "disable", "ghost"), "", "no staff user named 'ghost'"),
        (("user", "reset-password", "ghost"), "", "accessd user list"),
        (("token", "revoke", "ghost"), "", "no API token named"),
        (("token", "add", "x", "--role", "admin", "--expires-days", "0"), "", "at least 1"),
    ],
)
def test_refusals_are_one_clear_line(
    cli: Cli, argv: tuple[str, ...], stdin: str, message: str
) -> None:
    status, out = cli(*argv, stdin=stdin)
    assert status == 1 and message in out and "\n" not in out


def test_an_unknown_role_is_refused_by_the_parser(cli: Cli) -> None:
    with pytest.raises(SystemExit):
        cli("user", "add", "x", "--role", "root")


def test_user_list_shows_everyone_and_nothing_secret(cli: Cli) -> None:
    assert "No staff users yet" in cli("user", "list")[1]
    cli("user", "add", "ada", "--role", "admin")
    cli("user", "add", "otto", "--role", "operator")
    status, out = cli("user", "list")
    assert status == 0
    assert re.search(r"ada\s+admin\s+active\s+yes\s+never", out)
    assert re.search(r"otto\s+operator\s+active", out)
    assert "otpauth" not in out


def test_user_disable_and_reset_password_end_sessions_and_are_audited(
    cli: Cli, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    from accessd.staff import SessionState, resume_session, start_session

    cli("user", "add", "ada", "--role", "admin")
    cli("user", "add", "otto", "--role", "operator")
    with session_scope(sessions) as db:
        token = start_session(db, get_staff_user(db, "otto"), source_address=None, now=clock())
    status, out = cli("user", "reset-password", "otto", "--new-second-factor")
    assert status == 0 and "otpauth://" in out and "Password" in out
    with session_scope(sessions) as db:
        assert resume_session(db, token, now=clock()).state is SessionState.ENDED
    assert cli("user", "disable", "otto")[0] == 0
    assert "last active admin" in cli("user", "disable", "ada")[1]
    with session_scope(sessions) as db:
        records = db.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        assert [(r.actor, r.action) for r in records] == [
            ("cli:tester", "staff.create"),
            ("cli:tester", "staff.create"),
            ("cli:tester", "staff.reset_password"),
            ("cli:tester", "staff.disable"),
        ]


def test_token_add_prints_the_token_once_and_revoke_ends_it(
    cli: Cli, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    status, out = cli("token", "add", "ticketing", "--role", "auditor", "--expires-days", "30")
    assert status == 0
    token = re.search(r"  (accessd_\S+)", out)
    assert token
    with session_scope(sessions) as db:
        row = verify_api_token(db, token.group(1), now=clock())
        assert row is not None and row.role is StaffRole.AUDITOR
    listing = cli("token", "list")[1]
    assert "ticketing" in listing and token.group(1) not in listing
    assert cli("token", "revoke", "ticketing")[0] == 0
    with session_scope(sessions) as db:
        assert verify_api_token(db, token.group(1), now=clock()) is None


def test_the_main_accessd_command_runs_them_on_its_configuration(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from accessd.cli.main import main
    from accessd.config import load_settings, write_default_config
    from accessd.crypto import FileKeyProvider as Provider
    from accessd.db import create_db_engine, upgrade

    config = write_default_config(tmp_path / "accessd.toml", tmp_path / "data")
    settings = load_settings(config)
    assert settings.keys.master_key_file is not None
    Provider.create(settings.keys.master_key_file)
    engine = create_db_engine(settings.database.url)
    upgrade(engine)
    engine.dispose()
    assert main(["--config", str(config), "user", "list"]) == 0
    assert "No staff users yet" in capsys.readouterr().out
    assert main(["--config", str(config), "user", "add", "root-admin", "--role", "admin"]) == 0
    assert "otpauth://totp/accessd:root-admin" in capsys.readouterr().out
    assert main(["--config", str(config), "user", "disable", "root-admin"]) == 1
    assert "last active admin" in capsys.readouterr().err


def test_user_list_shows_the_last_sign_in_in_site_time_with_its_zone(
    cli: Cli, sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock
) -> None:
    cli("user", "add", "ada", "--role", "admin")
    with session_scope(sessions) as db:
        db.execute(update(StaffUser).values(
            last_login_at=dt.datetime(2026, 7, 1, 8, 30, tzinfo=dt.UTC)))
    out = io.StringIO()
    ctx = StaffCliContext(sessions, keys, clock, io.StringIO(), out, actor="cli:tester",
                          zone=ZoneInfo("Europe/Amsterdam"))
    args = cli.parser.parse_args(["user", "list"])
    assert args.handler(args, ctx) == 0
    assert re.search(r"ada\s+admin\s+active\s+yes\s+2026-07-01 10:30 CEST", out.getvalue())
