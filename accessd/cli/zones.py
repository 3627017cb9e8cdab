"""Zones, doors' places and modes, grants and holidays: ``zone``, ``door place|mode|list``,
``grant``, ``holiday``. Handlers parse, call one service (``accessd.zones``), and print."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from accessd.cli.audit import cli_actor
from accessd.cli.people import (
    _command,
    _date,
    _group,
    _json_option,
    _print_table,
    _reading,
    subcommands,
)
from accessd.db import session_scope
from accessd.models import AuthMode, ZoneKind
from accessd.zones.grants import libraries_follow

if TYPE_CHECKING:
    from accessd.cli.main import Context


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``zone``, ``grant``, ``holiday`` and the door's ``place``, ``mode``, ``list``."""
    zone = _group(subparsers, "zone", "zones: halls, suites, cages (nested, never in a circle)")
    p = _command(zone, "add", _zone_add, "record a zone")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--kind", required=True, choices=[k.value for k in ZoneKind])
    p.add_argument("--in", dest="parent", metavar="ZONE", help="the zone around it")
    p.add_argument("--new-customers", dest="new_customers", action="store_true",
                   help="grant it to every customer added from now on (24/7)")
    p = _command(zone, "list", _zone_list, "every zone with its doors and grants")
    _json_option(p)
    p = _command(zone, "move", _zone_move, "put a zone inside another, or at the top")
    p.add_argument("name", metavar="NAME")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--in", dest="parent", metavar="ZONE")
    where.add_argument("--top", action="store_true", help="inside no other zone")
    p = _command(zone, "remove", _zone_remove, "delete a zone no door, zone or grant uses")
    p.add_argument("name", metavar="NAME")
    p = _command(zone, "new-customers", _zone_new_customers,
                 "whether customers added from now on are granted this zone")
    p.add_argument("name", metavar="NAME")
    p.add_argument("state", choices=("on", "off"))

    door = subcommands(subparsers, "door")
    p = door.add_parser("list", help="every door with its zone and authentication mode")
    _json_option(p)
    p.set_defaults(handler=_door_list)
    p = door.add_parser("place", help="put a door in a zone (who may use it follows)")
    p.add_argument("door", metavar="DOOR")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("zone", metavar="ZONE", nargs="?")
    where.add_argument("--no-zone", dest="no_zone", action="store_true",
                       help="in no zone: the door lets nobody in")
    p.set_defaults(handler=_door_place)
    p = door.add_parser("mode", help="what the door asks for: finger, pin, finger_or_pin, "
                                     "finger_and_pin (two factors)")
    p.add_argument("door", metavar="DOOR")
    p.add_argument("mode", choices=[m.value for m in AuthMode])
    p.set_defaults(handler=_door_mode)

    grant = _group(subparsers, "grant", "zones granted to customers and their people")
    p = _command(grant, "add", _grant_add,
                 "grant a zone (and the zones inside it); again to change its terms")
    p.add_argument("customer", metavar="CUSTOMER", help="id, public id or exact name")
    p.add_argument("zone", metavar="ZONE")
    p.add_argument("--person", metavar="PERSON",
                   help="only this person of the customer's (who then gets only their own "
                        "grants, inside the customer's)")
    p.add_argument("--schedule", metavar="WINDOWS",
                   help="weekly windows in the site's time, e.g. 'mon-fri 07:00-19:00; sat "
                        "09:00-13:00' (default: 24/7)")
    p.add_argument("--closed-on-holidays", dest="closed_on_holidays", action="store_true",
                   help="refuse on the site's holidays (`accessd holiday list`)")
    p.add_argument("--from", dest="valid_from", type=_date, metavar="DATE",
                   help="first valid day (YYYY-MM-DD)")
    p.add_argument("--until", dest="valid_until", type=_date, metavar="DATE",
                   help="last valid day (YYYY-MM-DD)")
    p = _command(grant, "list", _grant_list, "a customer's grants, or a person's own")
    p.add_argument("customer", metavar="CUSTOMER")
    p.add_argument("--person", metavar="PERSON")
    _json_option(p)
    p = _command(grant, "revoke", _grant_revoke, "take a zone back")
    p.add_argument("customer", metavar="CUSTOMER")
    p.add_argument("zone", metavar="ZONE")
    p.add_argument("--person", metavar="PERSON")

    holiday = _group(subparsers, "holiday", "the site's holidays (grants may close on them)")
    p = _command(holiday, "add", _holiday_add, "record a holiday")
    p.add_argument("day", type=_date, metavar="DATE")
    p.add_argument("name", metavar="NAME")
    p = _command(holiday, "list", _holiday_list, "the site's holidays")
    p = _command(holiday, "remove", _holiday_remove, "remove a holiday")
    p.add_argument("day", type=_date, metavar="DATE")


# --- zones ---------------------------------------------------------------------------------

def _zone_add(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.places import add_zone, set_grant_new_customers

    with session_scope(ctx.sessions) as session:
        zone = add_zone(session, args.name, args.kind, args.parent)
        if args.new_customers:
            set_grant_new_customers(session, zone.name, True)
        name = zone.name
    where = f" inside {args.parent!r}" if args.parent else ""
    print(f"Added {args.kind} zone {name!r}{where}.")
    return 0


def _zone_list(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.places import list_zones

    with _reading(ctx) as session:
        rows = list_zones(session)
    if args.json:
        print(json.dumps([{"name": r.name, "kind": r.kind.value, "parent": r.parent,
                           "path": list(r.path), "doors": list(r.doors), "grants": r.grants,
                           "grant_new_customers": r.grant_new_customers} for r in rows],
                         indent=2))
        return 0
    _print_table(("ZONE", "KIND", "DOORS", "GRANTS", "NEW CUSTOMERS"),
                 [("  " * (len(r.path) - 1) + r.name, r.kind.value, ", ".join(r.doors) or "-",
                   str(r.grants), "yes" if r.grant_new_customers else "no") for r in rows],
                 empty="no zones yet: `accessd zone add NAME --kind hall`")
    return 0


def _zone_move(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.places import move_zone

    with session_scope(ctx.sessions) as session:
        move_zone(session, args.name, None if args.top else args.parent)
        libraries_follow(session, cli_actor())
    print(f"Zone {args.name!r} is now " + ("at the top." if args.top
                                            else f"inside {args.parent!r}."))
    return 0


def _zone_remove(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.places import remove_zone

    with session_scope(ctx.sessions) as session:
        remove_zone(session, args.name)
    print(f"Removed zone {args.name!r}.")
    return 0


def _zone_new_customers(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.places import set_grant_new_customers

    with session_scope(ctx.sessions) as session:
        set_grant_new_customers(session, args.name, args.state == "on")
    print(f"Customers added from now on {'are' if args.state == 'on' else 'are not'} granted "
          f"{args.name!r}.")
    return 0


# --- doors ---------------------------------------------------------------------------------

def _door_list(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.places import door_places

    with _reading(ctx) as session:
        places = door_places(session)
    if args.json:
        print(json.dumps([{"name": p.name, "zone": p.zone, "zone_path": list(p.zone_path),
                           "auth_mode": p.auth_mode.value} for p in places], indent=2))
        return 0
    _print_table(("DOOR", "ZONE", "MODE"),
                 [(p.name, " > ".join(p.zone_path) or "- (lets nobody in)", p.auth_mode.value)
                  for p in places], empty="no doors yet: start `accessd run`")
    return 0


def _door_place(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.places import place_door

    zone = None if args.no_zone else args.zone
    with session_scope(ctx.sessions) as session:
        place_door(session, args.door, zone)
        libraries_follow(session, cli_actor())
    print(f"Door {args.door!r} is now " + (f"in zone {zone!r}." if zone
                                           else "in no zone: it lets nobody in."))
    return 0


def _door_mode(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.places import set_auth_mode

    with session_scope(ctx.sessions) as session:
        set_auth_mode(session, args.door, args.mode)
    print(f"Door {args.door!r} now asks for {args.mode.replace('_', ' ')} (from its next "
          "attempt).")
    return 0


# --- grants --------------------------------------------------------------------------------

def _grant_add(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.customers.contracts import get_customer
    from accessd.customers.people import get_person
    from accessd.zones.grants import GrantTerms, grant_zone

    terms = GrantTerms(args.schedule, args.closed_on_holidays, args.valid_from, args.valid_until)
    with session_scope(ctx.sessions) as session:
        customer = get_customer(session, args.customer)
        person = get_person(session, args.person) if args.person else None
        grant = grant_zone(session, customer, args.zone, terms, person=person,
                           actor=cli_actor())
        libraries_follow(session, cli_actor())
        checked = GrantTerms(grant.schedule, grant.closed_on_holidays, grant.valid_from,
                             grant.valid_until)
        whose = f"person {person.id}" if person else repr(customer.name)
        ctx.audit.note(target=(f"person:{person.public_id}" if person
                               else f"customer:{customer.public_id}"), zone=args.zone)
    print(f"Granted zone {args.zone!r} to {whose}: {checked.describe()}.")
    return 0


def _grant_list(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.customers.contracts import get_customer
    from accessd.customers.people import get_person
    from accessd.zones.grants import grants_of

    with _reading(ctx) as session:
        customer = get_customer(session, args.customer)
        person = get_person(session, args.person) if args.person else None
        rows = grants_of(session, customer, person)
    if args.json:
        print(json.dumps([{"zone": r.zone, "zone_path": list(r.zone_path),
                           "schedule": r.terms.schedule,
                           "closed_on_holidays": r.terms.closed_on_holidays,
                           "valid_from": str(r.terms.valid_from or "") or None,
                           "valid_until": str(r.terms.valid_until or "") or None}
                          for r in rows], indent=2))
        return 0
    empty = ("no grants of their own: this person has their customer's"
             if person else "no grants: its people are refused at every door")
    _print_table(("ZONE", "WHEN"), [(" > ".join(r.zone_path), r.terms.describe())
                                    for r in rows], empty=empty)
    return 0


def _grant_revoke(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.customers.contracts import get_customer
    from accessd.customers.people import get_person
    from accessd.zones.grants import revoke_zone

    with session_scope(ctx.sessions) as session:
        customer = get_customer(session, args.customer)
        person = get_person(session, args.person) if args.person else None
        removed = revoke_zone(session, customer, args.zone, person=person)
        libraries_follow(session, cli_actor())
    more = f" (and {removed - 1} of its people's grants inside it)" if removed > 1 else ""
    print(f"Revoked zone {args.zone!r}{more}.")
    return 0


# --- holidays ------------------------------------------------------------------------------

def _holiday_add(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.grants import add_holiday

    with session_scope(ctx.sessions) as session:
        add_holiday(session, args.day, args.name)
    print(f"{args.day} is a site holiday: grants closed on holidays refuse all that day.")
    return 0


def _holiday_list(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.grants import holidays

    with _reading(ctx) as session:
        rows = [(str(h.day), h.name) for h in holidays(session)]
    _print_table(("DAY", "NAME"), rows, empty="no holidays recorded")
    return 0


def _holiday_remove(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.zones.grants import remove_holiday

    with session_scope(ctx.sessions) as session:
        remove_holiday(session, args.day)
    print(f"{args.day} is no longer a site holiday.")
    return 0
