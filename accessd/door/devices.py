"""Each device of a door said plainly: its daemon, its sensor, its door board and the database
as the daemon sees it, each with when it last answered, what is wrong and what to do.

The one reading of a door's status: ``accessd status``, the dashboard and the API all show
``devices(state)``, so they cannot disagree (issue 12: with the board unplugged the dashboard
once called the daemon and the sensor offline while ``accessd status`` called them running).
The daemon reports each device's trouble as a ``DeviceProblem`` (``problem_of`` sorts the
driver's exception); the sentences people read are written here once. The device's own words
(a port, an errno) stay in the daemon's log and the ``fault`` of the status, never in the
sentence: an operator at 3 a.m. needs what happened and what to do, not a traceback.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from accessd.door.status import DoorState, Report
from accessd.labels import N_
from firmware_bridge.errors import (
    BridgeTimeoutError,
    DeviceDisconnectedError,
    DoorWireError,
    ProtocolError,
    SensorBadPasswordError,
    SensorSwappedError,
)


class DeviceProblem(enum.StrEnum):
    """What is wrong with a device, as its daemon reports it (stored in the status)."""

    UNPLUGGED = "unplugged"  # its port is gone or fails: cable, USB adapter
    SILENT = "silent"  # the port is there, the device does not answer
    GARBLED = "garbled"  # it answers with bytes that are not its protocol
    REFUSED = "refused"  # the sensor belongs to another installation
    SWAPPED = "swapped"  # not the sensor this door provisioned: refused until staff approve it
    UNAUTHENTIC = "unauthentic"  # the door board's wire did not authenticate (forged, replayed)
    FAILED = "failed"  # anything else the device reported
    DB_FAILING = "db_failing"  # the database refuses writes; events go to the reserve journal
    DB_NO_RESERVE = "db_no_reserve"  # ... and there is no reserve journal: the door refuses
    DB_CATCHING_UP = "db_catching_up"  # works again; kept events are being moved in


def problem_of(exc: BaseException) -> DeviceProblem:
    """The kind of a device fault, from the driver's exception and its causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, SensorSwappedError):
            return DeviceProblem.SWAPPED
        if isinstance(seen, SensorBadPasswordError):
            return DeviceProblem.REFUSED
        if isinstance(seen, DoorWireError):
            return DeviceProblem.UNAUTHENTIC
        if isinstance(seen, DeviceDisconnectedError):
            return DeviceProblem.UNPLUGGED
        if isinstance(seen, BridgeTimeoutError | TimeoutError):  # before OSError, its base
            return DeviceProblem.SILENT
        if isinstance(seen, ProtocolError):
            return DeviceProblem.GARBLED
        if isinstance(seen, OSError):
            return DeviceProblem.UNPLUGGED
        seen = seen.__cause__
    return DeviceProblem.FAILED


FAULT_PHRASES = {
    DeviceProblem.UNPLUGGED: "not connected (cable or port missing)",
    DeviceProblem.SILENT: "connected but not answering",
    DeviceProblem.GARBLED: "sending garbled data",
    DeviceProblem.REFUSED: "refusing this installation's password",
    DeviceProblem.SWAPPED: "not the sensor this door provisioned (refused until approved)",
    DeviceProblem.UNAUTHENTIC: "its wire did not authenticate (forged, replayed or another key)",
    DeviceProblem.FAILED: "reported an error (the door's log has the details)",
}
"""A device fault as the access history says it ("door board: not connected ..."): the
device's own words (a port, an errno) go to the daemon's log only."""


def fault_reason(device: str, problem: DeviceProblem) -> str:
    """The reason of a device's ``fault`` event."""
    return f"{device}: {FAULT_PHRASES.get(problem, FAULT_PHRASES[DeviceProblem.FAILED])}"


class Health(enum.StrEnum):
    """How a device is, in three words that fit a badge."""

    OK = "ok"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Device:
    """One device of a door as staff see it.

    ``state``: the word shown ("running", "online", "offline", "failing", "unknown");
    ``health``: its tone; ``last_contact``: when it last answered (None: never, or not known);
    ``problem`` and ``action``: one sentence each, None while it works.
    """

    key: str  # "daemon", "sensor", "board", "database"
    label: str
    state: str
    health: Health
    last_contact: dt.datetime | None
    problem: Words | None = None
    action: Words | None = None


class Words(str):
    """A sentence people read, in English, that also carries its catalogue text and values so
    that the panel can say it in the reader's language (``template`` is marked ``N_``; its
    ``%(silent)s`` is how long, ``%(events)s`` how many events)."""

    template: str
    silent: dt.timedelta | None
    events: int | None

    def __new__(cls, template: str, *, silent: dt.timedelta | None = None,
                events: int | None = None) -> Words:
        values = {"silent": _duration(silent) if silent is not None else "",
                  "events": _events(events) if events is not None else ""}
        said = super().__new__(cls, template % values if "%(" in template else template)
        said.template, said.silent, said.events = template, silent, events
        return said


LABELS = {"daemon": N_("Door daemon"), "sensor": N_("Fingerprint reader"),
          "board": N_("Door board"), "database": N_("Database")}
STATES = (N_("running"), N_("online"), N_("offline"), N_("failing"), N_("unknown"),
          N_("never started"), N_("not running"))
"""The words a device's state shows (for the catalogue: ``Device.state`` holds one)."""

_SENSOR = {
    DeviceProblem.UNPLUGGED: (N_("The fingerprint reader is not connected, so nobody can open "
                                 "the door with a finger."),
                              N_("Check the reader's cable to the door's computer; it "
                                 "reconnects by itself within a second.")),
    DeviceProblem.SILENT: (N_("The fingerprint reader is connected but does not answer."),
                           N_("Check the reader's power and cable; it reconnects by itself.")),
    DeviceProblem.GARBLED: (N_("The fingerprint reader sends garbled data."),
                            N_("Check the reader's cable (length, shielding); if it persists, "
                               "call your technician.")),
    DeviceProblem.REFUSED: (N_("The fingerprint reader belongs to another installation and "
                               "refuses this one."),
                            N_("Call your technician to reset the reader.")),
    DeviceProblem.SWAPPED: (N_("The fingerprint reader is not the one this door was set up "
                               "with, so no finger opens the door (the keypad still works)."),
                            N_("Check the reader at the door; if you replaced it, approve it "
                               "on the door's alarms page.")),
    DeviceProblem.FAILED: (N_("The fingerprint reader reported an error."),
                           N_("It is retried by itself; if it persists, call your "
                              "technician.")),
}
_BOARD = {
    DeviceProblem.UNPLUGGED: (N_("The door board is not connected: the lock cannot be opened "
                                 "from here. The door stays locked meanwhile."),
                              N_("Check the board's cable to the door's computer; it "
                                 "reconnects by itself within a second.")),
    DeviceProblem.SILENT: (N_("The door board is connected but does not answer. The door "
                              "stays locked meanwhile."),
                           N_("Check the board's power and cable; it reconnects by itself.")),
    DeviceProblem.GARBLED: (N_("The door board sends garbled data. The door stays locked "
                               "meanwhile."),
                            N_("Check the board's cable; if it persists, call your "
                               "technician.")),
    DeviceProblem.UNAUTHENTIC: (N_("The door board's wire did not authenticate: someone may "
                                   "be on the cable. The door stays locked meanwhile."),
                                N_("Inspect the cable and the board's case; a replaced board "
                                   "needs `accessd door provision`.")),
    DeviceProblem.FAILED: (N_("The door board reported an error. The door stays locked "
                              "meanwhile."),
                           N_("It is retried by itself; if it persists, call your "
                              "technician.")),
}


def devices(door: DoorState) -> list[Device]:
    """The daemon, the sensor, the door board and the database of ``door``, as they are at
    the moment ``door`` was judged."""
    report = door.report
    if report is None:
        daemon = Device("daemon", LABELS["daemon"], "never started", Health.DOWN, None,
                        Words(N_("The door's daemon has never reported.")),
                        Words(N_("Start the door's computer, or ask your technician to install "
                                 "the door service. The door stays locked meanwhile.")))
        return [daemon, *(Device(key, LABELS[key], "unknown", Health.UNKNOWN, None)
                          for key in ("sensor", "board", "database"))]
    if not door.reporting:
        daemon = Device("daemon", LABELS["daemon"], "not running", Health.DOWN, report.at,
                        Words(N_("The door's daemon has not reported for %(silent)s."),
                              silent=door.judged_at - report.at),
                        Words(N_("Check that the door's computer has power and network; "
                                 "restart it if it stays silent. The door stays locked "
                                 "meanwhile.")))
        return [daemon, *(Device(key, LABELS[key], "unknown", Health.UNKNOWN, seen)
                          for key, seen in (("sensor", _seen(report, "sensor")),
                                            ("board", _seen(report, "board")),
                                            ("database", _seen(report, "database"))))]
    return [Device("daemon", LABELS["daemon"], "running", Health.OK, report.at),
            _device(report.sensor_online, report.sensor_problem, _SENSOR, "sensor", report),
            _device(report.board_online, report.board_problem, _BOARD, "board", report),
            _database(report.database_problem, report.journal_pending,
                      _seen(report, "database"))]


def _device(online: bool, problem: str | None, words: dict[DeviceProblem, tuple[str, str]],
            key: str, report: Report) -> Device:
    seen = _seen(report, key)
    if online:
        return Device(key, LABELS[key], "online", Health.OK, seen)
    kind = _problem(problem)
    sentence, action = words.get(kind, words[DeviceProblem.FAILED])
    if problem is None:  # an older daemon said only "offline"
        sentence = (N_("The fingerprint reader does not answer.") if key == "sensor"
                    else N_("The door board does not answer."))
    return Device(key, LABELS[key], "offline", Health.DOWN, seen, Words(sentence),
                  Words(action))


def _database(problem: str | None, kept: int, seen: dt.datetime | None) -> Device:
    kind = _problem(problem) if problem is not None else None
    if kind is DeviceProblem.DB_FAILING:
        return Device("database", LABELS["database"], "failing", Health.DOWN, seen,
                      Words(N_("The door cannot write to its database; %(events)s kept in its "
                               "reserve journal meanwhile, and the door keeps deciding."),
                            events=kept),
                      Words(N_("Free disk space on the door's computer or check the database "
                               "server; the kept events move in by themselves.")))
    if kind is DeviceProblem.DB_NO_RESERVE:
        return Device("database", LABELS["database"], "failing", Health.DOWN, seen,
                      Words(N_("The door cannot write to its database and has no reserve "
                               "journal, so it refuses everyone.")),
                      Words(N_("Free disk space on the door's computer or check the database "
                               "server at once.")))
    if kind is DeviceProblem.DB_CATCHING_UP:
        return Device("database", LABELS["database"], "online", Health.OK, seen,
                      Words(N_("Moving %(events)s from the reserve journal into the history."),
                            events=kept))
    return Device("database", LABELS["database"], "online", Health.OK, seen)


def _seen(report: Report, key: str) -> dt.datetime | None:
    """When ``key`` last answered: its own time when the daemon reports one, else the report's
    time if the device was online then (an older daemon)."""
    own = {"sensor": report.sensor_seen_at, "board": report.board_seen_at,
           "database": report.database_seen_at}[key]
    if own is not None:
        return own
    online = {"sensor": report.sensor_online, "board": report.board_online,
              "database": report.database_problem in (None, DeviceProblem.DB_CATCHING_UP)}[key]
    return report.at if online else None


def _problem(value: str | None) -> DeviceProblem:
    if value is None:
        return DeviceProblem.FAILED
    try:
        return DeviceProblem(value)
    except ValueError:
        return DeviceProblem.FAILED


def _events(count: int) -> str:
    return f"{count} event" if count == 1 else f"{count} events"


def _duration(span: dt.timedelta) -> str:
    """A span as people say it: "45 seconds", "12 minutes", "3 hours", "2 days"."""
    seconds = max(0, int(span.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"
