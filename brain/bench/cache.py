"""`brain bench cache`: repeated calls of one skill through the Anthropic route, against a
local server that reports usage (and prompt caching) the way the API does: the share of input
tokens that were cache reads."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from brain.bench.model_server import ModelServer
from brain.router.api_routes import AnthropicRoute
from brain.router.prices import PriceTable
from brain.router.router import Router
from brain.skills.parse import parse_skill
from brain.sql import queries_beside

Q = queries_beside(__file__, "cache.sql")


async def run_cache_bench(url: str, skills_dir: Path, philosophy: str, calls: int = 50) -> dict[str, Any]:
    skill = parse_skill(skills_dir / "regime" / "SKILL.md")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        with ModelServer() as server:
            server.answer = {"regime": "ranging", "stance": "neutral", "confidence": 0.5, "rationale": "bench"}
            router = Router(pool, [AnthropicRoute("claude-haiku-5-5", 10, base_url=server.url, api_key="bench")],
                            philosophy, PriceTable())
            for i in range(calls):
                await router.call("regime", skill, {"symbol": "AAPL", "bar": i, "composite": i / calls}, f"bench-{i}")
        row = await pool.fetchrow(Q["anthropic_usage"])
    finally:
        await pool.close()
    assert row is not None  # an aggregate: always one row
    total = row["fresh"] + row["reads"] + row["writes"]
    return {"calls": calls, "input_tokens": total, "cache_read_tokens": row["reads"],
            "cache_read_share": round(row["reads"] / total, 4), "cost_usd": round(row["cost"], 6)}
