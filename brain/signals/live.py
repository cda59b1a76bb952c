"""Signals for live bars (ingress, a broker feed): on each market.bar, recompute the
indicators over the symbol's trailing history and publish market.state. The replay feed
computes its states itself, in one pass, and addresses its bars to no consumer."""
from __future__ import annotations

from typing import cast

import asyncpg
import pandas as pd

from brain.bus import Delivery, Handler, Outgoing
from brain.market.bars import Bar
from brain.topics import correlation_for
from brain.signals.indicators import compute
from brain.signals.state import build_state
from brain.sql import queries_beside
from brain.strategy import DEFAULT

HISTORY_BARS = 400   # enough for a year's percentiles plus the warm-up
Q = queries_beside(__file__, "live.sql")


def make_handler(pool: asyncpg.Pool, align_threshold: float = DEFAULT.align_threshold) -> Handler:
    async def handle(d: Delivery) -> list[Outgoing]:
        bar = cast(Bar, d.payload)  # the bus validated it as its topic's model
        rows = await pool.fetch(Q["trailing_bars"], bar.symbol, bar.ts, HISTORY_BARS)
        frame = pd.DataFrame([dict(r) for r in rows]).set_index("ts").astype(float)
        state = build_state(bar, cast(dict[str, float], compute(frame).iloc[-1].to_dict()), align_threshold)
        if state is None:
            return []  # still warming up: no cycle for this bar
        return [d.reply("market.state", state, from_agent="signals")
                if d.correlation_id else Outgoing("market.state", state, "signals", correlation_for(bar.symbol, bar.ts))]

    return handle
