"""The typed, frozen settings object and the rules each value must meet.

Each field's metadata carries its documentation and its limits; the loader validates against
them and ``write_default_config`` writes them as comments, so the three never disagree.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from firmware_bridge import registry

SENSOR_DRIVERS = tuple(registry.SENSOR_DRIVERS)
"""Sensor driver names, as ``firmware_bridge.registry`` offers them (named there once)."""
DOOR_DRIVERS = tuple(registry.DOOR_DRIVERS)
"""Door driver names, as ``firmware_bridge.registry`` offers them."""
RETENTION_CATEGORIES = (
    "access_history",
    "unknown_finger_events",
    "staff_audit_log",
    "login_history",
    "data_subject_requests",
    "open_data_subject_requests",
)
"""Every data category with a retention period; each must have one (issue 4)."""
OPEN_REQUEST_REMINDER_DAYS = 30
"""Days before an open request's retention ends from which staff are reminded of it."""
RETENTION_ADDED_LATER = ("open_data_subject_requests",)
"""Categories a ``[retention]`` table written before they existed may leave out (they then
take their default): refusing such a file would keep an upgraded door daemon from starting."""


def meta(
    doc: str,
    *,
    min: float | None = None,
    max: float | None = None,
    why: str | None = None,
    why_max: str | None = None,
    choices: tuple[str, ...] | None = None,
    derived: bool = False,
) -> dict[str, Any]:
    """A field's documentation and limits (``why``/``why_max`` explain the limits), for
    ``field(metadata=...)``. ``derived`` fields are computed by the loader, never set."""
    return {
        "doc": doc,
        "min": min,
        "max": max,
        "why": why,
        "why_max": why_max,
        "choices": choices,
        "derived": derived,
    }


def spec(default: str | float, doc: str, **limits: Any) -> Any:
    """A dataclass field with an immutable scalar default and its ``meta``."""
    return field(default=default, metadata=meta(doc, **limits))


_DURATION = re.compile(r"\s*(\d+)\s*(day|week|month|year)s?\s*")


@dataclass(frozen=True, slots=True)
class RetentionPeriod:
    """How long a category of data is kept: a number of days/weeks/months/years, or until the
    customer's contract ends (``contract_end``, access history only)."""

    amount: int
    unit: Literal["day", "week", "month", "year", "contract_end"]

    @classmethod
    def parse(cls, text: str) -> RetentionPeriod:
        """``"6 months"``, ``"1 year"``, ``"90 days"``, ``"contract_end"``.

        :raises ValueError: with what a valid value looks like.
        """
        if text.strip() == "contract_end":
            return cls(0, "contract_end")
        match = _DURATION.fullmatch(text)
        if match is None or int(match.group(1)) < 1:
            raise ValueError(
                'must be a period such as "90 days", "6 months" or "1 year"'
                ' (or "contract_end" for access_history)'
            )
        return cls(int(match.group(1)), match.group(2))  # type: ignore[arg-type]

    @property
    def until_contract_end(self) -> bool:
        """Kept while the contract runs, purged with the customer."""
        return self.unit == "contract_end"

    def end(self, start: dt.date) -> dt.date | None:
        """The day data kept from ``start`` on is due for deletion (``None`` for
        ``contract_end``): ``start`` plus the period, calendar months clamped to the month's
        last day (31 August + 6 months = 28 February)."""
        if self.unit == "contract_end":
            return None
        if self.unit in ("day", "week"):
            return start + dt.timedelta(days=self.amount * (7 if self.unit == "week" else 1))
        months = self.amount * (12 if self.unit == "year" else 1)
        year, month0 = divmod(start.year * 12 + start.month - 1 + months, 12)
        day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
        return dt.date(year, month0 + 1, day)

    def cutoff(self, now: dt.datetime) -> dt.datetime | None:
        """The moment before which data of this category is due for deletion at ``now``
        (``None`` for ``contract_end``: the purge at contract end handles it)."""
        if self.unit == "contract_end":
            return None
        if self.unit == "day":
            return now - dt.timedelta(days=self.amount)
        if self.unit == "week":
            return now - dt.timedelta(weeks=self.amount)
        months = self.amount * (12 if self.unit == "year" else 1)
        year, month0 = divmod(now.year * 12 + now.month - 1 - months, 12)
        day = min(now.day, calendar.monthrange(year, month0 + 1)[1])
        return now.replace(year=year, month=month0 + 1, day=day)

    def __str__(self) -> str:
        if self.unit == "contract_end":
            return "contract_end"
        return f"{self.amount} {self.unit}{'' if self.amount == 1 else 's'}"


@dataclass(frozen=True, slots=True, repr=False)
class DatabaseSettings:
    """Where the database is; shown with its password masked."""

    url: str = spec(
        "",
        "SQLAlchemy URL. Empty: SQLite file accessd.sqlite3 in data_dir. Many doors share "
        "PostgreSQL: postgresql+psycopg://user:password@host/accessd",
    )

    def __repr__(self) -> str:
        return f"DatabaseSettings(url={mask_url(self.url)!r})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class KeySettings:
    """Where the keyring (master keys, sensor password, signing key) is read from."""

    master_key_file: Path | None = field(
        default=None,
        metadata=meta(
            "Keyring file (mode 0600). Unset: the systemd credential named credential_name when "
            "$CREDENTIALS_DIRECTORY is set, else keyring.json in data_dir"
        ),
    )
    credential_name: str = spec("accessd-keyring", "systemd credential (LoadCredential=) name")
    from_credential: bool = spec(False, "the keyring is a (read-only) credential", derived=True)


@dataclass(frozen=True, slots=True)
class SensorSettings:
    """The fingerprint sensor on its serial port."""

    driver: str = spec("zfm", "sensor driver", choices=SENSOR_DRIVERS)
    port: str = spec("/dev/serial0", "serial port (a pty path for accessd-sim)")
    baud: int = spec(57600, "baud rate (a multiple of 9600)", min=9600, max=115200)
    password_file: Path | None = field(
        default=None,
        metadata=meta("file holding the sensor password; unset: the password kept in the keyring"),
    )
    timeout_seconds: float = spec(2.0, "how long the sensor may take to answer", min=0.1, max=30)
    poll_interval_seconds: float = spec(
        0.02, "pause between two looks for a finger (adds at most this to the door's latency)",
        min=0.001, max=1)


@dataclass(frozen=True, slots=True)
class DoorSettings:
    """The door board (or USB relay) and which Door row this daemon drives."""

    driver: str = spec("doorboard", "door driver", choices=DOOR_DRIVERS)
    port: str = spec("/dev/ttyUSB0", "serial port of the door board")
    baud: int = spec(115200, "baud rate (the LCUS relay uses 9600)", min=1200, max=1_000_000)
    name: str = spec("main", "name of this door in the database (several doors share one)")
    heartbeat_timeout: float = spec(
        3.0,
        "seconds without a heartbeat after which the board relocks on its own",
        min=0.1,
        max=60,
        why="the board's own limit",
        why_max="the board's own limit",
    )
    unauthenticated_wire: bool = spec(
        False,
        "accept a door driver that cannot authenticate its wire (the LCUS relay): whoever "
        "reaches its cable can open the door; `accessd doctor` warns while this is set")


@dataclass(frozen=True, slots=True)
class AccessSettings:
    """How the door decides and reacts."""

    release_seconds: float = spec(
        5.0, "unlock time", min=3, max=60, why="the lock needs time to release"
    )
    held_open_alarm_seconds: float = spec(
        15.0, "door open longer than this raises an alarm", min=1, max=3600
    )
    max_failures: int = spec(
        5, "failures within failure_window_seconds before backoff", min=1, max=100
    )
    failure_window_seconds: float = spec(60.0, "window counting failures", min=1, max=86400)
    backoff_seconds: float = spec(30.0, "reader paused after max_failures", min=0, max=3600)
    keypad_timeout_seconds: float = spec(10.0, "a half-typed keypad entry expires", min=1, max=120)
    max_fingers_per_person: int = spec(
        2, "fingers one person may enrol (2: a cut finger has a fallback)", min=1, max=10
    )
    pin_max_failures: int = spec(
        5, "wrong PINs in a row before that person's PIN locks", min=1, max=20
    )
    pin_lockout_seconds: float = spec(300.0, "how long a locked PIN stays locked", min=1, max=86400)
    timezone: str = spec(
        "Europe/Amsterdam", "the site's time zone: a contract's last day ends at its midnight"
    )


@dataclass(frozen=True, slots=True)
class EnrollmentSettings:
    """How a finger is enrolled."""

    captures: int = spec(
        2, "captures combined into one template", min=2, max=3, why="the sensor merges at least two"
    )
    capture_timeout_seconds: float = spec(20.0, "wait for a finger at each step", min=1, max=120)
    consent_text_version: str = spec("1", "version of the consent text people are shown")


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long each category is kept. When [retention] is written, it must name every one
    (one added by a later version takes its default until it is written)."""

    access_history: RetentionPeriod = field(
        default=RetentionPeriod(0, "contract_end"), metadata=meta("a customer's access history")
    )
    unknown_finger_events: RetentionPeriod = field(
        default=RetentionPeriod(6, "month"),
        metadata=meta("the facility's door log: unknown fingers, tamper, faults, and remote "
                      "unlocks (with the reason typed and the staff member's user name)"),
    )
    staff_audit_log: RetentionPeriod = field(
        default=RetentionPeriod(1, "year"), metadata=meta("staff audit log")
    )
    login_history: RetentionPeriod = field(
        default=RetentionPeriod(1, "year"), metadata=meta("panel login history")
    )
    data_subject_requests: RetentionPeriod = field(
        default=RetentionPeriod(1, "year"),
        metadata=meta("data-subject request records, counted from closing"),
    )
    open_data_subject_requests: RetentionPeriod = field(
        default=RetentionPeriod(6, "month"),
        metadata=meta(
            "requests never closed, counted from receipt: deleted then, with reminders to "
            f"staff in the last {OPEN_REQUEST_REMINDER_DAYS} days (answer within 1 month, at "
            "most 3 with an extension)"),
    )


@dataclass(frozen=True, slots=True)
class PurgeSettings:
    """Destruction at contract end."""

    grace_days: int = spec(
        0,
        "default days after contract end before the purge",
        min=0,
        max=90,
        why_max="the statements promise destruction within 90 days",
    )
    check_interval_minutes: int = spec(
        60,
        "how often due purges and retention are checked",
        min=1,
        max=60,
        why_max="due work is checked at least hourly",
    )


@dataclass(frozen=True, slots=True)
class BackupSettings:
    """Encrypted backups."""

    dir: Path = field(default=Path("backups"), metadata=meta("backup directory"))
    max_age_months: int = spec(
        12, "older backups are deleted", min=1, max=12, why_max="backups are kept at most 12 months"
    )


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The staff panel."""

    bind: str = spec("127.0.0.1:8080", "host:port the panel listens on")
    secret_key_file: Path = field(
        default=Path("web-secret.key"), metadata=meta("file holding the session signing key")
    )
    trusted_hosts: str = spec(
        "localhost, 127.0.0.1",
        "host names the panel answers to, comma-separated (the Host header, or the proxy's "
        "X-Forwarded-Host with proxy hops; ports are ignored; a leading dot also admits "
        "subdomains); any other host gets 400. Behind a TLS proxy, name the panel's public "
        "host, e.g. \"panel.example.net\". IPv6 literals cannot be matched: use a name",
    )

    def host_names(self) -> list[str]:
        """``trusted_hosts`` as a list, for Flask's ``TRUSTED_HOSTS``."""
        return [name.strip().lower() for name in self.trusted_hosts.split(",") if name.strip()]


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus metrics of the door daemon and the panel, each on its own port. Keep them on
    localhost (or a management network): they say when doors open and fail, not who."""

    enabled: bool = spec(True, "serve /metrics (false: no listener at all)")
    daemon_bind: str = spec("127.0.0.1:9108", "host:port of the door daemon's /metrics")
    panel_bind: str = spec("127.0.0.1:9109", "host:port of the panel's /metrics")


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Logs: one event per line on stderr (journald takes it from there)."""

    format: str = spec("kv", "kv: key=value pairs; json: one JSON object per line",
                       choices=("kv", "json"))
    level: str = spec("INFO", "DEBUG, INFO, WARNING or ERROR",
                      choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """Who is responsible (GDPR art. 30(1)(a)), for the register of processing activities.
    Unset values are reported as missing in the register, never guessed."""

    name: str | None = field(
        default=None, metadata=meta("the controller: the provider's legal name"))
    address: str | None = field(
        default=None, metadata=meta("the controller's postal address"))
    email: str | None = field(
        default=None, metadata=meta("where data subjects and the authority reach the controller"))
    dpo_name: str | None = field(
        default=None, metadata=meta("the data protection officer (or who acts for privacy)"))
    dpo_contact: str | None = field(
        default=None, metadata=meta("the data protection officer's e-mail address or phone"))
    recipients: str | None = field(
        default=None,
        metadata=meta("recipients outside accessd, if any, e.g. \"the police, on a legal "
                      "order\"; unset: only those the register derives from the installation"))
    transfers: str | None = field(
        default=None,
        metadata=meta("transfers outside the EEA and their safeguards; unset: none (accessd "
                      "itself sends nothing outside the installation)"))


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """A door of a site sharing one PostgreSQL (``[database] url``): it decides from a local
    snapshot and spools its events, online or offline. Unset ``snapshot``: a single door."""

    snapshot: Path | None = field(
        default=None,
        metadata=meta("local SQLite snapshot of what this door decides with; set it to run the "
                      "door as part of a site (e.g. \"snapshot.sqlite3\")"))
    spool: Path = field(default=Path("spool.sqlite3"),
                        metadata=meta("local SQLite spool of this door's events until delivered"))
    max_staleness_hours: float = spec(
        24, "past this many hours without reaching the site's database, the door refuses "
        "everyone (reason snapshot_stale) and raises an alarm", min=0.01, max=720,
        why_max="a month-old snapshot would keep purged and restricted people's access")
    poll_seconds: float = spec(
        30, "how often the door checks the site's version when no notification woke it",
        min=1, max=3600)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, validated; paths are absolute."""

    data_dir: Path = field(
        default=Path("."), metadata=meta("data directory; relative paths below are inside it")
    )
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    sensor: SensorSettings = field(default_factory=SensorSettings)
    door: DoorSettings = field(default_factory=DoorSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    enrollment: EnrollmentSettings = field(default_factory=EnrollmentSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    purge: PurgeSettings = field(default_factory=PurgeSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    web: WebSettings = field(default_factory=WebSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    log: LogSettings = field(default_factory=LogSettings)
    controller: ControllerSettings = field(default_factory=ControllerSettings)
    site: SiteSettings = field(default_factory=SiteSettings)


SECTIONS: dict[str, type] = {
    "database": DatabaseSettings,
    "keys": KeySettings,
    "sensor": SensorSettings,
    "door": DoorSettings,
    "access": AccessSettings,
    "enrollment": EnrollmentSettings,
    "retention": RetentionSettings,
    "purge": PurgeSettings,
    "backup": BackupSettings,
    "web": WebSettings,
    "metrics": MetricsSettings,
    "log": LogSettings,
    "controller": ControllerSettings,
    "site": SiteSettings,
}
"""The TOML tables, in the order the default file lists them."""

MASK = "********"


def number(value: float) -> str:
    """A limit as people write it: 3, 0.1, 1000000 (not 3.0 or 1e+06)."""
    return str(int(value)) if float(value).is_integer() else str(value)


# Greedy password, last "@": a password may itself contain "@".
_URL_PASSWORD = re.compile(
    r"^(?P<head>[a-z0-9+]+://[^:/@]*:)(?P<password>.*)(?P<tail>@[^@]*)$", re.IGNORECASE | re.DOTALL
)


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``********``."""
    match = _URL_PASSWORD.match(url)
    if match is None:
        return url
    return f"{match.group('head')}{MASK}{match.group('tail')}"
