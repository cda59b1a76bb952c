"""What the night's report is built on, computed by code from the bus log, bars and ledger."""
from __future__ import annotations

import json
from typing import Any
from datetime import date, datetime, timedelta, timezone

from brain.agents.strategist import bracket
from brain.db.types import Queryable
from brain.sql import queries_beside
from brain.strategy import DEFAULT, StrategyParams

Q = queries_beside(__file__, "stats.sql")

HORIZON_BARS = 20   # a counterfactual that touches neither level within this many bars is "neither"


def first_touch(side: str, stop: float, target: float, bars: list) -> str:
    """Which level the bars after a setup reach first: take_profit, stop or neither (the stop
    wins a bar that touches both, as the paper broker assumes)."""
    for open_, high, low in bars:
        if side == "buy":
            if open_ <= stop or low <= stop:
                return "stop"
            if open_ >= target or high >= target:
                return "take_profit"
        else:
            if open_ >= stop or high >= stop:
                return "stop"
            if open_ <= target or low <= target:
                return "take_profit"
    return "neither"


async def compute(conn: Queryable, day: date, days: int = 1, params: StrategyParams = DEFAULT) -> dict[str, Any]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    end = start + timedelta(days=days)
    per_role: dict[str, dict] = {}
    for signer, verdict, skill_hash in await conn.fetch(Q["signatures"], start, end):
        r = per_role.setdefault(f"{signer} ({skill_hash[:8]})", {"signed": 0, "vetoes": 0})
        r["signed"] += 1
        r["vetoes"] += verdict == "veto"
    for r in per_role.values():
        r["veto_rate"] = round(r["vetoes"] / r["signed"], 3) if r["signed"] else 0.0

    counterfactuals = {"vetoed": {"take_profit": 0, "stop": 0, "neither": 0},
                       "skipped": {"take_profit": 0, "stop": 0, "neither": 0}}
    proposals = await conn.fetch(Q["proposals"], start, end)
    for _corr, raw, outcome in proposals:
        if outcome != "veto":
            continue
        p = json.loads(raw)
        bars = await conn.fetch(Q["bars_after"], p["symbol"], datetime.fromisoformat(p["bar_time"]), HORIZON_BARS)
        counterfactuals["vetoed"][first_touch(p["side"], p["stop"], p["take_profit"], bars)] += 1
    for (raw,) in await conn.fetch(Q["skipped_setups"], start, end):
        s = json.loads(raw)
        stop, target = bracket(s["signalled_side"], s["close"], s["indicators"]["atr"], params)
        bars = await conn.fetch(Q["bars_after"], s["symbol"], datetime.fromisoformat(s["bar_time"]), HORIZON_BARS)
        counterfactuals["skipped"][first_touch(s["signalled_side"], stop, target, bars)] += 1

    by_regime: dict[str, dict] = {}
    for pnl, regime in await conn.fetch(Q["closed_trades"], start, end):
        r = by_regime.setdefault(regime or "unknown", {"trades": 0, "wins": 0, "pnl": 0.0})
        r["trades"] += 1
        r["wins"] += pnl > 0
        r["pnl"] = round(r["pnl"] + pnl, 2)
    for r in by_regime.values():
        r["win_rate"] = round(r["wins"] / r["trades"], 3)

    contradicted = 0
    trending = await conn.fetch(Q["trending_regimes"], start, end)
    for symbol, bar_time, regime in trending:
        bars = await conn.fetch(Q["bars_after"], symbol, bar_time, 10)
        if len(bars) == 10:
            moved_up = bars[-1]["open"] > bars[0]["open"]
            contradicted += moved_up != (regime == "trending_up")
    fills = await conn.fetchval(Q["fill_count"], start, end)
    costs = {route: round(usd, 6) for route, usd in await conn.fetch(Q["costs_by_route"], start, end)}
    return {
        "period": {"start": start.date().isoformat(), "end": (end - timedelta(days=1)).date().isoformat()},
        "proposals": len(proposals), "per_role": per_role, "counterfactuals": counterfactuals,
        "by_regime": by_regime, "contradicted_regimes": {"trending_calls": len(trending), "contradicted": contradicted},
        "cost_per_fill": {r: round(c / fills, 6) if fills else None for r, c in costs.items()},
        "closed_trades_all_time": await conn.fetchval(Q["closed_trades_all_time"]),
    }
