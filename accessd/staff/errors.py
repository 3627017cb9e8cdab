"""What the staff services refuse, each with a message a person can act on."""

from __future__ import annotations

from accessd.errors import AccessdError


class StaffError(AccessdError):
    """Root of the staff-account refusals (the CLI prints them, the panel shows them)."""


class InvalidUsername(StaffError):
    """A user name that does not follow the rules (shown beside the field)."""


class UsernameTaken(StaffError):
    """A staff user of that name already exists."""


class UnknownStaffUser(StaffError):
    """No staff user of that name (only said to admins and the CLI, never at login)."""


class PasswordRejected(StaffError):
    """A new password that does not meet the rules, or a wrong current password."""


class LastAdminError(StaffError):
    """The change would leave no active admin, so nobody could manage accounts any more."""


class TotpSetupError(StaffError):
    """A new second factor could not be confirmed (wrong code, or the setup page expired)."""


class ApiTokenError(StaffError):
    """An API token name is taken or unknown, or the name is invalid."""


class WrongPassword(PasswordRejected):
    """The current password given to confirm a change is not right."""
