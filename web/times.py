"""Every time the panel shows, in the site's time with its zone said (``SiteClock.label``).

``time_text`` for words (JSON, flashed messages); ``site_time`` for templates: a ``<time>``
element whose ``datetime`` holds the UTC moment for machines and whose text is the labelled
site time for people, kept on one line (CSS ``time.site-time``). The crawl in
``tests/web/test_crawl.py`` checks that every time on every page carries its zone.
"""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup, escape

from web.panel import current_panel


def time_text(moment: dt.datetime | None, *, seconds: bool = True) -> str:
    """``moment`` as the site's local time with its zone ("" for none)."""
    if moment is None:
        return ""
    return current_panel().site.label(moment, seconds=seconds)


def site_time(moment: dt.datetime | None, *, seconds: bool = True, empty: str = "") -> Markup:
    """``moment`` as a ``<time>`` element in the site's time with its zone (``empty`` for
    none)."""
    if moment is None:
        return escape(empty)
    iso = moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return Markup('<time class="site-time" datetime="{}">{}</time>').format(
        iso, time_text(moment, seconds=seconds))
