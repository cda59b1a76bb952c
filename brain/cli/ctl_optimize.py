"""`brainctl optimize [--date D]` asks the running brain for a report and prints it;
`brainctl optimize apply REPORT_ID N` applies one recommendation to a skill file, as the
operator's own act: a diff to confirm, limits enforced, journaled."""
from __future__ import annotations

import argparse
import getpass
import sys
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from brain.cli.common import ROW_ID, bounded_int, date_arg
from brain.sql import queries_beside

Q = queries_beside(__file__, "ctl_optimize.sql")

if TYPE_CHECKING:
    import psycopg

    from brain.config import Settings

APPLIES_PER_WEEK = 2
COOLING_DAYS = 14


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["run", "apply", "list"], default="run")
    parser.add_argument("report_id", nargs="?", type=ROW_ID)
    parser.add_argument("number", nargs="?", type=ROW_ID, help="with apply: the recommendation number")
    parser.add_argument("--date", type=date_arg, default=None, help="the day to report on (default: yesterday)")
    parser.add_argument("--days", type=bounded_int(1, 3660), default=1, help="how many days from --date")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--yes", action="store_true", help="apply without asking")
    parser.add_argument("--operator", default=None)


def run(args: argparse.Namespace) -> int:
    from brain.config import settings
    from brain.db.connect import connect_sync

    cfg = settings()
    with connect_sync(cfg, "operator") as conn:
        if args.action == "list":
            for rid, day, status, path in conn.execute(Q["recent_reports"]):
                print(f"{rid:>5}  {day}  {status:<9} {path}")
            return 0
        if args.action == "apply":
            return _apply(conn, cfg, args)
        return _request(conn, args)


def _request(conn: psycopg.Connection[Any], args: argparse.Namespace) -> int:
    import time

    from brain.db.bus_publish import publish_sync
    from brain.errors import BrainError
    from brain.topics import OptimizerRequest

    day = args.date or date.today() - timedelta(days=1)
    who = args.operator or getpass.getuser()
    with conn.transaction():
        now = conn.execute(Q["database_now"]).fetchone()
        assert now is not None  # a SELECT without FROM: one row
        since = now[0]
        publish_sync(conn, "optimizer.request", OptimizerRequest(day=day, days=args.days, requested_by=who),
                     from_agent="operator")
    print(f"asked the brain for a report on {day} ({args.days} day(s)); waiting...", file=sys.stderr)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        row = conn.execute(Q["report_since"], (since, day)).fetchone()
        if row:
            print(row[3])
            print(f"(report {row[0]}, {row[1]}: {row[2]})")
            return 0 if row[1] != "failed" else 1
        time.sleep(0.5)
    raise BrainError(f"no report within {args.timeout:.0f}s: is the brain running (brain run / brain up)?")


def _apply(conn: psycopg.Connection[Any], cfg: Settings, args: argparse.Namespace) -> int:
    import difflib

    from brain.errors import BrainError
    from brain.journal import JournalEntry, record_entry_sync
    from brain.optimizer import guards
    from brain.optimizer.run import write_atomically
    from brain.skills.edit import edited_text

    if args.report_id is None or args.number is None:
        raise BrainError("usage: brainctl optimize apply REPORT_ID N")
    row = conn.execute(Q["report_recommendations"], (args.report_id,)).fetchone()
    if row is None:
        raise BrainError(f"no optimizer report {args.report_id}")
    recs = row[0]
    if not 1 <= args.number <= len(recs):
        raise BrainError(f"report {args.report_id} has {len(recs)} recommendation(s); there is no number {args.number}")
    rec = recs[args.number - 1]
    if not rec.get("edit"):
        raise BrainError(f"recommendation {args.number} is advice, not an edit: apply it by hand if you agree")
    guards.check_target(rec["target"])
    # By the skill's own folder name however the target is spelled: the weekly and cooling
    # limits below count applies by that name.
    skills = {guards.canonical(p.parent.name): p.parent.name for p in cfg.skills_dir.glob("*/SKILL.md")}
    skill = skills.get(guards.canonical(rec["target"]))
    if skill is None:
        raise BrainError(f"recommendation {args.number} targets {rec['target']!r}, which is not a skill under "
                         f"{cfg.skills_dir}")
    path = cfg.skills_dir / skill / "SKILL.md"
    applied = conn.execute(Q["applies_this_week"], (skill,)).fetchone()
    assert applied is not None  # an aggregate: always one row
    week = applied[0]
    if week >= APPLIES_PER_WEEK:
        raise BrainError(f"{skill} already had {week} applied changes this week (limit {APPLIES_PER_WEEK})")
    latest = conn.execute(Q["last_apply"], (skill,)).fetchone()
    assert latest is not None  # an aggregate: always one row
    last = latest[0]
    if last is not None:
        cooled = conn.execute(Q["still_cooling"], (last, COOLING_DAYS)).fetchone()
        assert cooled is not None  # a SELECT without FROM: one row
        waited = cooled[0]
        if waited:
            raise BrainError(f"{skill} was changed on {last:%Y-%m-%d}; it cools for {COOLING_DAYS} days before the next apply")
    old, new = edited_text(path, rec["edit"])
    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), str(path) + " (new)"))
    print(diff)
    if not args.yes:
        if not sys.stdin.isatty():
            raise BrainError("confirmation needed: run in a terminal or pass --yes")
        if input("Apply this change? Type 'apply' to confirm: ").strip() != "apply":
            print("not applied")
            return 1
    who = args.operator or getpass.getuser()
    # The edit and its record go together: the file is written last in the transaction, and
    # put back if the record then fails to commit (the weekly and cooling limits count records).
    try:
        with conn.transaction():
            conn.execute(Q["record_apply"], (args.report_id, args.number, skill, who, diff))
            record_entry_sync(conn, cfg.context_dir, JournalEntry(
                kind="apply", outcome="applied", title=f"{who} applied recommendation {args.number} of report "
                                                        f"{args.report_id} to {skill}",
                sections=[("Change", rec["change"]), ("Evidence", rec["evidence"]),
                          ("Diff", f"```diff\n{diff}```")],
                facts={"report_id": args.report_id, "number": args.number, "skill": skill, "operator": who}))
            write_atomically(path, new)
    except BaseException:
        if path.read_text() == new:
            write_atomically(path, old)
        raise
    print(f"applied to {path}; the running brain picks it up on the next call")
    return 0
