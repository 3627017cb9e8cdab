"""The register of processing activities: the statements' five columns, both languages."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from accessd.config import RetentionPeriod, Settings
from accessd.models import LawfulBasis
from accessd.privacy.processing_register import (
    COLUMNS,
    LANGS,
    RegisterRow,
    build_register,
    render_csv,
    render_html,
    render_markdown,
    render_register,
)


def test_the_register_has_the_five_columns_in_english_and_dutch() -> None:
    settings = Settings()
    text = render_register(settings, "md", LANGS)
    for header in ("| Service | Data | Retention | Controller | Legal ground |",
                   "| Type dienst | Type gegevens | Bewaartermijnen | Verantwoordelijke | "
                   "Grond voor verwerking |"):
        assert header in text
    rows = list(csv.reader(io.StringIO(render_register(settings, "csv", LANGS))))
    assert rows[0] == ["Language / Taal", "Service / Type dienst", "Data / Type gegevens",
                       "Retention / Bewaartermijnen", "Controller / Verantwoordelijke",
                       "Legal ground / Grond voor verwerking"]
    assert [r[0] for r in rows[1:]] == ["en"] * 7 + ["nl"] * 7
    assert all(len(r) == 6 and all(r) for r in rows)
    header = next(csv.reader(io.StringIO(render_register(settings, "csv", ["nl"]))))
    assert header == list(COLUMNS["nl"])


def test_the_register_follows_the_running_configuration() -> None:
    settings = dataclasses.replace(Settings(), retention=dataclasses.replace(
        Settings().retention, unknown_finger_events=RetentionPeriod(90, "day"),
        data_subject_requests=RetentionPeriod(2, "year")))
    english, dutch = (build_register(settings, lang) for lang in LANGS)
    assert english[0].service == "Colocation access" and dutch[0].service == "Toegang colocatie"
    assert english[0].retention.startswith("until the end of the service")
    assert dutch[0].retention.startswith("tot einde dienstverlening")
    assert english[2].retention == "90 days" and dutch[2].retention == "90 dagen"
    assert english[5].retention == "2 years after closing"
    assert dutch[5].retention == "2 jaar na afsluiting"
    assert "12 months" in english[6].retention and "12 maanden" in dutch[6].retention
    assert {r.controller for r in english} == {"Provider"}
    assert "uitvoering overeenkomst" in dutch[0].legal_ground
    assert "wettelijke verplichting" in dutch[5].legal_ground
    assert "gerechtvaardigd belang" in dutch[3].legal_ground


@pytest.mark.parametrize(("bases", "present", "absent"), [
    ({LawfulBasis.CONSENT}, "explicit consent", "UAVG art. 29"),
    ({LawfulBasis.NECESSITY}, "UAVG art. 29", "explicit consent"),
    (set(), "no lawful basis recorded yet", "UAVG"),
])
def test_the_fingerprint_ground_names_only_the_bases_customers_recorded(
        bases: set[LawfulBasis], present: str, absent: str) -> None:
    ground = build_register(Settings(), "en", bases)[0].legal_ground
    assert ground.startswith("performance of the contract")
    assert present in ground and absent not in ground


HOSTILE = RegisterRow("<script>alert(1)</script>", "a & b | c", "=HYPERLINK(\"x\")",
                      "line\nbreak", "\"quoted\"")


def test_every_format_escapes_what_it_must() -> None:
    page = render_html({"en": [HOSTILE]})
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b | c" in page and "&quot;quoted&quot;" in page
    table = render_markdown([HOSTILE], "en")
    assert "a & b \\| c" in table and "line break" in table and "<script>" not in table
    [_, row] = list(csv.reader(io.StringIO(render_csv({"en": [HOSTILE]}))))
    assert row[2] == "'=HYPERLINK(\"x\")"  # not run as a formula by a spreadsheet
    assert row[3] == "line\nbreak" and row[4] == "\"quoted\""
