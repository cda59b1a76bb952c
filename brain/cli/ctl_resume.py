"""`brainctl resume HALT_ID --reason TEXT`: the only way back after a halt."""
from __future__ import annotations

import argparse
import getpass
import sys

from brain.cli.common import ROW_ID
from brain.sql import queries_beside

Q = queries_beside(__file__, "ctl_resume.sql")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("halt_id", type=ROW_ID)
    parser.add_argument("--reason", required=True, help="what you checked and why trading may resume")
    parser.add_argument("--operator", default=None, help="who (default: the login name)")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    parser.add_argument("--force", action="store_true", help="resume although the invariant still breaks")


def run(args: argparse.Namespace) -> int:
    import json

    from brain import halts
    from brain.config import settings
    from brain.db.connect import connect_sync
    from brain.errors import BrainError
    from brain.journal import JournalEntry, record_entry_sync
    from watchdog_proc.checks import run_checks

    if not args.reason.strip():
        raise BrainError("--reason must say what you checked")
    who = args.operator or getpass.getuser()
    cfg = settings()
    with connect_sync(cfg, "operator") as conn:
        h = halts.get(conn, args.halt_id)
        if h["resumed_at"] is not None:
            raise BrainError(f"halt {h['id']} was already resumed at {h['resumed_at']:%Y-%m-%d %H:%M:%S} "
                             f"by {h['resumed_by']}")
        print(f"halt {h['id']}  L{h['level']}  {h['invariant']}  raised {h['raised_at']:%Y-%m-%d %H:%M:%S} "
              f"by {h['raised_by']}\n  {h['reason']}\n  evidence: {json.dumps(h['evidence'], default=str)}")
        entry = halts.journal_for(conn, h["id"])
        if entry:
            print(f"\njournal entry {entry[0]} ({entry[1]}):\n")
            print(entry[2])
        still = [b for b in run_checks(conn, cfg) if b.invariant == h["invariant"]]
        if still and not args.force:
            raise BrainError(f"refusing: {h['invariant']} still breaks ({still[0].reason}); "
                             "fix it first, or --force with a reason")
        if not args.yes:
            if not sys.stdin.isatty():
                raise BrainError("confirmation needed: run in a terminal or pass --yes")
            answer = input(f"Resume halt {h['id']} as {who}? Type 'resume' to confirm: ").strip()
            if answer != "resume":
                print("not resumed")
                return 1
        with conn.transaction():
            if conn.execute(halts.Q["resume"], (who, args.reason, bool(still), h["id"])).fetchone() is None:
                raise BrainError(f"halt {h['id']} was resumed by someone else meanwhile")
            if h["level"] >= 4 and not any(x["level"] >= 4 for x in halts.active(conn)):
                conn.execute(Q["unlock_accounts"])
            record_entry_sync(conn, cfg.context_dir, JournalEntry(
                kind="resume", outcome="resume", title=f"RESUME of halt {h['id']} (L{h['level']} {h['invariant']}) by {who}",
                sections=[("Why the operator resumed", args.reason),
                          ("The halt", f"L{h['level']} {h['invariant']}: {h['reason']}"),
                          ("Forced", "yes: the invariant still broke at resume time" if still else "no")],
                facts={"halt_id": h["id"], "operator": who, "forced": bool(still), "reason": args.reason}))
    print(f"halt {h['id']} resumed by {who}" + (" (forced)" if still else ""))
    return 0
