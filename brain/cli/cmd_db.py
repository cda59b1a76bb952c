"""`brain db upgrade|downgrade|current`."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["upgrade", "downgrade", "current"])
    parser.add_argument("revision", nargs="?",
                        help="target revision (upgrade: default head; downgrade: required, `base` with --yes)")
    parser.add_argument("--yes", action="store_true", help="confirm a downgrade to base, which drops every table")
    parser.add_argument("--set-passwords", action="store_true",
                        help="after upgrading, set each role's password from BRAIN_<ROLE>_DB_PASSWORD")


def run(args: argparse.Namespace) -> int:
    from alembic.util.exc import CommandError

    from brain.config import settings
    from brain.db import migrate
    from brain.db.urls import admin_url
    from brain.errors import BrainError, one_line

    if args.action == "downgrade" and not args.revision:
        raise BrainError("db downgrade: name the revision to go back to (`brain db current` shows where it is)")
    if args.action == "downgrade" and args.revision == "base" and not args.yes:
        raise BrainError("db downgrade base drops every table and all it holds (halts, orders, fills, the "
                         "journal); pass --yes to do it")
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
            migrate.downgrade(url, args.revision)
    except CommandError as exc:  # alembic's: an unknown revision, say
        raise BrainError(f"db {args.action}: {one_line(exc)}") from None
    print(f"schema at revision {migrate.current(url) or 'base (empty)'}")
    return 0
