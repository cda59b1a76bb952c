"""`brainctl status`: trading state, halts, heartbeats, breakers, P&L, positions, spend."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

from brain.sql import queries_beside

Q = queries_beside(__file__, "ctl_status.sql")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def gather(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    from brain import halts
    from brain.heartbeat import ages_sync

    beats = ages_sync(conn)
    breakers = {k[8:]: v for k, v in conn.execute(Q["breakers"]).fetchall()}
    # The active book is the one its broker last wrote (paper, or ib when trading through IB).
    acct = conn.execute(Q["active_account"]).fetchone()
    positions = [dict(zip(("symbol", "qty", "avg_price", "stop_price", "take_profit"), r)) for r in conn.execute(
        Q["positions"]).fetchall()]
    spend = conn.execute(Q["spend_today"]).fetchone()
    failed = conn.execute(Q["failed_pages"]).fetchone()
    assert spend is not None and failed is not None  # aggregates: always one row
    pages_failed = failed[0]
    links = conn.execute(Q["links"]).fetchone()
    active = halts.active(conn)
    level = max((h["level"] for h in active), default=0)
    state = {0: "TRADING", 1: "TRADING (alert)", 2: "NO NEW ENTRIES", 3: "STOPPED", 4: "FLATTENED AND LOCKED"}[level]
    return {
        "state": state, "active_halts": active, "heartbeats_age_s": beats, "breakers": breakers,
        "account": None if acct is None else dict(zip(("equity", "cash", "high_water_mark", "day_start_equity",
                                                        "locked"), acct)),
        "today_pnl": None if acct is None else round(acct[0] - acct[3], 2),
        "positions": positions, "spend_today_usd": round(spend[0], 6), "model_calls_today": spend[1],
        "failed_pages": pages_failed,
        "broker": links[0] if links else None, "watchdog_ib_link": links[1] if links else None,
    }


def run(args: argparse.Namespace) -> int:
    from brain.cli.common import print_json
    from brain.config import settings
    from brain.db.connect import connect_sync

    cfg = settings()
    with connect_sync(cfg, "operator") as conn:
        s = gather(conn)
    brain_age = s["heartbeats_age_s"].get("brain")
    s["brain_running"] = brain_age is not None and brain_age <= cfg.heartbeat_stale_s
    if args.json:
        print_json(s)
        return 0
    print(f"state        {s['state']}")
    if not s["brain_running"]:
        beat = s["heartbeats_age_s"].get("brain")
        print("brain        NOT RUNNING" + (f" (last heartbeat {beat:.0f}s ago)" if beat is not None else " (never started)"))
    for h in s["active_halts"]:
        print(f"  halt {h['id']} L{h['level']} {h['invariant']}: {h['reason']} (since {h['raised_at']:%Y-%m-%d %H:%M:%S})")
    beats = s["heartbeats_age_s"]
    print("heartbeats   " + (", ".join(f"{k} {v:.1f}s ago" for k, v in sorted(beats.items())) or "none yet"))
    if "watchdog" in beats:
        print(f"watchdog     last checked {beats['watchdog']:.1f}s ago")
    else:
        print("watchdog     has never checked in: new entries are refused")
    if s["broker"]:
        print(f"broker       {s['broker']}" + (f" (watchdog's own IB link: {s['watchdog_ib_link']})"
                                               if s["watchdog_ib_link"] else ""))
    print("breakers     " + (", ".join(f"{k} {v['state']}" for k, v in s["breakers"].items()) or "all closed"))
    if s["account"]:
        a = s["account"]
        print(f"account      equity {a['equity']:,.2f}, cash {a['cash']:,.2f}, today {s['today_pnl']:+,.2f}"
              + ("  LOCKED" if a["locked"] else ""))
    for p in s["positions"]:
        print(f"  {p['symbol']:<8}{p['qty']:>+10g} @ {p['avg_price']:.4f}  stop {p['stop_price']}  tp {p['take_profit']}")
    print(f"model spend  ${s['spend_today_usd']:.4f} today over {s['model_calls_today']} calls")
    if s["failed_pages"]:
        print(f"paging       {s['failed_pages']} page(s) to the operator FAILED (see operator_pages)")
    return 0
