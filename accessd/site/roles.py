"""A PostgreSQL role per site door (``accessd site add-door-role``).

A door's Pi holds the password of its own role only, never the site's owner role: what a stolen
card gives away is one door's view. The role logs in, reads only what its door needs and writes
only its own door's rows; the row-level security policies of migration 0016 enforce the row
part (``door_roles`` names the role's door), these grants the table part:

- read: the customers that may use its door, their people, fingers, data keys and consents
  (for its sensor's library and its snapshot), the doors, the bindings, the site's version;
- write its own door's: events and their chains (delivery), its sync row, status row, alarms,
  commands it carries out, sensor slots, journal marks; fingers enrolled at its reader (and
  the per-person index the events trigger fills).

Nothing else: no staff, no audit log, no purge records, no requests, no other door's events.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import Engine, delete, insert, select

from accessd.errors import InvalidInputError, NotFoundError, UsageError
from accessd.models import Door, DoorRole

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

READ = ("customers", "persons", "fingers", "data_keys", "consents", "doors", "door_customers",
        "site_version", "door_sync", "event_chains", "access_events", "door_status", "alarms",
        "device_commands", "sensor_slots", "journal_drains", "person_events", "zones", "grants",
        "holidays")
WRITE = {
    "access_events": "INSERT, UPDATE",
    "event_chains": "INSERT, UPDATE",
    "door_sync": "INSERT, UPDATE",
    "door_status": "INSERT, UPDATE",
    "alarms": "INSERT, UPDATE",
    "device_commands": "UPDATE",
    "sensor_slots": "INSERT, UPDATE, DELETE",
    "journal_drains": "INSERT, UPDATE",
    "fingers": "INSERT",
    "person_events": "INSERT",
}


def require_postgresql(engine: Engine) -> None:
    """:raises UsageError: the database is not PostgreSQL."""
    if engine.dialect.name != "postgresql":
        raise UsageError("door roles are for a site's PostgreSQL; a single door on SQLite "
                           "has no roles to give")


def new_password() -> str:
    return secrets.token_urlsafe(24)


def add_door_role(engine: Engine, door_name: str, role: str, password: str) -> int:
    """Create (or update the password and grants of) ``role`` for the door ``door_name``;
    returns the door's id.

    :raises UsageError: the database is not PostgreSQL.
    :raises InvalidInputError: ``role`` is not a plain lower-case PostgreSQL name.
    :raises NotFoundError: no door of that name (start its daemon once, or add it first).
    """
    import psycopg
    from psycopg import sql

    require_postgresql(engine)
    if not ROLE_NAME.fullmatch(role):
        raise InvalidInputError("role", f"{role!r} is not a plain name: use lower-case letters, "
                                "digits and _ (at most 63, not starting with a digit), e.g. "
                                "door_cage_7")
    with engine.begin() as conn:
        door_id = conn.execute(select(Door.id).where(Door.name == door_name)).scalar()
        if door_id is None:
            raise NotFoundError(f"no door named {door_name!r}: start its daemon once with the "
                                "site's owner role, or add the door in the panel")
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        exists = conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(r)s",
                                      {"r": role}).first()
        verb = "ALTER" if exists else "CREATE"
        name = sql.Identifier(role)
        statements = [
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
                    "PASSWORD {}").format(name, sql.Literal(password)),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(str(engine.url.database)), name),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
            sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in READ), name),
            *(sql.SQL("GRANT " + privileges + " ON {} TO {}").format(sql.Identifier(t), name)
              for t, privileges in WRITE.items()),
        ]
        with raw.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        conn.execute(delete(DoorRole).where(DoorRole.door_id == door_id))
        conn.execute(delete(DoorRole).where(DoorRole.role_name == role))
        conn.execute(insert(DoorRole).values(role_name=role, door_id=door_id))
    return int(door_id)
