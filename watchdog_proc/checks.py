"""The invariants. Each check reads the database and returns breaches with their evidence;
the levels and the hard limits are constants here, not settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from brain.config import Settings
from brain.risk import limits
from brain.sql import load_queries

Q = load_queries(Path(__file__).with_name("checks.sql"))

L1, L2, L3, L4 = 1, 2, 3, 4


@dataclass(frozen=True)
class Breach:
    invariant: str
    level: int
    reason: str
    evidence: dict = field(default_factory=dict)


def run_checks(conn: psycopg.Connection[Any], s: Settings) -> list[Breach]:
    out: list[Breach] = []
    beats = {name: (age, stopped) for name, age, stopped in conn.execute(Q["heartbeats"]).fetchall()}
    # A brain the operator stopped cleanly is not a breach, and neither are the broker and
    # market data it fed; a killed or hung one never gets to say so, and is halted.
    brain_stopped = beats.get("brain", (None, False))[1]
    for name, stale, level in (("brain", s.heartbeat_stale_s, L3), ("broker", s.broker_stale_s, L3),
                               ("market_data", s.market_data_stale_s, L1)):
        age = beats.get(name, (None, False))[0]
        if age is None or brain_stopped:
            continue  # nothing to watch until a brain has started (again)
        if age > stale:
            out.append(Breach(f"{name}_heartbeat", level,
                              f"no {name.replace('_', ' ')} heartbeat for {age:.1f}s (limit {stale:.1f}s)",
                              {"age_s": round(age, 3), "limit_s": stale}))

    acct = conn.execute(Q["account"], (s.book,)).fetchone()
    if acct is not None:
        equity, hwm, day_start, margin, _locked = acct
        drawdown = 1 - equity / hwm if hwm > 0 else 0.0
        if drawdown >= limits.MAX_DRAWDOWN:
            out.append(Breach("max_drawdown", L4, f"drawdown {drawdown:.2%} from the high-water mark reached the "
                              f"{limits.MAX_DRAWDOWN:.0%} cap", {"equity": equity, "high_water_mark": hwm,
                                                                 "drawdown": round(drawdown, 6)}))
        day = (equity - day_start) / day_start if day_start > 0 else 0.0
        if day <= limits.DAILY_LOSS_BLOCK:
            out.append(Breach("daily_loss", L2, f"today's loss {day:.2%} reached the {limits.DAILY_LOSS_BLOCK:.0%} block",
                              {"equity": equity, "day_start_equity": day_start, "day_pnl": round(day, 6)}))
        utilisation = margin / equity if equity > 0 else float("inf")
        if utilisation > s.max_margin_utilisation:
            out.append(Breach("margin_utilisation", L2, f"gross exposure is {utilisation:.2f}x equity "
                              f"(limit {s.max_margin_utilisation:.2f}x)", {"margin_used": margin, "equity": equity}))

    naked = conn.execute(Q["positions_without_stop"], (s.book,)).fetchall()
    if naked:
        out.append(Breach("position_without_stop", L3, f"{len(naked)} open position(s) without a working stop: "
                          + ", ".join(sym for sym, _ in naked), {"positions": {sym: qty for sym, qty in naked}}))

    bus = conn.execute(Q["bus"]).fetchone()
    assert bus is not None  # an aggregate: always one row
    dead, oldest = bus
    if dead:
        out.append(Breach("dead_letters", L1, f"{dead} bus deliveries are dead-lettered", {"dead": dead}))
    if oldest > s.backlog_age_s:
        out.append(Breach("bus_backlog", L2, f"a bus message has waited {oldest:.0f}s (limit {s.backlog_age_s:.0f}s)",
                          {"oldest_waiting_s": round(oldest, 3)}))

    spend = conn.execute(Q["spend_today"]).fetchone()
    assert spend is not None  # an aggregate: always one row
    spent = spend[0]
    if spent >= s.router_daily_budget_usd > 0:
        out.append(Breach("model_budget", L2, f"model spend today ${spent:.2f} reached the ${s.router_daily_budget_usd:.2f} budget",
                          {"spent_usd": round(spent, 6), "budget_usd": s.router_daily_budget_usd}))
    return out
