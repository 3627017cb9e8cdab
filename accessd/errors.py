"""Every error ``accessd`` raises on purpose: one root, split by phase.

Callers (the CLI, the daemon, the panel) catch ``AccessdError`` to print one clear line and
exit non-zero, or a phase to show the message where it belongs (beside a form field, as a
404); anything else escaping is a bug. Every message says what happened and what a person can
do about it. Other libraries' exceptions are wrapped with ``raise ... from``.

::

    AccessdError
    ├── ConfigError                  start-up: the configuration
    ├── StorageError                 the database cannot be used as it is: LedgerError
    ├── DataFileError                a file accessd writes or reads: BackupError (->
    │                                BackupKeysError), ExportError, JournalError (->
    │                                JournalFullError)
    ├── CryptoError                  keys: KeyFileError, DecryptionError
    ├── InputError                   what a person gave: InvalidInputError, UsageError,
    │                                PinError, NotFoundError (-> HistoryError)
    ├── RefusedError                 valid, but the current state forbids it: customers
    │                                (-> ContractOverError), persons, consent, enrolment,
    │                                rights, requests, the sensor library, the daemon,
    │                                StaffError (-> its refusals)
    └── CommandTimeoutError          the daemon did not answer in time
"""

from __future__ import annotations

# --- the root and the start-up phase ---------------------------------------------------------


class AccessdError(Exception):
    """Root of every error ``accessd`` raises on purpose."""


class ConfigError(AccessdError):
    """The configuration is missing, unreadable or invalid; the message lists every problem.

    :ivar problems: one line per problem, each naming the key (or path) concerned.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


# --- storage, files and keys -----------------------------------------------------------------


class StorageError(AccessdError):
    """The database cannot be used as it is (unreachable, corrupt, schema not migrated)."""


class LedgerError(StorageError):
    """The erasure ledger or the purge records do not verify: altered, removed or unsealed rows.

    The message names the first broken row (table, id) and what is wrong with it.
    """


class DataFileError(AccessdError):
    """A file accessd writes or reads (a backup, an export) cannot be used as asked."""


class BackupError(DataFileError):
    """A backup cannot be written, read, verified or restored; the message says what to do."""


class BackupKeysError(BackupError):
    """The backup key file is missing, unreadable, from another installation or older than a
    backup, so that a restore cannot prove which erasures it must honour; or it cannot be
    updated, so that a purge or an erasure does not yet reach the backups."""


class ExportError(DataFileError):
    """An export cannot be written where asked."""


class JournalError(DataFileError):
    """The door's reserve journal cannot be created, read or written; events then go to the
    database only, and the door refuses when that fails too."""


class JournalFullError(JournalError):
    """Every record of the reserve journal waits to be moved into the database: the door
    refuses until the database takes them."""


class SpoolError(DataFileError):
    """A site door's event spool cannot be written or read (the door refuses: no opening
    without its event)."""


class SnapshotError(DataFileError):
    """A site door's snapshot cannot be read or written."""


class SnapshotStaleError(SnapshotError):
    """A site door's snapshot is older than its staleness limit: the door refuses everyone."""


class ChainBrokenError(StorageError):
    """Events a door delivered do not continue its hash chain: they are refused, not stored."""


class CryptoError(AccessdError):
    """Root of the key and encryption errors."""


class KeyFileError(CryptoError):
    """The keyring is missing, has unsafe permissions, is malformed, or lacks a needed key."""


class DecryptionError(CryptoError):
    """A ciphertext did not authenticate: altered, moved to another row, or its key is gone."""


# --- what a person gave ----------------------------------------------------------------------


class InputError(AccessdError):
    """What a person typed, chose or named cannot be used; the message says what would be."""


class InvalidInputError(InputError):
    """A value the service does not accept; ``field`` names it so a form or option can be
    pointed at, ``problem`` says what is allowed."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field.replace('_', ' ')}: {problem}")
        self.field = field
        self.problem = problem


class DuplicatePersonError(InvalidInputError):
    """A person of the same customer already has this name and e-mail address."""


class UsageError(InputError):
    """A command-line value or situation the command refuses; the message names the option."""


class PinError(InputError):
    """A PIN that cannot be used (too short, not digits, too easy to guess)."""


class NotFoundError(InputError):
    """Nothing answers to the reference given (a customer, person, request, door, event);
    ``suggestions`` lists close names where there are some."""

    def __init__(self, message: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.suggestions = suggestions


class HistoryError(NotFoundError):
    """The history cannot be read as asked (e.g. the page's cursor event is gone)."""


# --- refusals: the request is valid, the current state forbids it ----------------------------


class RefusedError(AccessdError):
    """Root of the refusals: the message says why and what would make it possible."""


class CustomerStateError(RefusedError):
    """The customer's current state does not allow the change asked for."""


class ContractOverError(CustomerStateError):
    """The customer's contract is over: nothing more is collected about its people."""


class PersonStateError(RefusedError):
    """The person's current state does not allow the change asked for."""


class ConsentError(RefusedError):
    """Consent cannot be recorded (wrong lawful basis, or one is already active)."""


class EnrollmentError(RefusedError):
    """Enrolment refused or failed; the message says why and what to do."""


class RightsError(RefusedError):
    """A data-subject right cannot be carried out as asked; the message says what to do."""


class SubjectRequestError(RefusedError):
    """A data-subject request cannot be recorded, extended or closed as asked."""


class LibraryTooSmallError(RefusedError):
    """The database holds fingers at slots this sensor does not have."""


class ZoneError(RefusedError):
    """A zone, a door's place or a grant cannot be changed as asked (a cycle, a person's grant
    outside the customer's zones, a zone still in use); the message says what would work."""


class DaemonRefusedError(RefusedError):
    """The daemon will not decide on rules it cannot trust; the door stays locked."""


class StaffError(RefusedError):
    """Root of the staff-account refusals (the CLI prints them, the panel shows them)."""


class InvalidUsernameError(StaffError):
    """A user name that does not follow the rules (shown beside the field)."""


class UsernameTakenError(StaffError):
    """A staff user of that name already exists."""


class UnknownStaffUserError(StaffError):
    """No staff user of that name (only said to admins and the CLI, never at login)."""


class PasswordRejectedError(StaffError):
    """A new password that does not meet the rules, or a wrong current password; ``rule``
    names the rule a new password broke (``accessd.staff.passwords.judge_password``), so the
    panel can say it in the reader's language."""

    def __init__(self, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


class WrongPasswordError(PasswordRejectedError):
    """The current password given to confirm a change is not right."""


class LastAdminError(StaffError):
    """The change would leave no active admin, so nobody could manage accounts any more."""


class TotpSetupError(StaffError):
    """A new second factor could not be confirmed (wrong code, or the setup page expired)."""


class ApiTokenError(StaffError):
    """An API token name is taken or unknown, or the name is invalid."""


# --- the daemon's answers --------------------------------------------------------------------


class CommandTimeoutError(AccessdError):
    """The daemon did not finish the command in time (is ``accessd run`` running?)."""
