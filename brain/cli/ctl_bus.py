"""`brainctl bus backlog|replay|dead|redrive`: read the message log and the delivery queue."""
from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

from brain.cli.common import ROW_ID
from brain.errors import BrainError


def _when(text: str) -> datetime:
    """ISO time, or a relative one like 15m, 2h, 1d (ago)."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if text and text[-1] in units and text[:-1].isdigit():
        try:
            return datetime.now(timezone.utc) - timedelta(**{units[text[-1]]: int(text[:-1])})
        except OverflowError:
            raise argparse.ArgumentTypeError(f"too far back: {text!r}") from None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use ISO 8601 or 15m/2h/1d)") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    backlog = sub.add_parser("backlog", help="per consumer: pending, in flight, dead, not yet taken in")
    backlog.add_argument("--json", action="store_true")
    replay = sub.add_parser("replay", help="every message of a time window, oldest first")
    replay.add_argument("--from", dest="start", type=_when, required=True, help="ISO time or 15m/2h/1d ago")
    replay.add_argument("--to", dest="end", type=_when, default=None, help="ISO time (default: now)")
    replay.add_argument("--topic", action="append", help="only this topic (repeatable)")
    replay.add_argument("--correlation", help="only this cycle")
    replay.add_argument("--json", action="store_true")
    dead = sub.add_parser("dead", help="dead-lettered deliveries with their errors")
    dead.add_argument("--consumer")
    dead.add_argument("--json", action="store_true")
    redrive = sub.add_parser("redrive", help="send dead letters back to their consumer for another try")
    redrive.add_argument("--consumer", required=True)
    redrive.add_argument("--message", type=ROW_ID, action="append", help="only this message id (repeatable)")


def run(args: argparse.Namespace) -> int:
    import json

    from brain.cli.common import print_json
    from brain.config import settings
    from brain.db.connect import connect_sync
    from brain.sql import load_queries
    from pathlib import Path

    q = load_queries(Path(__file__).with_name("ctl_bus.sql"))
    with connect_sync(settings(), "operator") as conn:
        if args.action == "backlog":
            rows = conn.execute(q["backlog"]).fetchall()
            data = [dict(zip(("consumer", "pending", "working", "dead", "untaken", "oldest_waiting_s"), r)) for r in rows]
            if args.json:
                print_json(data)
            else:
                print(f"{'consumer':<24}{'pending':>9}{'working':>9}{'dead':>7}{'untaken':>9}  oldest waiting")
                for d in data:
                    age = "-" if d["oldest_waiting_s"] is None else f"{float(d['oldest_waiting_s']):.1f}s"
                    print(f"{d['consumer']:<24}{d['pending']:>9}{d['working']:>9}{d['dead']:>7}{d['untaken']:>9}  {age}")
            return 0
        if args.action == "replay":
            end = args.end or datetime.now(timezone.utc)
            if end <= args.start:
                raise BrainError("--to must be after --from")
            rows = conn.execute(q["replay"], {"start": args.start, "end": end, "topics": args.topic,
                                              "correlation": args.correlation}).fetchall()
            cols: tuple[str, ...] = ("id", "created_at", "topic", "from_agent", "to_agent", "correlation_id", "causation_id", "payload")
            data = [dict(zip(cols, r)) for r in rows]
            if args.json:
                print_json(data)
            else:
                for d in data:
                    print(f"{d['id']:>8} {d['created_at']:%Y-%m-%d %H:%M:%S.%f} {d['topic']:<20} "
                          f"{d['from_agent']:<16} {d['correlation_id'] or '-':<14} {json.dumps(d['payload'])}")
                print(f"{len(data)} messages")
            return 0
        if args.action == "dead":
            rows = conn.execute(q["dead_letters"], {"consumer": args.consumer}).fetchall()
            cols = ("consumer", "message_id", "topic", "attempts", "last_error", "created_at")
            data = [dict(zip(cols, r)) for r in rows]
            if args.json:
                print_json(data)
            else:
                for d in data:
                    print(f"{d['message_id']:>8} {d['consumer']:<20} {d['topic']:<20} x{d['attempts']}  {d['last_error']}")
                print(f"{len(data)} dead letters")
            return 0
        # redrive
        count = conn.execute(q["redrive"], {"consumer": args.consumer, "ids": args.message}).rowcount
        print(f"{count} dead letters sent back to {args.consumer}")
        return 0
