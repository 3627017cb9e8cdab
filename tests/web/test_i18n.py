"""The panel in English and Dutch from one message catalogue (issue 12): the language comes
from the switch in the header (kept in a cookie across sign-in), else the browser's
Accept-Language, else English; the committed ``.mo`` is what the ``.po`` compiles to, and every
text the code marks for translation has its Dutch translation (``make messages``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "web" / "translations" / "nl" / "LC_MESSAGES"


def _frozen(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def _messages(catalog: object) -> dict[object, object]:
    return {_frozen(m.id): _frozen(m.string)
            for m in catalog if m.id}  # type: ignore[attr-defined]


def test_the_committed_mo_is_the_compiled_po() -> None:
    with (CATALOGUE / "messages.po").open("rb") as po, (CATALOGUE / "messages.mo").open("rb") as mo:
        source, compiled = _messages(read_po(po)), _messages(read_mo(mo))
    assert compiled == source, "run `make messages` and commit web/translations"


def test_every_marked_text_has_a_dutch_translation(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "_l", "-k", "N_", "-k", "NavLink:1", "--no-location", "-o", str(pot), "."],
        cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as extracted, (CATALOGUE / "messages.po").open("rb") as po:
        wanted = {_frozen(m.id) for m in read_po(extracted) if m.id}
        dutch = _messages(read_po(po))
    untranslated = sorted(str(i) for i in wanted if not dutch.get(i))
    assert untranslated == [], "run `make messages` and translate these in messages.po"


def test_a_dutch_browser_gets_the_sign_in_page_in_dutch(client: FlaskClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"})
    text = page.get_data(as_text=True)
    assert '<html lang="nl">' in text
    assert "<h1>Inloggen</h1>" in text and "Gebruikersnaam" in text
    english = client.get("/login", headers={"Accept-Language": "fr, de"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "<h1>Sign in</h1>" in english


def test_the_switch_in_the_header_keeps_the_language_across_sign_in(
        client: FlaskClient, admin: StaffMember, clock: FakeClock) -> None:
    chosen = client.post("/language", data={"csrf_token": csrf_token(client), "language": "nl",
                                            "next": "/login"})
    assert chosen.status_code == 302 and chosen.headers["Location"] == "/login"
    assert "Inloggen" in client.get("/login").get_data(as_text=True)
    assert sign_in(client, admin, clock).status_code == 302
    staff = client.get("/staff/").get_data(as_text=True)
    assert "<h1>Medewerkers</h1>" in staff and "Laatst ingelogd" in staff
    assert ">beheerder<" in staff  # the role's name, translated
    client.post("/language", data={"csrf_token": csrf_token(client, "/staff/"),
                                   "language": "en", "next": "/staff/"})
    assert "<h1>Staff accounts</h1>" in client.get("/staff/").get_data(as_text=True)


@pytest.mark.parametrize("language", ["xx", "", "../../etc"])
def test_an_unknown_language_changes_nothing(client: FlaskClient, language: str) -> None:
    client.post("/language", data={"csrf_token": csrf_token(client), "language": language,
                                   "next": "//evil.example/"})
    assert "<h1>Sign in</h1>" in client.get("/login").get_data(as_text=True)


def test_the_language_switch_needs_a_csrf_token(client: FlaskClient) -> None:
    assert client.post("/language", data={"language": "nl"}).status_code == 400


def test_a_failed_sign_in_says_so_in_dutch(client: FlaskClient, admin: StaffMember,
                                          clock: FakeClock) -> None:
    client.post("/language", data={"csrf_token": csrf_token(client), "language": "nl"})
    page = sign_in(client, admin, clock, password="not the password at all", next_step=False)
    assert re.search(r"Inloggen mislukt\..*vraag een beheerder je account te deblokkeren",
                     page.get_data(as_text=True))


def test_a_refused_password_is_explained_in_dutch_beside_the_field(
        signed_in: FlaskClient, admin: StaffMember) -> None:
    signed_in.post("/language", data={"csrf_token": csrf_token(signed_in, "/"), "language": "nl"})
    page = signed_in.post("/account/password", data={
        "csrf_token": csrf_token(signed_in, "/account/password"),
        "current_password": "not it at all", "new_password": "password1234",
        "confirm": "password1234"}).get_data(as_text=True)
    assert "Het huidige wachtwoord klopt niet; typ het opnieuw." in page
    page = signed_in.post("/account/password", data={
        "csrf_token": csrf_token(signed_in, "/account/password"),
        "current_password": admin.password, "new_password": "password1234",
        "confirm": "password1234"}).get_data(as_text=True)
    assert ("Dit wachtwoord staat op de lijst van veelgebruikte en uitgelekte wachtwoorden; "
            "kies een ander.") in page
    empty = signed_in.post("/account/password", data={
        "csrf_token": csrf_token(signed_in, "/account/password")}).get_data(as_text=True)
    assert "Vul je huidige wachtwoord in." in empty and "Kies een nieuw wachtwoord." in empty


def test_no_catalogue_text_holds_markup() -> None:
    # Translated texts are trusted as markup (Jinja marks them safe, as Flask-Babel's lazy
    # strings are): a "<name>" in one would be swallowed as a tag, so none may hold < > &.
    with (CATALOGUE / "messages.po").open("rb") as po:
        texts = [str(part) for m in read_po(po) if m.id
                 for value in (m.id, m.string)
                 for part in (value if isinstance(value, list | tuple) else [value])]
    assert [t for t in texts if re.search(r"[<>&]", t)] == []
