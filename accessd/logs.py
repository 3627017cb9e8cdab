"""Structured logs: one event per line on stderr, ``key=value`` by default, JSON on request.

systemd's journal takes each line as one entry (the priority from the ``<N>`` prefix it
understands when ``journal=True``); elsewhere the lines are plain logfmt or JSON for whatever
ships them. ``configure_logging`` is called once by ``accessd run``, ``accessd web`` and every
other ``accessd`` command (``[log]`` in the config, ``--log-format`` / ``--log-level``).

What a line may hold: event kinds, reason codes, counts, door names, public ids (person and
customer ``public_id``), digests' first characters. Never a name, an e-mail address, a PIN, a
template, a key or a TOTP secret. That is kept at the source (messages name public ids;
SQLAlchemy's engines hide bound parameters, ``accessd.db``); this module adds two nets:

- third-party loggers stay at WARNING whatever ``level`` says (SQLAlchemy's engine logger at
  DEBUG would print every row it reads and writes);
- ``scrub`` masks what looks like an e-mail address, or a long run of hex or base64 (key or
  template bytes), in the message and every field.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

FORMATS = ("kv", "json")
OUR_LOGGERS = ("accessd", "web", "firmware_bridge", "hardware_sim", "demo")
"""Loggers that get the chosen level; every other one (sqlalchemy, apscheduler, waitress,
urllib3...) stays at WARNING."""

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 32+ hex digits (16+ bytes), or 24+ base64 characters mixing upper and lower case and digits
# (not words, not paths): key material and template bytes as they would be printed.
_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])")
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}")
_BYTES = re.compile(r"b'(?:[^'\\]|\\.){8,}'|b\"(?:[^\"\\]|\\.){8,}\"")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}")

# LogRecord's own attributes: anything else on a record came through ``extra=`` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


def scrub(text: str) -> str:
    """``text`` with e-mail addresses, byte literals and long hex or base64 runs masked.
    Public ids (UUIDs) are kept: they are what a line names people by."""
    if not text:
        return text
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _UUID.sub(keep, text)
    text = _EMAIL.sub("[e-mail]", text)
    text = _BYTES.sub("[bytes]", text)
    text = _HEX.sub("[hex]", text)
    text = _B64.sub(_b64, text)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)


def _b64(match: re.Match[str]) -> str:
    run = match.group(0)
    mixed = (any(c.isupper() for c in run) and any(c.islower() for c in run)
             and any(c.isdigit() for c in run))
    return "[b64]" if mixed else run


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The event as ordered fields: ts, level, logger, msg, then its ``extra`` fields, then
    the exception (its traceback's lines, scrubbed)."""
    out: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": scrub(record.getMessage()),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value if isinstance(value, int | float | bool) or value is None \
                else scrub(str(value))
    if record.exc_info:
        out["exc"] = scrub(logging.Formatter().formatException(record.exc_info))
    return out


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=info logger=accessd.door.daemon msg="door main ready" door=main``."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_kv_value(value)}" for key, value in fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, same fields as ``KeyValueFormatter``."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(fields(record), ensure_ascii=False, default=str)


def _kv_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if text and not any(c in text for c in ' ="\\\n\t') and text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False)  # quoted; newlines escaped: one line per event


def formatter(fmt: str) -> logging.Formatter:
    """The formatter named ``fmt`` (``kv`` or ``json``).

    :raises ValueError: another name.
    """
    if fmt == "kv":
        return KeyValueFormatter()
    if fmt == "json":
        return JsonFormatter()
    raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each event (a test's capture, or the real one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(fmt: str = "kv", level: str | int = "INFO", *,
                      stream: TextIO | None = None,
                      ours: Iterable[str] = OUR_LOGGERS) -> logging.Handler:
    """Send every log event to ``stream`` (default: stderr) in format ``fmt``; our loggers at
    ``level``, everyone else's at WARNING. A handler set by an earlier call, or a plain stderr
    or stdout handler (``logging.basicConfig``'s), is replaced; others (a test runner's
    capture) stay. Returns the handler.

    :raises ValueError: an unknown ``fmt``.
    """
    handler: logging.StreamHandler = (
        _Stderr() if stream is None else logging.StreamHandler(stream))
    handler.setFormatter(formatter(fmt))
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        plain = type(old) is logging.StreamHandler and getattr(old, "stream", None) in (
            sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
        if getattr(old, _MARK, False) or plain:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ours:
        logging.getLogger(name).setLevel(level)
    return handler


_MARK = "_accessd_log_handler"
