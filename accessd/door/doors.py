"""The site's doors by name: each daemon registers its own at start, the panel and the CLI
find the one a person means.

Services add to the caller's session; the caller commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.errors import NotFoundError
from accessd.models import Door, Zone


def register_door(session: Session, name: str) -> int:
    """The id of the door named ``name``, added if this is its daemon's first start.

    The site's first door goes into the outermost zone when there is exactly one (the "site"
    zone migration 0015 makes), so a one-door installation works with no set-up. Any later
    door starts in no zone, refusing everyone until staff place it (``accessd door place``):
    a new cage door must not open to every customer of the site by default.
    """
    door = session.scalars(select(Door).where(Door.name == name)).first()
    if door is None:
        zone_id = None
        if session.scalars(select(Door.id).limit(1)).first() is None:
            tops = session.scalars(select(Zone.id).where(Zone.parent_id.is_(None)).limit(2)).all()
            zone_id = tops[0] if len(tops) == 1 else None
        door = Door(name=name, zone_id=zone_id)
        session.add(door)
        session.flush()
    return door.id


def door_named(session: Session, name: str) -> Door:
    """The door named ``name``.

    :raises NotFoundError: no such door; the message lists the doors there are.
    """
    door = session.scalars(select(Door).where(Door.name == name)).first()
    if door is None:
        names = tuple(session.scalars(select(Door.name).order_by(Door.name)))
        known = f" (known: {', '.join(names)})" if names else " (none yet: start `accessd run`)"
        raise NotFoundError(f"no door named {name!r}{known}", names)
    return door


def get_door(session: Session, door_id: int) -> Door:
    """The door with this id.

    :raises NotFoundError: no such door.
    """
    door = session.get(Door, door_id)
    if door is None:
        raise NotFoundError(f"no door has the id {door_id}")
    return door
