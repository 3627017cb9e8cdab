"""The access history: filters, keyset pages, a CSV export and a chart of accesses per day.

Reading is ``accessd.history.query``'s: pages start after a cursor event (no OFFSET, so the
last page costs what the first does), the export streams, the chart counts per local day.
Pages go "older" with the cursor ``before``; "newer" returns along ``trail``, the cursors of
the pages already seen, so no page is computed backwards. The chart is drawn here as SVG, on
the server, with no script. Reading the history and exporting it are audited.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, flash, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import SelectChoice, SelectField, StringField

from accessd.errors import HistoryError, InvalidInputError
from accessd.history.query import (
    CHART_MAX_DAYS,
    REFUSED,
    DayCount,
    EventFilter,
    daily_counts,
    export_csv,
    filter_choices,
    kind_label,
    local_period,
    page_events,
    parse_kinds,
    reason_label,
)
from accessd.inputs import optional_id, parse_day, parse_id
from accessd.models import EventKind
from web.navigation import NavLink
from web.pages.customers import place_error, read_only_session
from web.panel import current_panel
from web.request_audit import audit
from web.security import login_required
from web.times import site_time

bp = Blueprint("history", __name__, url_prefix="/history")
nav = [NavLink("History", "history.index", order=30)]

PAGE_SIZE = 50
CHART_DAYS = 30  # the chart's period when the filter gives none
TRAIL_MAX = 200  # cursors kept for "newer"; deeper than that, "newest" starts over
RESULT_CHOICES = [SelectChoice("", _l("Any")),
                  SelectChoice(EventKind.GRANTED.value, _l("Granted")),
                  SelectChoice(REFUSED, _l("All refusals (refused or unknown finger)"))] + [
    SelectChoice(k.value, _l(kind_label(k))) for k in EventKind if k is not EventKind.GRANTED]


class FilterForm(FlaskForm):
    """Which events to show; a GET form, so a filtered page is a link one can share."""

    class Meta:
        csrf = False  # reading only

    customer = SelectField(_l("Customer"), choices=[SelectChoice("", _l("Any"))], default="")
    person = SelectField(_l("Person (of the chosen customer)"),
                         choices=[SelectChoice("", _l("Any"))], default="")
    door = SelectField(_l("Door"), choices=[SelectChoice("", _l("Any"))], default="")
    result = SelectField(_l("Result"), choices=RESULT_CHOICES, default="")
    since = StringField(_l("From (site day, included)"), render_kw={"type": "date"})
    until = StringField(_l("Up to (site day, not included)"), render_kw={"type": "date"})


@dataclass(frozen=True)
class Chart:
    """The bars of the chart, laid out for the SVG template."""

    width: int
    height: int
    top: int
    bottom: int
    left: int
    peak: int
    bars: list[dict[str, Any]]
    ticks: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    days: list[DayCount]


def _filter_form(session: Session) -> FilterForm:
    form = FilterForm(request.args)
    anything = SelectChoice("", _l("Any"))
    # Only the chosen customer's people: listing every person of a large site on every page
    # view cost more than the query itself. A person asked for by id stays selectable.
    chosen = request.args.get("customer", "")
    person_id = request.args.get("person", "")
    # Not an id (junk, "²", 30 digits): no choices for it, and the form says "not a valid
    # choice" beside the field.
    choices = filter_choices(session, customer_id=optional_id(chosen),
                             person_id=optional_id(person_id))
    form.customer.choices = [anything, *(SelectChoice(str(c.id), c.name)
                                         for c in choices.customers)]
    form.person.choices = [anything, *(SelectChoice(str(pid), name)
                                       for pid, name in choices.people)]
    form.door.choices = [anything, *(SelectChoice(str(did), name)
                                     for did, name in choices.doors)]
    return form


def _optional_int(text: str | None) -> int | None:
    return optional_id(text)  # a choice the form validated: an id from the list, or empty


def _event_filter(form: FilterForm) -> tuple[EventFilter | None, dt.date | None, dt.date | None]:
    """The filter the form asks for, or None with the errors placed beside the fields."""
    if not form.validate():
        return None, None, None
    try:
        since = parse_day("since", form.since.data) if form.since.data else None
        until = parse_day("until", form.until.data) if form.until.data else None
        start, end = local_period(since, until, current_panel().site.zone)
        where = EventFilter(
            customer_id=_optional_int(form.customer.data),
            person_id=_optional_int(form.person.data),
            door_id=_optional_int(form.door.data),
            kinds=parse_kinds([form.result.data] if form.result.data else []),
            since=start, until=end)
    except InvalidInputError as exc:
        place_error(form, exc, "since")
        return None, None, None
    return where, since, until


def _chart_period(since: dt.date | None, until: dt.date | None) -> tuple[dt.date, dt.date]:
    today = current_panel().site.today()
    end = until or max(today + dt.timedelta(days=1), (since or today) + dt.timedelta(days=1))
    start = since or end - dt.timedelta(days=CHART_DAYS)
    return max(start, end - dt.timedelta(days=CHART_MAX_DAYS)), end


def chart(days: list[DayCount], width: int = 720, height: int = 220) -> Chart:
    """Lay out grouped bars (granted, refused) per day, with a y axis of whole numbers."""
    left, top, bottom = 44, 12, 34
    plot_w, plot_h = width - left - 8, height - top - bottom
    peak = max([1, *(max(d.granted, d.refused) for d in days)])
    step = max(1, math.ceil(peak / 4))
    peak = step * math.ceil(peak / step)
    group = plot_w / max(1, len(days))
    bar = max(1.0, group * 0.38)
    bars: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    every = max(1, math.ceil(len(days) / 10))
    for n, day in enumerate(days):
        x0 = left + n * group + (group - 2 * bar) / 2
        for offset, (kind, value) in enumerate((("granted", day.granted),
                                                ("refused", day.refused))):
            h = plot_h * value / peak
            bars.append({"x": round(x0 + offset * bar, 2), "y": round(top + plot_h - h, 2),
                         "w": round(bar, 2), "h": round(h, 2), "kind": kind,
                         "title": f"{day.day}: {value} {kind}"})
        if n % every == 0:
            labels.append({"x": round(left + n * group + group / 2, 2), "y": height - bottom + 16,
                           "text": day.day.strftime("%m-%d")})
    ticks = [{"y": round(top + plot_h - plot_h * v / peak, 2), "value": v}
             for v in range(0, peak + 1, step)]
    return Chart(width, height, top, bottom, left, peak, bars, ticks, labels, days)


def _cursors() -> tuple[int | None, list[int]]:
    """``before`` and ``trail`` of the query; a value that is not an event id is said in a
    message and the page starts again from the newest events."""
    before_text, trail_text = request.args.get("before"), request.args.get("trail")
    try:
        before = None if not before_text else parse_id("before", before_text)
        # 0 in the trail stands for "the newest page".
        trail = [parse_id("trail", part, low=0) for part in (trail_text or "").split(".") if part]
    except InvalidInputError as exc:
        flash(_("%(problem)s; showing the newest events.", problem=str(exc)), "info")
        return None, []
    return before, trail[-TRAIL_MAX:]


def _query(args: dict[str, Any], **changes: Any) -> dict[str, Any]:
    merged = {k: v for k, v in {**args, **changes}.items() if v not in (None, "")}
    return merged


@bp.get("/")
@login_required
def index() -> str:
    """One page of events (newest first), the filters, and the chart for the period."""
    with read_only_session() as session:
        form = _filter_form(session)
    where, since, until = _event_filter(form)
    page = None
    plot = None
    filters = {k: v for k, v in request.args.items() if k in form._fields and v}
    before, trail = _cursors()
    if where is not None:
        with read_only_session() as session:
            try:
                page = page_events(session, where, before=before, limit=PAGE_SIZE)
            except HistoryError as exc:
                flash(f"{exc}.", "info")
                before, trail = None, []
                page = page_events(session, where, limit=PAGE_SIZE)
            start, end = _chart_period(since, until)
            plot = chart(daily_counts(session, start, end, zone=current_panel().site.zone,
                                      where=where))
        audit().note("history.view", filters=filters, before=before)
    older = newer = None
    if page is not None and page.next_before is not None:
        older = _query(filters, before=page.next_before,
                       trail=".".join(str(c) for c in [*trail, before or 0]))
    if before is not None:
        back = trail[-1] if trail else 0
        newer = _query(filters, before=back or None,
                       trail=".".join(str(c) for c in trail[:-1]))
    return render_template("history/index.html", form=form, page=page, chart=plot,
                           older=older, newer=newer, filters=filters, local_time=site_time,
                           zone=current_panel().site.zone.key, kind_label=kind_label,
                           reason_label=reason_label)


def _csv_lines(where: EventFilter) -> Iterator[str]:
    # Its own read-only session, closed when the last line is sent (or the client leaves).
    with read_only_session() as session:
        yield from export_csv(session, where)


@bp.get("/export.csv")
@login_required
def export() -> Response | str:
    """Every event the filters select, as CSV, streamed row by row."""
    with read_only_session() as session:
        form = _filter_form(session)
    where, _since, _until = _event_filter(form)
    if where is None:
        return index()
    filters = {k: v for k, v in request.args.items() if k in form._fields and v}
    audit().note("history.export", filters=filters)
    stamp = current_panel().now().strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(_csv_lines(where)), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="accessd-history-{stamp}.csv"'})
