"""`brain db upgrade|downgrade|current`."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["upgrade", "downgrade", "current"])
    parser.add_argument("revision", nargs="?", help="target revision (default: head for upgrade, base for downgrade)")
    parser.add_argument("--set-passwords", action="store_true",
                        help="after upgrading, set each role's password from BRAIN_<ROLE>_DB_PASSWORD")


def run(args: argparse.Namespace) -> int:
    from alembic.util.exc import CommandError

    from brain.config import settings
    from brain.db import migrate
    from brain.db.urls import admin_url
    from brain.errors import BrainError, one_line

    if args.set_passwords:
        if args.action != "upgrade":
            raise BrainError("--set-passwords goes with upgrade")
        migrate.role_passwords()  # every one of them set, before the schema is touched
    url = admin_url(settings())
    try:
        if args.action == "upgrade":
            migrate.upgrade(url, args.revision or "head")
            if args.set_passwords:
                migrate.set_role_passwords(url)
        elif args.action == "downgrade":
            migrate.downgrade(url, args.revision or "base")
    except CommandError as exc:  # alembic's: an unknown revision, say
        raise BrainError(f"db {args.action}: {one_line(exc)}") from None
    print(f"schema at revision {migrate.current(url) or 'base (empty)'}")
    return 0
