"""The optimizer inside the brain: runs on request (brainctl optimize) and nightly."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, cast

import asyncpg
from brain.bus import Bus, Delivery, Handler
from brain.optimizer.run import run_optimizer
from brain.sql import queries_beside
from brain.strategy import StrategyParams
from brain.topics import OptimizerRequest

Q = queries_beside(__file__, "reports.sql")

if TYPE_CHECKING:
    from brain.agents.context import AgentContext


def make_handler(ctx: AgentContext) -> Handler:
    async def handle(d: Delivery) -> None:
        req = cast(OptimizerRequest, d.payload)  # the bus validated it as its topic's model
        await run_optimizer(ctx.pool, ctx.router, ctx.skills, ctx.context_dir, req.day, req.days,
                            StrategyParams.of(ctx.settings))

    return handle


async def nightly(pool: asyncpg.Pool, bus: Bus, hour_utc: int) -> None:
    """At the configured hour, ask for yesterday's report unless one exists."""
    while True:
        now = datetime.now(timezone.utc)
        run_at = now.replace(hour=hour_utc, minute=0, second=0, microsecond=0)
        if run_at <= now:
            run_at += timedelta(days=1)
        await asyncio.sleep((run_at - now).total_seconds())
        yesterday = (run_at - timedelta(days=1)).date()
        if not await pool.fetchval(Q["report_exists_for_day"], yesterday):
            await bus.publish("optimizer.request", OptimizerRequest(day=yesterday, requested_by="schedule"),
                              from_agent="scheduler")
