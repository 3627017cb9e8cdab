"""What people type as ids, cursors, days and moments, parsed in one place with bounds.

Every list filter of the panel, every parameter of the JSON API and the CLI's references parse
here, so "what is an id" and "which days exist" have one answer, and no value that passes can
make a query or a date computation fail further down:

- **ids and cursors**: ASCII digits only (``str.isdigit`` accepts ``"²"``, which ``int``
  refuses; ``int`` accepts ``"٣"``, ``" 5"`` and ``"1_000"``), from 1 to ``ID_MAX`` (2**63 - 1,
  the largest integer SQLite and PostgreSQL's BIGINT hold: a larger one overflows the driver);
- **days**: ``YYYY-MM-DD`` from ``FIRST_DAY`` to ``LAST_DAY``. Python's dates end at 0001-01-01
  and 9999-12-31; a filter adds a day to its last day, a chart goes back a year, and a local
  midnight moves up to a day when converted to UTC, so days near either end overflow. The
  range is far wider than any contract or history, and far from both ends;
- **moments**: a day (its local midnight at the site) or an ISO 8601 time with an offset, on
  a day in the same range;
- **names and short texts** (a customer, a person, a requester, a witness, a reason): runs of
  white space made one space, not empty, at most so many characters, and no invisible control
  character: no bidi control (U+202A-202E, U+2066-2069, U+200E/U+200F, U+061C), which would
  make "Acme<U+202E>moc.elif" show as something else in every list, audit line and CSV, and no
  other control or format character (zero-width space, byte-order mark, soft hyphen), except
  the zero-width joiner and non-joiner some scripts need.

Each parser raises ``InvalidInputError`` naming the field and saying what would be accepted,
which the panel shows beside the field and the API returns as a 400.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from zoneinfo import ZoneInfo

from accessd.clock import day_start
from accessd.errors import InvalidInputError

ID_MAX = 2**63 - 1
"""The largest row id or cursor: SQLite's INTEGER and PostgreSQL's BIGINT are 64-bit signed."""
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2999, 12, 31)
DAY_RANGE = f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"

_DIGITS = re.compile(r"[0-9]{1,19}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHOWN = 40  # characters of a refused value repeated in a message


def shown(text: str) -> str:
    """``text`` as a refusal quotes it: its first characters, repr'd (no control characters)."""
    return repr(text[:_SHOWN] + ("…" if len(text) > _SHOWN else ""))


def parse_id(field: str, text: str, *, low: int = 1, high: int = ID_MAX) -> int:
    """A whole number typed as ASCII digits, from ``low`` to ``high`` (default: a row id).

    :raises InvalidInputError: anything else, naming ``field``.
    """
    if _DIGITS.fullmatch(text) is None or not low <= int(text) <= high:
        raise InvalidInputError(field, f"{shown(text)} is not a whole number from {low} to "
                                f"{high}")
    return int(text)


def optional_id(text: str | None) -> int | None:
    """``text`` as a row id, or ``None`` when it is not one (for lookups that then try a name
    or a choice list that then says "not a valid choice")."""
    if text is None or _DIGITS.fullmatch(text) is None or not 1 <= int(text) <= ID_MAX:
        return None
    return int(text)


def check_day(field: str, day: dt.date) -> dt.date:
    """``day`` if it lies in the range this system handles.

    :raises InvalidInputError: outside ``FIRST_DAY``..``LAST_DAY``.
    """
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInputError(field, f"{day.isoformat()} is outside the dates this system "
                                f"handles ({DAY_RANGE})")
    return day


def parse_day(field: str, text: str) -> dt.date:
    """A day typed as ``YYYY-MM-DD`` (surrounding spaces allowed), within the range.

    :raises InvalidInputError: not such a date, or outside ``FIRST_DAY``..``LAST_DAY``.
    """
    cleaned = text.strip()
    try:
        if _DAY.fullmatch(cleaned) is None:  # fromisoformat also takes "20250101" and "٢٠٢٥…"
            raise ValueError(cleaned)
        day = dt.date.fromisoformat(cleaned)
    except ValueError:
        raise InvalidInputError(field, f"{shown(text)} is not a date; use YYYY-MM-DD") from None
    return check_day(field, day)


def parse_moment(field: str, text: str, zone: ZoneInfo) -> dt.datetime:
    """A day (its first moment at the site, in ``zone``) or an ISO 8601 time with an offset
    (``2026-03-01T08:00:00Z``, ``...+01:00``), on a day within the range; aware, in UTC.

    :raises InvalidInputError: neither, no offset, or outside the range.
    """
    cleaned = text.strip()
    if _DAY.fullmatch(cleaned):
        return day_start(parse_day(field, cleaned), zone)
    try:
        if not cleaned.isascii() or _DAY.match(cleaned) is None:
            raise ValueError(cleaned)
        moment = dt.datetime.fromisoformat(cleaned.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInputError(field, f"{shown(text)} is not a date (2026-03-01) or a time "
                                "with an offset (2026-03-01T08:00:00Z)") from None
    if moment.utcoffset() is None:
        raise InvalidInputError(field, f"give the time with its offset, e.g. "
                                f"{cleaned[:19]}Z or {cleaned[:19]}+01:00")
    check_day(field, moment.date())
    return moment.astimezone(dt.UTC)


# Format characters (category Cf) that real names need: the zero-width non-joiner and joiner
# (Persian, Indic scripts, emoji sequences). Every other Cf is invisible or reorders text.
_NAME_FORMAT_ALLOWED = frozenset({"\u200c", "\u200d"})
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in _REFUSED_CATEGORIES and char not in _NAME_FORMAT_ALLOWED


def _described(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".rstrip() if name else f"U+{ord(char):04X}"


def parse_text(field: str, text: str, *, limit: int, what: str | None = None) -> str:
    """A name or short text as it is kept: runs of white space (tabs, new lines) made one
    space, at most ``limit`` characters, no invisible control or bidi character.

    ``what`` names the value in messages ("the name"; default: ``field`` in words).

    :raises InvalidInputError: empty, too long, or holding a control character; the message
        says which character and where, so it can be typed again without it.
    """
    subject = what or f"the {field.replace('_', ' ')}"
    kept = " ".join(text.split())
    if not kept:
        raise InvalidInputError(field, f"{subject} must not be empty")
    for position, char in enumerate(kept, start=1):
        if _invisible(char):
            raise InvalidInputError(
                field, f"{subject} holds an invisible control character ({_described(char)}) "
                f"at position {position}, which can make text show as something else; type "
                "it again without it")
    if len(kept) > limit:
        raise InvalidInputError(
            field, f"{subject} has {len(kept)} characters; at most {limit} fit, so shorten it")
    return kept
