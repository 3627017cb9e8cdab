"""A crawl of the panel in headless Chromium (issue 12): as each role, at 1366 px and at 390 px,
every page reachable by its links loads without a server error, no text overflows its table
cell or card, the page is no wider than the screen, and every time shown carries its zone
("2026-03-02 10:55:12 CET"), whether in a ``<time>`` element or in running text, and stays on
one line.

The site has what makes pages long and times many: a door with an open alarm and an unplugged
board, a customer with people, events, a data-subject request, and the sign-ins themselves.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any
from urllib.parse import urldefrag, urlparse

import pytest
from playwright.sync_api import Page
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from accessd.models import DoorStatus, StaffRole
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import Site, add_events, browser_sign_in, site

__all__ = ["site"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (1366, 390)
SKIPPED = ("/logout", "/static/", ".csv", ".json", ".zip", ".md", "export", "/api/")
MAX_PAGES = 80

CHECK = r"""() => {
  const overflowing = [];
  const boxes = document.querySelectorAll(
    'td, th, .door-card, .device dd, .card, .facts dd, .flash');
  for (const box of boxes) {
    if (box.closest('.table-scroll') && !box.matches('td, th')) { continue; }
    if (box.scrollWidth > box.clientWidth + 1) {
      overflowing.push(box.tagName.toLowerCase() + ': ' + box.innerText.slice(0, 60));
    }
  }
  const stamp = /\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(\.\d+)?/g;
  const zone = /^ ?(CET|CEST|UTC|Z|[A-Z]{2,5}\b|[+-]\d\d)/;
  const unlabelled = [];
  const text = document.body.innerText;
  let found;
  while ((found = stamp.exec(text)) !== null) {
    const after = text.slice(found.index + found[0].length, found.index + found[0].length + 6);
    if (!zone.test(after)) { unlabelled.push(text.slice(found.index, found.index + 30)); }
  }
  for (const time of document.querySelectorAll('time')) {
    if (!/ (CET|CEST|UTC|[A-Z]{2,5}|[+-]\d\d)$/.test(time.textContent.trim())) {
      unlabelled.push('<time> ' + time.textContent);
    }
  }
  // A time split over two lines ("2027-09-" / "24 10:55 CET") is misread: each on one line.
  const wrapped = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const moment = /\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( [A-Z]{2,5}\b)?/g;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    let hit;
    while ((hit = moment.exec(node.data)) !== null) {
      const range = document.createRange();
      range.setStart(node, hit.index);
      range.setEnd(node, hit.index + hit[0].length);
      const tops = new Set(Array.from(range.getClientRects(), r => Math.round(r.top)));
      if (tops.size > 1) { wrapped.push(hit[0]); }
    }
  }
  return {overflowing: overflowing, unlabelled: unlabelled, wrapped: wrapped,
          width: document.documentElement.scrollWidth,
          links: Array.from(document.querySelectorAll('a[href]'), a => a.href)};
}"""


@pytest.fixture
def busy_site(site: Site, sessions: sessionmaker[Session], clock: FakeClock) -> Site:
    add_events(sessions, site, clock() - dt.timedelta(days=1), 12)
    with sessions.begin() as db:  # the door's board unplugged a minute ago
        db.execute(update(DoorStatus).values(
            online=False, board_problem="unplugged",
            board_seen_at=clock() - dt.timedelta(minutes=1), sensor_seen_at=clock(),
            database_seen_at=clock(), fault="door board on /dev/ttyACM0: [Errno 2]"))
    return site


def _crawl(page: Page, base: str) -> dict[str, dict[int, Any]]:
    """Every page reachable from the dashboard, each checked at both widths."""
    seen: dict[str, dict[int, Any]] = {}
    queue = deque([f"{base}/"])
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen[url] = {}
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            response = page.goto(url)
            assert response is not None
            seen[url][width] = {"status": response.status, **page.evaluate(CHECK)}
        for link in seen[url][WIDTHS[0]]["links"]:
            link = urldefrag(link).url
            parsed = urlparse(link)
            if (f"{parsed.scheme}://{parsed.netloc}" == base and link not in seen
                    and not any(part in link for part in SKIPPED)):
                queue.append(link)
    return seen


@pytest.mark.parametrize("language", ["en", "nl"])
@pytest.mark.parametrize("role", list(StaffRole))
def test_every_page_fits_both_widths_and_labels_every_time(
    page: Page, live_server: str, make_staff: Any, clock: FakeClock, busy_site: Site,
    role: StaffRole, language: str,
) -> None:
    """In English and in Dutch (whose words run longer): nothing overflows at either width."""
    member = make_staff(f"crawler-{role.value}", role)
    browser_sign_in(page, live_server, member, clock)
    # The language switch's choice (its cookie), made once signed in.
    page.context.add_cookies([{"name": "accessd_lang", "value": language, "url": live_server}])
    page.goto(f"{live_server}/")
    lang = page.evaluate("document.documentElement.lang")
    assert lang == language
    pages = _crawl(page, live_server)
    assert len(pages) > (10 if role is StaffRole.AUDITOR else 15), list(pages)
    problems = []
    for url, widths in pages.items():
        path = url.removeprefix(live_server)
        for width, found in widths.items():
            if found["status"] >= 500:
                problems.append(f"{path} @{width}: status {found['status']}")
            if found["width"] > width:
                problems.append(f"{path} @{width}: the page is {found['width']} px wide")
            problems += [f"{path} @{width}: overflows {o}" for o in found["overflowing"]]
            problems += [f"{path} @{width}: time without its zone {u!r}"
                         for u in found["unlabelled"]]
            problems += [f"{path} @{width}: time split over two lines {w!r}"
                         for w in found["wrapped"]]
    assert problems == [], "\n".join(problems)
