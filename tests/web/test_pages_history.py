"""The access history page: filters, keyset pages that never repeat or skip an event, the CSV
export of exactly the filtered rows (audited), and the per-day chart drawn as SVG."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.models import AuditRecord
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import Site, add_events, auditor, error_beside, site

__all__ = ["auditor", "site"]

_EVENT = re.compile(r'data-event="(\d+)"')
_LINK = re.compile(r'<a rel="(prev|next)" href="([^"]+)"')


def _ids(html: str) -> list[int]:
    return [int(i) for i in _EVENT.findall(html)]


def _links(html: str) -> dict[str, str]:
    return {rel: href.replace("&amp;", "&") for rel, href in _LINK.findall(html)}


@pytest.fixture
def events(sessions: sessionmaker[Session], site: Site, clock: FakeClock) -> list[int]:
    """123 events over the last days (three per timestamp), oldest first."""
    return add_events(sessions, site, clock() - dt.timedelta(days=2), 123)


def test_older_and_newer_pages_never_repeat_or_skip_an_event(
    signed_in: FlaskClient, events: list[int]
) -> None:
    pages: list[list[int]] = []
    urls = ["/history/"]
    html = signed_in.get(urls[0]).get_data(as_text=True)
    while True:
        pages.append(_ids(html))
        older = _links(html).get("next")
        if older is None:
            break
        assert "before=" in older and "offset" not in older
        urls.append(older)
        html = signed_in.get(older).get_data(as_text=True)
    seen = [i for page in pages for i in page]
    assert [len(p) for p in pages] == [50, 50, 23]
    assert seen == sorted(events, reverse=True)  # every event once, newest first
    for expected in reversed(pages[:-1]):  # and back again with "newer"
        newer = _links(html)["prev"]
        html = signed_in.get(newer).get_data(as_text=True)
        assert _ids(html) == expected
    assert "prev" not in _links(html)


def test_filters_select_the_events_and_keep_them_across_pages(
    signed_in: FlaskClient, events: list[int], site: Site
) -> None:
    html = signed_in.get("/history/?result=refused&customer=").get_data(as_text=True)
    refused = _ids(html)
    assert len(refused) == 50 and "Alice Jansen" not in html.split("<tbody>")[-1]
    older = _links(html)["next"]
    assert parse_qs(urlsplit(older).query)["result"] == ["refused"]
    rest = _ids(signed_in.get(older).get_data(as_text=True))
    assert len(refused) + len(rest) == 61  # the odd ones of 123
    granted = _ids(signed_in.get(f"/history/?person={site.alice_id}").get_data(as_text=True))
    assert set(granted).isdisjoint(refused)


@pytest.mark.parametrize(("query", "field", "message"), [
    ("since=2026-03-05&until=2026-03-01", "until", "not after it starts"),
    ("since=yesterday", "since", "is not a date"),
    ("customer=999", "customer", "Not a valid choice"),
    ("result=maybe", "result", "Not a valid choice"),
])
def test_bad_filters_say_what_is_wrong_beside_the_field(
    signed_in: FlaskClient, site: Site, query: str, field: str, message: str
) -> None:
    html = signed_in.get(f"/history/?{query}").get_data(as_text=True)
    assert message in error_beside(html, field)
    assert "Export CSV" not in html


def test_the_csv_export_has_exactly_the_filtered_rows_and_is_audited(
    auditor: FlaskClient, events: list[int], sessions: sessionmaker[Session]
) -> None:
    response = auditor.get("/history/export.csv?result=granted")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["id"]) for r in rows] == sorted(events[0::2], reverse=True)
    assert {r["kind"] for r in rows} == {"granted"} and rows[0]["person"] == "Alice Jansen"
    with sessions() as db:
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "history.export")).one()
        assert record.actor == "someone-auditor"
        assert record.details and record.details["filters"] == {"result": "granted"}


def test_the_chart_counts_accesses_and_refusals_per_day_as_inline_svg(
    signed_in: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    add_events(sessions, site, clock() - dt.timedelta(hours=1), 5, every=dt.timedelta(0))
    html = signed_in.get("/history/?since=2026-02-28&until=2026-03-03").get_data(as_text=True)
    assert '<svg viewBox="0 0 720 220" role="img"' in html
    assert "<title>2026-03-02: 3 granted</title>" in html
    assert "<title>2026-03-02: 2 refused</title>" in html
    assert "<title>2026-02-28: 0 granted</title>" in html
    assert "<script" not in html.split("<svg")[1].split("</svg>")[0]


def test_a_cursor_that_is_gone_starts_again_from_the_newest(
    signed_in: FlaskClient, events: list[int]
) -> None:
    html = signed_in.get("/history/?before=999999").get_data(as_text=True)
    assert "no longer exists" in html
    assert _ids(html)[0] == max(events)


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    for path in ("/history/", "/history/export.csv"):
        assert client.get(path).location.startswith("/login")
