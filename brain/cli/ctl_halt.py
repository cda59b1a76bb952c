"""`brainctl halt --level N --reason TEXT`: a manual halt by the operator."""
from __future__ import annotations

import argparse
import getpass
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--level", type=int, choices=[1, 2, 3, 4], required=True,
                        help="1 alert, 2 no new entries, 3 stop trading, 4 flatten and lock")
    parser.add_argument("--reason", required=True)
    parser.add_argument("--operator", default=None, help="who (default: the login name)")


def run(args: argparse.Namespace) -> int:
    import json

    from brain.config import settings
    from brain.db.connect import connect_sync
    from brain.errors import BrainError, one_line
    from brain.halts import Q
    from brain.journal import JournalEntry, record_entry_sync

    if not args.reason.strip():
        raise BrainError("--reason must say why")
    who = args.operator or getpass.getuser()
    cfg = settings()
    unjournaled = None
    with connect_sync(cfg, "operator") as conn, conn.transaction():
        raised = conn.execute(Q["raise_manual"], (args.level, args.reason, json.dumps({"operator": who}),
                                                  f"operator:{who}")).fetchone()
        assert raised is not None  # INSERT ... RETURNING: one row
        halt_id = raised[0]
        try:
            record_entry_sync(conn, cfg.context_dir, JournalEntry(
                kind="halt", outcome="halt", title=f"HALT L{args.level}: manual, by {who}",
                sections=[("Why", args.reason), ("What it means", f"Level {args.level} raised by hand. Lift it "
                                                                  f"with `brainctl resume {halt_id} --reason ...`.")],
                facts={"halt_id": halt_id, "level": args.level, "invariant": "manual", "operator": who}))
        except OSError as exc:  # the file is written before its row: the halt goes ahead without either
            unjournaled = one_line(exc)
    note = "" if args.level < 3 else "; the watchdog carries out its actions within a second"
    print(f"halt {halt_id} raised at L{args.level}{note}")
    if unjournaled:
        print(f"brainctl: the halt is in force, but its journal entry could not be written ({unjournaled}); "
              "check BRAIN_CONTEXT_DIR", file=sys.stderr)
    return 0
