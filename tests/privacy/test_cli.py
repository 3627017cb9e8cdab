"""The privacy commands as an operator runs them."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.main import main
from accessd.crypto import FileKeyProvider
from tests.privacy.seed import access, add_customer, enrol


@pytest.fixture
def config(tmp_path: Path, db_path: Path, keyring: FileKeyProvider,
           sessions: sessionmaker[Session]) -> str:
    """A config file for this test's database and keyring, with two customers in it."""
    with sessions.begin() as session:
        ended = add_customer(session, "Ended BV", contract_end=dt.date(2025, 12, 31), grace_days=5)
        person, _ = enrol(session, keyring, ended, "Erik Eind")
        access(session, ended, person, dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
        add_customer(session, "Running NV", contract_end=dt.date(2099, 1, 31))
    path = tmp_path / "accessd.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[database]\nurl = "sqlite:///{db_path}"\n'
                    f'[keys]\nmaster_key_file = "{keyring.path}"\n')
    return str(path)


def test_purge_dry_run_then_now_then_verify_the_certificate(
        config: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        keyring: FileKeyProvider) -> None:
    assert main(["--config", config, "purge", "--dry-run"]) == 0
    out = capsys.readouterr().out
    ended = next(line for line in out.splitlines() if line.startswith("Ended BV"))
    assert "2025-12-31" in ended and "5 d" in ended and "2026-01-06 00:00 CET (due now)" in ended
    assert "1 person, 1 finger, 1 consent, 1 access event, 1 data key" in ended
    assert "2099-02-01 00:00 CET" in out and "nothing held" in out

    assert main(["--config", config, "purge", "--now"]) == 0
    out = capsys.readouterr().out
    [certificate] = (tmp_path / "purge-certificates").iterdir()
    assert str(certificate) in out and "Ended BV" not in out

    assert main(["--config", config, "verify-certificate", str(certificate)]) == 0
    assert "VALID" in capsys.readouterr().out
    public = base64.b64encode(keyring.signing_public_key()).decode()
    assert main(["--config", "/nonexistent.toml", "verify-certificate", str(certificate),
                 "--public-key", public]) == 0  # a customer without the keyring
    capsys.readouterr()
    document = json.loads(certificate.read_text())
    document["certificate"]["grace_days"] = 0
    certificate.write_text(json.dumps(document))
    assert main(["--config", config, "verify-certificate", str(certificate)]) == 1
    assert "INVALID" in capsys.readouterr().err

    assert main(["--config", config, "purge", "--now"]) == 0
    assert "nothing is due" in capsys.readouterr().out


def test_retention_register_and_dpia_commands(
        config: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--config", config, "retention", "run"]) == 0
    out = capsys.readouterr().out
    assert "unknown finger events: 0 deleted (kept: 6 months)" in out

    page = tmp_path / "register.html"
    assert main(["--config", config, "register", "--format", "html", "--lang", "nl",
                 "--out", str(page)]) == 0
    assert "<th scope=\"col\">Grond voor verwerking</th>" in page.read_text()
    capsys.readouterr()
    assert main(["--config", config, "register"]) == 0
    assert "| Type dienst |" in capsys.readouterr().out

    assert main(["--config", config, "dpia", "--format", "json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in facts["customers"]] == ["Ended BV", "Running NV"]
