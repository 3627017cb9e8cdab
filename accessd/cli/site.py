"""``accessd site``: a site of many doors on one PostgreSQL (``accessd.site``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from accessd.cli.main import Context
from accessd.errors import InvalidInputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    site = sub.add_parser("site", help="a site of many doors on one PostgreSQL").add_subparsers(
        dest="site_cmd", required=True)
    p = site.add_parser(
        "add-door-role",
        help="a PostgreSQL role for one door: it writes only its own events and reads only "
             "what its door needs")
    p.add_argument("--door", required=True, help="the door's name")
    p.add_argument("--role", required=True, help="the role's name, e.g. door_cage_7")
    p.add_argument("--password-file", type=Path, required=True,
                   help="file holding the role's password; created (mode 0600) with a new "
                        "random password when it does not exist. Copy it to the door's Pi "
                        "and put it in that door's [database] url")
    p.set_defaults(handler=cmd_add_door_role)


def cmd_add_door_role(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.site.roles import add_door_role, new_password, require_postgresql

    require_postgresql(ctx.engine)  # before a password file is made for nothing
    path: Path = args.password_file
    if path.exists():
        password = path.read_text().strip()
        if not password:
            raise InvalidInputError("password_file",
                                    f"{path} is empty: remove it to have a password made")
        made = False
    else:
        password = new_password()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(password + "\n")
        made = True
    door_id = add_door_role(ctx.engine, args.door, args.role, password)
    print(f"role {args.role} is door {args.door!r} (#{door_id}): it inserts only that door's "
          "events and reads only the customers that may use it")
    print(f"password {'written to' if made else 'taken from'} {path} (never printed); the "
          f"door's url: postgresql+psycopg://{args.role}:PASSWORD@HOST/DATABASE"
          "?sslmode=verify-full&sslrootcert=/etc/accessd/site-ca.pem")
    return 0
