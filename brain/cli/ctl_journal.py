"""`brainctl journal [--date D] [--symbol S] [--outcome O]` and `brainctl journal show ID`."""
from __future__ import annotations

import argparse

from brain.cli.common import ROW_ID, bounded_int, date_arg
from brain.sql import queries_beside

Q = queries_beside(__file__, "ctl_journal.sql")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    parser.add_argument("entry_id", nargs="?", type=ROW_ID, help="with show: the entry id")
    parser.add_argument("--date", type=date_arg, help="the day the entry was written (UTC)")
    parser.add_argument("--symbol")
    parser.add_argument("--outcome", help="filled, veto, skip, expired, halted, error, halt, resume, ...")
    parser.add_argument("--kind", help="cycle, halt, resume, optimizer, ...")
    parser.add_argument("--limit", type=bounded_int(1, 100_000), default=50)
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from brain.cli.common import print_json
    from brain.config import settings
    from brain.db.connect import connect_sync
    from brain.errors import BrainError

    with connect_sync(settings(), "operator") as conn:
        if args.action == "show":
            if args.entry_id is None:
                raise BrainError("journal show needs an entry id (see brainctl journal)")
            row = conn.execute(Q["entry"], (args.entry_id,)).fetchone()
            if row is None:
                raise BrainError(f"no journal entry with id {args.entry_id}")
            print(row[0], end="")
            print(f"\n(file: {row[1]})")
            return 0
        rows = conn.execute(Q["entries"], {"day": args.date, "symbol": args.symbol.upper() if args.symbol else None,
                                   "outcome": args.outcome, "kind": args.kind, "limit": args.limit}).fetchall()
    data = [dict(zip(("id", "created_at", "kind", "symbol", "outcome", "title", "file"), r)) for r in rows]
    if args.json:
        print_json(data)
        return 0
    for d in data:
        print(f"{d['id']:>7}  {d['created_at']:%Y-%m-%d %H:%M:%S}  {d['kind']:<9} {d['outcome']:<8} {d['title']}")
    print(f"{len(data)} entries" + (" (newest first; --limit for more)" if len(data) == args.limit else ""))
    return 0
