"""Zones and the doors in them: create, nest (never in a cycle), place a door, set its mode.

Services add to the caller's session; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd.door.doors import door_named
from accessd.errors import InvalidInputError, NotFoundError, ZoneError
from accessd.models import AuthMode, Door, Grant, Zone, ZoneKind

MAX_DEPTH = 16  # a site, a building, a hall, a suite, a cage: far fewer levels than this
NAME_MAX = 100


@dataclass(frozen=True, slots=True)
class ZoneRow:
    """A zone as lists show it: its place in the tree and what uses it."""

    id: int
    name: str
    kind: ZoneKind
    parent: str | None
    path: tuple[str, ...]  # outermost first, this zone last
    doors: tuple[str, ...]
    grants: int
    grant_new_customers: bool


@dataclass(frozen=True, slots=True)
class DoorPlace:
    """A door with its zone and mode, as the panel's door list and the CLI show it."""

    id: int
    name: str
    location: str | None
    zone: str | None
    zone_path: tuple[str, ...]
    auth_mode: AuthMode


def zone_named(session: Session, name: str) -> Zone:
    """The zone named ``name``.

    :raises NotFoundError: no such zone; the message lists the zones there are.
    """
    zone = session.scalars(select(Zone).where(Zone.name == name)).first()
    if zone is None:
        names = tuple(session.scalars(select(Zone.name).order_by(Zone.name)))
        known = (f" (known: {', '.join(names)})" if names
                 else " (none yet: `accessd zone add NAME --kind hall`)")
        raise NotFoundError(f"no zone named {name!r}{known}", names)
    return zone


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise InvalidInputError("name", f"give a zone name of 1 to {NAME_MAX} characters")
    return name


def _kind(kind: ZoneKind | str) -> ZoneKind:
    try:
        return ZoneKind(kind)
    except ValueError:
        raise InvalidInputError("kind", f"{kind!r} is not a zone kind; use one of "
                                f"{', '.join(k.value for k in ZoneKind)}") from None


def _mode(mode: AuthMode | str) -> AuthMode:
    try:
        return AuthMode(mode)
    except ValueError:
        raise InvalidInputError("auth_mode", f"{mode!r} is not a door mode; use one of "
                                f"{', '.join(m.value for m in AuthMode)}") from None


def _parents(session: Session) -> dict[int, int | None]:
    return dict(session.execute(select(Zone.id, Zone.parent_id)).all())


def _names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Zone.id, Zone.name)).all())


def chain(parents: dict[int, int | None], zone_id: int | None) -> list[int]:
    """``zone_id`` and the zones around it, innermost first (bounded: data is never trusted
    to be free of cycles)."""
    out: list[int] = []
    while zone_id is not None and zone_id not in out and len(out) < MAX_DEPTH:
        out.append(zone_id)
        zone_id = parents.get(zone_id)
    return out


def add_zone(session: Session, name: str, kind: ZoneKind | str,
             parent: str | None = None) -> Zone:
    """Record a zone, inside ``parent`` if given.

    :raises InvalidInputError: a bad name or kind.
    :raises ZoneError: the name is taken, or the nesting would be too deep.
    :raises NotFoundError: no zone named ``parent``.
    """
    name, zone_kind = _clean_name(name), _kind(kind)
    if session.scalars(select(Zone.id).where(Zone.name == name)).first() is not None:
        raise ZoneError(f"a zone named {name!r} exists already; choose another name")
    parent_zone = zone_named(session, parent) if parent else None
    if parent_zone is not None and len(chain(_parents(session), parent_zone.id)) >= MAX_DEPTH:
        raise ZoneError(f"zones nest at most {MAX_DEPTH} deep; put {name!r} higher up")
    zone = Zone(name=name, kind=zone_kind, parent_id=parent_zone.id if parent_zone else None)
    session.add(zone)
    session.flush()
    return zone


def move_zone(session: Session, name: str, parent: str | None) -> Zone:
    """Put zone ``name`` inside ``parent`` (``None``: at the top).

    :raises ZoneError: ``parent`` is the zone itself or lies inside it (a cycle), or the
        nesting would be too deep.
    """
    zone = zone_named(session, name)
    if parent is None:
        zone.parent_id = None
        session.flush()
        return zone
    target = zone_named(session, parent)
    parents = _parents(session)
    around = chain(parents, target.id)
    if zone.id in around:
        names = _names(session)
        path = " > ".join(names[z] for z in reversed(around[:around.index(zone.id) + 1]))
        raise ZoneError(
            f"{name!r} cannot go inside {parent!r}: {parent!r} is itself inside {name!r} "
            f"({path}), so zones would nest in a circle; choose a zone outside {name!r}")
    if len(around) + _height(parents, zone.id) >= MAX_DEPTH:
        raise ZoneError(f"zones nest at most {MAX_DEPTH} deep; put {name!r} higher up")
    zone.parent_id = target.id
    session.flush()
    return zone


def _height(parents: dict[int, int | None], zone_id: int) -> int:
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    level, frontier = 0, [zone_id]
    while frontier and level <= MAX_DEPTH:
        level += 1
        frontier = [c for z in frontier for c in children.get(z, [])]
    return level


def remove_zone(session: Session, name: str) -> None:
    """Delete an unused zone.

    :raises ZoneError: doors, zones or grants still use it; the message says which.
    """
    zone = zone_named(session, name)
    uses = []
    doors = session.scalar(select(func.count()).where(Door.zone_id == zone.id)) or 0
    inner = session.scalar(select(func.count()).where(Zone.parent_id == zone.id)) or 0
    grants = session.scalar(select(func.count()).where(Grant.zone_id == zone.id)) or 0
    for count, what in ((doors, "door"), (inner, "zone"), (grants, "grant")):
        if count:
            uses.append(f"{count} {what}{'s' if count != 1 else ''}")
    if uses:
        raise ZoneError(f"zone {name!r} is still used by {', '.join(uses)}; move the doors "
                        "and zones elsewhere and revoke its grants first")
    session.delete(zone)
    session.flush()


def list_zones(session: Session) -> list[ZoneRow]:
    """Every zone, in tree order (each zone after the one around it), with its doors."""
    zones = session.scalars(select(Zone).order_by(Zone.name)).all()
    parents = {z.id: z.parent_id for z in zones}
    names = {z.id: z.name for z in zones}
    doors: dict[int, list[str]] = {}
    for zone_id, door in session.execute(select(Door.zone_id, Door.name).order_by(Door.name)):
        if zone_id is not None:
            doors.setdefault(zone_id, []).append(door)
    grants = dict(session.execute(select(Grant.zone_id, func.count()).group_by(Grant.zone_id))
                  .all())
    rows = [ZoneRow(z.id, z.name, z.kind, names.get(z.parent_id) if z.parent_id else None,
                    tuple(names[i] for i in reversed(chain(parents, z.id))),
                    tuple(doors.get(z.id, ())), grants.get(z.id, 0), z.grant_new_customers)
            for z in zones]
    return sorted(rows, key=lambda r: r.path)


def set_grant_new_customers(session: Session, name: str, on: bool) -> Zone:
    """Whether new customers are granted zone ``name`` when they are added."""
    zone = zone_named(session, name)
    zone.grant_new_customers = on
    session.flush()
    return zone


def place_door(session: Session, door: str, zone: str | None) -> Door:
    """Put door ``door`` in zone ``zone`` (``None``: in no zone, so nobody may use it)."""
    row = door_named(session, door)
    row.zone_id = zone_named(session, zone).id if zone else None
    session.flush()
    return row


def set_auth_mode(session: Session, door: str, mode: AuthMode | str) -> Door:
    """What door ``door`` asks of people: finger, pin, finger_or_pin or finger_and_pin."""
    row = door_named(session, door)
    row.auth_mode = _mode(mode)
    session.flush()
    return row


def door_places(session: Session) -> list[DoorPlace]:
    """Every door with its zone (and the zones around it) and its mode, by name."""
    parents, names = _parents(session), _names(session)
    return [DoorPlace(d.id, d.name, d.location, names.get(d.zone_id) if d.zone_id else None,
                      tuple(names[i] for i in reversed(chain(parents, d.zone_id))), d.auth_mode)
            for d in session.scalars(select(Door).order_by(Door.name))]


def door_place(session: Session, door_id: int) -> DoorPlace:
    """One door's place and mode.

    :raises NotFoundError: no such door.
    """
    for place in door_places(session):
        if place.id == door_id:
            return place
    raise NotFoundError(f"no door has the id {door_id}")
