"""`brainctl costs [--since] [--by route|agent|skill|model] [--json]`: where the money went."""
from __future__ import annotations

import argparse

from brain.cli.ctl_bus import _when
from brain.sql import queries_beside

Q = queries_beside(__file__, "ctl_costs.sql")

BY = ("route", "agent", "skill", "model", "day")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_when, default=None, help="ISO time or 15m/2h/1d ago (default: today)")
    parser.add_argument("--by", choices=BY, default="route")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from brain.cli.common import print_json
    from brain.config import settings
    from brain.db.connect import connect_sync

    since = args.since or datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    query = Q[f"costs_by_{args.by}"]  # one fixed query per grouping in BY
    with connect_sync(settings(), "operator") as conn:
        rows = conn.execute(query, (since,)).fetchall()
    cols = ("key", "calls", "failed", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cost_usd", "avg_latency_ms")
    data = [dict(zip(cols, r)) for r in rows]
    if args.json:
        print_json({"since": since, "by": args.by, "rows": data, "total_usd": sum(d["cost_usd"] for d in data)})
        return 0
    print(f"model calls since {since:%Y-%m-%d %H:%M} UTC, by {args.by}")
    print(f"{args.by:<24}{'calls':>7}{'failed':>7}{'in':>10}{'out':>9}{'cached':>10}{'cost $':>11}{'avg ms':>9}")
    for d in data:
        print(f"{str(d['key']):<24}{d['calls']:>7}{d['failed']:>7}{d['input_tokens']:>10}{d['output_tokens']:>9}"
              f"{d['cache_read_tokens']:>10}{d['cost_usd']:>11.4f}{d['avg_latency_ms']:>9.0f}")
    print(f"{'total':<24}{sum(d['calls'] for d in data):>7}{'':>45}{sum(d['cost_usd'] for d in data):>11.4f}")
    return 0
