"""The end-of-run summary `brain up --until-done` and backtests print."""
from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from brain.sql import queries_beside

Q = queries_beside(__file__, "summary.sql")


async def wait_settled(pool: asyncpg.Pool, timeout_s: float = 120.0) -> bool:
    """Until no consumer has anything pending, in flight or not yet taken in."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    quiet = 0
    while loop.time() < deadline:
        if await pool.fetchval(Q["settled"]) == 0:
            quiet += 1
            if quiet >= 3:   # stays empty across a few looks: nothing was mid-handoff
                return True
        else:
            quiet = 0
        await asyncio.sleep(0.2)
    return False


async def summarize(pool: asyncpg.Pool, account: str, starting_cash: float) -> dict[str, Any]:
    outcomes = {r[0]: r[1] for r in await pool.fetch(Q["outcomes"])}
    acct = await pool.fetchrow(Q["account"], account)
    equity = acct["equity"] if acct else starting_cash
    orders = await pool.fetchrow(Q["orders"])
    totals = await pool.fetchrow(Q["model_calls"])
    assert orders is not None and totals is not None  # aggregates: always one row
    calls, cost, failed = totals
    return {
        "cycles": sum(outcomes.values()),
        "outcomes": outcomes,
        "proposals": await pool.fetchval(Q["proposals"]),
        "vetoes_by_role": {r[0]: r[1] for r in await pool.fetch(Q["vetoes_by_role"])},
        "orders": orders["entries"],
        "exits": orders["exits"],
        "fills": await pool.fetchval(Q["fills"]),
        "equity": round(equity, 2),
        "pnl": round(equity - starting_cash, 2),
        "return_pct": round((equity / starting_cash - 1) * 100, 3),
        "max_drawdown_pct": round(float(await pool.fetchval(Q["max_drawdown"], account)) * 100, 3),
        "model_calls": calls,
        "model_calls_failed": failed,
        "model_cost_usd": round(cost, 6),
    }


def print_summary(s: dict[str, Any]) -> None:
    print("\nSummary")
    print(f"  cycles        {s['cycles']}  ({', '.join(f'{k} {v}' for k, v in sorted(s['outcomes'].items())) or 'none'})")
    print(f"  proposals     {s['proposals']}")
    vetoes = ", ".join(f"{k} {v}" for k, v in s["vetoes_by_role"].items()) or "none"
    print(f"  vetoes        {vetoes}")
    print(f"  orders        {s['orders']} entries, {s['exits']} exits, {s['fills']} fills")
    print(f"  P&L           {s['pnl']:+,.2f} ({s['return_pct']:+.2f}%), equity {s['equity']:,.2f}")
    print(f"  max drawdown  {s['max_drawdown_pct']:.2f}%")
    print(f"  model calls   {s['model_calls']} ({s['model_calls_failed']} failed), cost ${s['model_cost_usd']:.4f}")
