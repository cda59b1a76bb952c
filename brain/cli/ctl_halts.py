"""`brainctl halts`: active halts, or every halt with --all."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="include resumed halts")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from brain import halts
    from brain.cli.common import print_json
    from brain.config import settings
    from brain.db.connect import connect_sync

    with connect_sync(settings(), "operator") as conn:
        rows = halts.all_halts(conn) if args.all else halts.active(conn)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no active halts" if not args.all else "no halts recorded")
    for h in rows:
        status = "ACTIVE" if h["resumed_at"] is None else \
            f"resumed {h['resumed_at']:%Y-%m-%d %H:%M:%S} by {h['resumed_by']}{' (forced)' if h['forced'] else ''}: {h['resume_reason']}"
        print(f"{h['id']:>5}  L{h['level']}  {h['raised_at']:%Y-%m-%d %H:%M:%S}  {h['invariant']:<22} {h['reason']}\n"
              f"       raised by {h['raised_by']}; {status}")
    return 0
