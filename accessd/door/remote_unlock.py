"""Remote unlock: staff let someone in (an escorted visitor, a person without a credential).

``accessd door unlock``, the panel's unlock form and ``POST /api/v1/doors/<name>/unlock`` all
ask through ``request_unlock``, so they accept and refuse the same reasons with the same
message. The door's daemon records the opening as ``"<reason> (by <who asked>)"`` in the
event's reason; the limits add up so that this always fits whole:

    REASON_MAX (130) + len(" (by )") (6) + ACTOR_MAX (64) = EVENT_REASON_MAX (200)

Services add to the caller's session; the caller commits.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from accessd.door import command_table
from accessd.errors import InvalidInputError
from accessd.models import CommandKind, DeviceCommand

EVENT_REASON_MAX = 200  # AccessEvent.reason
ACTOR_MAX = 64  # DeviceCommand.created_by (a staff user name has at most 64 characters)
_BY = " (by {actor})"
REASON_MAX = EVENT_REASON_MAX - len(_BY.format(actor="")) - ACTOR_MAX
"""The longest reason a person may give, in characters (after runs of spaces are joined)."""


def check_reason(reason: str) -> str:
    """The reason as it is kept: runs of white space made one space.

    :raises InvalidInputError: empty, or longer than ``REASON_MAX`` (field ``reason``).
    """
    kept = " ".join(reason.split())
    if not kept:
        raise InvalidInputError("reason", "say why the door is opened, for example "
                                "'escorted visitor for Acme, ticket 4711'")
    if len(kept) > REASON_MAX:
        raise InvalidInputError("reason", f"the reason has {len(kept)} characters; at most "
                                f"{REASON_MAX} fit in the access history beside who asked, "
                                "so shorten it")
    return kept


def check_actor(actor: str) -> str:
    """Who asks, as the command and the event keep it.

    :raises InvalidInputError: empty or longer than ``ACTOR_MAX`` (field ``by``).
    """
    if not actor or len(actor) > ACTOR_MAX:
        raise InvalidInputError("by", f"the name of who asks has {len(actor)} characters; give "
                                f"one of 1 to {ACTOR_MAX} characters")
    return actor


def request_unlock(session: Session, door_id: int, reason: str, *,
                   actor: str) -> DeviceCommand:
    """Ask the door's daemon to release the lock once. Returns the queued command.

    :raises InvalidInputError: the reason (or the actor) cannot be kept whole.
    """
    return command_table.request(session, door_id, CommandKind.REMOTE_UNLOCK,
                                 created_by=check_actor(actor), reason=check_reason(reason))


def event_reason(reason: str, actor: str) -> str:
    """What the door's event says about a remote unlock (the daemon's side): never cut.

    :raises InvalidInputError: a command queued around ``request_unlock`` whose reason or
        actor would not fit; the daemon refuses it and the door stays locked.
    """
    return check_reason(reason) + _BY.format(actor=check_actor(actor))
