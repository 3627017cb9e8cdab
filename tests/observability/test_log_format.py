"""Log lines: one event per line, key=value or JSON, fields from ``extra``, secrets masked,
and other libraries' chatter kept at WARNING whatever level our loggers run at."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator

import pytest

from accessd.logs import configure_logging, scrub


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("accessd", "web", "sqlalchemy")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def lines(fmt: str, level: str = "DEBUG") -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    return stream, configure_logging(fmt, level, stream=stream)


def test_key_value_lines_quote_what_needs_it_and_keep_one_event_per_line(
        restore_logging: None) -> None:
    stream, _ = lines("kv")
    logging.getLogger("accessd.door.daemon").warning(
        "alarm %s: %s", "tamper", "reader opened\nsecond line", extra={"door": "main",
                                                                    "count": 3, "ok": True})
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("ts=") and "Z level=warning logger=accessd.door.daemon " in line
    assert 'msg="alarm tamper: reader opened\\nsecond line"' in line
    assert line.endswith("door=main count=3 ok=true")


def test_json_lines_carry_the_same_fields_and_a_traceback_in_one_line(
        restore_logging: None) -> None:
    stream, _ = lines("json")
    try:
        raise ValueError("bad frame")
    except ValueError:
        logging.getLogger("accessd.door").exception("board", extra={"door": "main"})
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert (event["level"], event["logger"], event["msg"], event["door"]) == (
        "error", "accessd.door", "board", "main")
    assert "ValueError: bad frame" in event["exc"]


def test_other_libraries_stay_at_warning_when_ours_log_at_debug(restore_logging: None) -> None:
    stream, _ = lines("kv", "DEBUG")
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT name, email FROM persons")
    logging.getLogger("accessd.cli").debug("command finished")
    text = stream.getvalue()
    assert "SELECT" not in text and "command finished" in text


@pytest.mark.parametrize(("text", "kept"), [
    ("person 1b4e28ba-2fa1-11d2-883f-0016d3cca427 granted", True),
    ("backup written to /var/lib/accessd/backups/accessd-20261128T043000Z.bak", True),
    ("metrics served at http://127.0.0.1:9108/metrics", True),
    ("purging customer 3fa9c2d1e4b5… (contract ended 2026-11-01)", True),
])
def test_what_a_line_may_name_is_kept(text: str, kept: bool) -> None:
    assert (scrub(text) == text) is kept


def test_addresses_and_key_or_template_bytes_are_masked() -> None:
    key = bytes(range(7, 39))  # fixed: any 32 bytes of a key or a template
    text = (f"a alice@acme.example b {key.hex()} c {base64.b64encode(key).decode()} "
            f"d {key[:16]!r}")
    masked = scrub(text)
    assert "alice@acme.example" not in masked and key.hex() not in masked
    assert base64.b64encode(key).decode() not in masked
    assert masked.startswith("a [e-mail] b [hex] c [b64] d [bytes]")


def test_an_unknown_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="use one of kv, json"):
        configure_logging("xml")
