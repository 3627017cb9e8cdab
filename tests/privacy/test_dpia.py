"""``accessd dpia``: the facts, per customer by name, and never any key material."""

from __future__ import annotations

import base64
import datetime as dt
import json

from sqlalchemy.orm import Session, sessionmaker

from accessd.config import Settings
from accessd.crypto import FileKeyProvider
from accessd.models import LawfulBasis
from accessd.privacy.dpia import dpia_facts, render_json, render_markdown
from tests.privacy.seed import access, add_customer, enrol


def test_the_dpia_states_customers_flows_keys_retention_and_risks(
        settings: Settings, sessions: sessionmaker[Session], keyring: FileKeyProvider) -> None:
    with sessions.begin() as session:
        acme = add_customer(session, "Acme Hosting", contract_end=dt.date(2026, 3, 31),
                            grace_days=14)
        person, _ = enrol(session, keyring, acme, "Ada Lovelace")
        access(session, acme, person, dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
        add_customer(session, "Bank Vault", basis=LawfulBasis.NECESSITY,
                     reference="DPIA-2025-07 security assessment")
        add_customer(session, "Undecided BV", basis=None)
    with sessions() as session:
        facts = dpia_facts(settings, session, dt.datetime(2025, 6, 1, tzinfo=dt.UTC), keyring)

    customers = {c["name"]: c for c in facts["customers"]}
    assert (customers["Acme Hosting"]["persons"], customers["Acme Hosting"]["fingers"],
            customers["Acme Hosting"]["access_events"]) == (1, 1, 1)
    assert customers["Acme Hosting"]["lawful_basis"] == "consent"
    assert customers["Acme Hosting"]["purge_due_at"] == "2026-04-14T22:00:00+00:00"
    assert customers["Bank Vault"]["necessity_reference"] == "DPIA-2025-07 security assessment"
    assert customers["Undecided BV"]["lawful_basis"] is None
    assert {f["from"] for f in facts["flows"]} >= {"fingerprint sensor", "door board",
                                                   "database"}
    assert facts["retention"]["unknown_finger_events"]["nl"] == "6 maanden"
    assert str(keyring.path) in facts["keys"]["keyring"] and "0600" in facts["keys"]["keyring"]
    assert facts["keys"]["data_keys"]["count"] == 1
    risks = " ".join(r["risk"] for r in facts["risks"])
    assert "sensor's flash" in risks and "serial line" in risks and "wear levelling" in risks
    assert "door board's cable" in risks and "sensor sits outside the door" in risks
    outside = next(r for r in facts["risks"] if "outside the door" in r["risk"])
    assert any(m.startswith("residual: the sensor's protocol has no authentication")
               for m in outside["mitigations"])

    document = render_json(facts) + render_markdown(facts)
    keyring.set_door_link_key(bytes(range(1, 33)))
    document += render_json(dpia_facts(settings, sessions(), dt.datetime(2025, 6, 1,
                                                                         tzinfo=dt.UTC), keyring))
    keyring_file = json.loads(keyring.path.read_text())
    secrets = [keyring_file["signing_key"], str(keyring_file["sensor_password"]),
               keyring_file["door_link_key"], bytes(range(1, 33)).hex(),
               *(k["key"] for k in keyring_file["master_keys"]),
               base64.b64encode(keyring.signing_public_key()).decode()]
    assert not [s for s in secrets if s in document]
    assert "## Known risks" in document and "| Acme Hosting | consent |" in document
