"""What the night's report is built on, computed by code from the bus log, bars and ledger."""
from __future__ import annotations

import json
from typing import Any
from datetime import date, datetime, timedelta, timezone

from brain.agents.strategist import bracket
from brain.db.types import Queryable
from brain.strategy import DEFAULT, StrategyParams

HORIZON_BARS = 20   # a counterfactual that touches neither level within this many bars is "neither"

PROPOSALS = """SELECT p.correlation_id, p.payload::text,
       (SELECT o.payload->>'outcome' FROM agent_messages o WHERE o.topic = 'cycle.outcome'
         AND o.correlation_id = p.correlation_id ORDER BY o.id DESC LIMIT 1) AS outcome
  FROM agent_messages p WHERE p.topic = 'trade.proposal' AND p.created_at >= $1 AND p.created_at < $2"""
SIGNATURES = """SELECT s.payload->>'signer', s.payload->>'verdict', coalesce(s.payload->'call'->>'skill_hash', 'code')
  FROM agent_messages s WHERE s.topic = 'trade.signature' AND s.created_at >= $1 AND s.created_at < $2"""
SKIPPED_SETUPS = """SELECT st.payload::text FROM agent_messages k
  JOIN agent_messages st ON st.topic = 'market.state' AND st.correlation_id = k.correlation_id
 WHERE k.topic = 'trade.skip' AND k.created_at >= $1 AND k.created_at < $2
   AND st.payload->>'signalled_side' IS NOT NULL"""
CLOSED = """SELECT (c.payload->>'pnl')::float8, p.payload->>'regime' FROM agent_messages c
  JOIN orders o ON o.client_order_id = c.payload->>'client_order_id'
  JOIN orders parent ON parent.client_order_id = o.parent_client_order_id
  JOIN agent_messages p ON p.topic = 'trade.proposal' AND p.correlation_id = parent.correlation_id
 WHERE c.topic = 'order.filled' AND c.payload->>'intent' = 'close' AND c.created_at >= $1 AND c.created_at < $2"""
ALL_CLOSED = "SELECT count(*) FROM agent_messages WHERE topic = 'order.filled' AND payload->>'intent' = 'close'"
COSTS = """SELECT route, coalesce(sum(cost_usd), 0)::float8 FROM llm_cost_ledger
            WHERE created_at >= $1 AND created_at < $2 GROUP BY 1"""
FILLS = "SELECT count(*) FROM fills WHERE created_at >= $1 AND created_at < $2"
BARS_AFTER = "SELECT open, high, low FROM bars WHERE symbol = $1 AND ts > $2 ORDER BY ts LIMIT $3"
REGIMES = """SELECT a.payload->>'symbol', (a.payload->>'bar_time')::timestamptz, a.payload->>'regime'
  FROM agent_messages a WHERE a.topic = 'regime.assessment' AND a.created_at >= $1 AND a.created_at < $2
   AND a.payload->>'regime' LIKE 'trending%'"""


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
    for signer, verdict, skill_hash in await conn.fetch(SIGNATURES, start, end):
        r = per_role.setdefault(f"{signer} ({skill_hash[:8]})", {"signed": 0, "vetoes": 0})
        r["signed"] += 1
        r["vetoes"] += verdict == "veto"
    for r in per_role.values():
        r["veto_rate"] = round(r["vetoes"] / r["signed"], 3) if r["signed"] else 0.0

    counterfactuals = {"vetoed": {"take_profit": 0, "stop": 0, "neither": 0},
                       "skipped": {"take_profit": 0, "stop": 0, "neither": 0}}
    proposals = await conn.fetch(PROPOSALS, start, end)
    for _corr, raw, outcome in proposals:
        if outcome != "veto":
            continue
        p = json.loads(raw)
        bars = await conn.fetch(BARS_AFTER, p["symbol"], datetime.fromisoformat(p["bar_time"]), HORIZON_BARS)
        counterfactuals["vetoed"][first_touch(p["side"], p["stop"], p["take_profit"], bars)] += 1
    for (raw,) in await conn.fetch(SKIPPED_SETUPS, start, end):
        s = json.loads(raw)
        stop, target = bracket(s["signalled_side"], s["close"], s["indicators"]["atr"], params)
        bars = await conn.fetch(BARS_AFTER, s["symbol"], datetime.fromisoformat(s["bar_time"]), HORIZON_BARS)
        counterfactuals["skipped"][first_touch(s["signalled_side"], stop, target, bars)] += 1

    by_regime: dict[str, dict] = {}
    for pnl, regime in await conn.fetch(CLOSED, start, end):
        r = by_regime.setdefault(regime or "unknown", {"trades": 0, "wins": 0, "pnl": 0.0})
        r["trades"] += 1
        r["wins"] += pnl > 0
        r["pnl"] = round(r["pnl"] + pnl, 2)
    for r in by_regime.values():
        r["win_rate"] = round(r["wins"] / r["trades"], 3)

    contradicted = 0
    trending = await conn.fetch(REGIMES, start, end)
    for symbol, bar_time, regime in trending:
        bars = await conn.fetch(BARS_AFTER, symbol, bar_time, 10)
        if len(bars) == 10:
            moved_up = bars[-1]["open"] > bars[0]["open"]
            contradicted += moved_up != (regime == "trending_up")
    fills = await conn.fetchval(FILLS, start, end)
    costs = {route: round(usd, 6) for route, usd in await conn.fetch(COSTS, start, end)}
    return {
        "period": {"start": start.date().isoformat(), "end": (end - timedelta(days=1)).date().isoformat()},
        "proposals": len(proposals), "per_role": per_role, "counterfactuals": counterfactuals,
        "by_regime": by_regime, "contradicted_regimes": {"trending_calls": len(trending), "contradicted": contradicted},
        "cost_per_fill": {r: round(c / fills, 6) if fills else None for r, c in costs.items()},
        "closed_trades_all_time": await conn.fetchval(ALL_CLOSED),
    }
