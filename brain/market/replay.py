"""The replay feed: real historical bars through the same path live bars take.

Per bar, one transaction stores the bar, lets the paper broker fill and run stops on it,
and publishes market.bar, market.state and any fills. Each symbol then waits for its cycle
to settle (or paces itself at --speed bars per second) before its next bar; symbols run
side by side.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd

from brain.agents.topics import correlation_for
from brain.broker.fills import fill_messages
from brain.broker.paper import PaperBroker
from brain.bus import Bus, Delivery, Outgoing
from brain.heartbeat import beat
from brain.market.bars import Bar
from brain.market.history import ValidatedHistory, bar_at
from brain.signals.indicators import compute
from brain.signals.state import build_state
from brain.strategy import DEFAULT

log = logging.getLogger("brain.feed")

INSERT_BAR = """INSERT INTO bars (symbol, ts, open, high, low, close, volume, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (symbol, ts) DO NOTHING RETURNING 1"""
SETTLE_TOPICS = ("cycle.outcome", "order.placed")


class SettleTracker:
    """Which cycles have ended (an outcome, or an order waiting for its fill)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def handle(self, d: Delivery) -> None:
        if d.correlation_id:
            self._events[d.correlation_id].set()

    async def wait(self, correlation_id: str, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancellation on 3.11
                await self._events[correlation_id].wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._events.pop(correlation_id, None)


@dataclass
class FeedStats:
    bars: int = 0
    states: int = 0
    skipped_existing: int = 0
    unsettled: int = 0
    fills: int = 0
    bar_published_at: dict[str, float] = field(default_factory=dict)   # correlation -> monotonic time


class ReplayFeed:
    def __init__(self, bus: Bus, broker: PaperBroker, history: ValidatedHistory, tracker: SettleTracker,
                 speed: float | None = None, settle_timeout_s: float = 60.0, start=None,
                 align_threshold: float = DEFAULT.align_threshold) -> None:
        self.bus = bus
        self.broker = broker
        self.history = history
        self.tracker = tracker
        self.speed = speed
        self.settle_timeout_s = settle_timeout_s
        self.align_threshold = align_threshold
        self.stats = FeedStats()
        self._last_beat = 0.0
        # Bars before `start` only warm the indicators up; they are not replayed.
        self.first = {s: (int(f.index.searchsorted(pd.Timestamp(start))) if start is not None else 0)
                      for s, f in history.frames.items()}
        self.total = sum(len(f) - self.first[s] for s, f in history.frames.items())

    async def run(self) -> FeedStats:
        await asyncio.gather(*(self._symbol(s, f) for s, f in self.history.frames.items()))
        return self.stats

    async def _symbol(self, symbol: str, frame: pd.DataFrame) -> None:
        indicators = compute(frame).to_dict("records")
        for i in range(self.first[symbol], len(frame)):
            started = time.monotonic()
            bar = bar_at(symbol, frame, i)
            corr = await self._publish_bar(bar, indicators[i])
            if corr is not None and not await self.tracker.wait(corr, self.settle_timeout_s):
                self.stats.unsettled += 1
                log.warning("cycle %s did not settle within %.0fs; moving on", corr, self.settle_timeout_s)
            if self.speed:
                await asyncio.sleep(max(0.0, 1.0 / self.speed - (time.monotonic() - started)))

    async def _publish_bar(self, bar: Bar, indicators: dict) -> str | None:
        state = build_state(bar, indicators, self.align_threshold)
        corr = correlation_for(bar.symbol, bar.ts)
        async with self.bus.pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(INSERT_BAR, bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close,
                                        bar.volume, bar.source)
            if not fresh:  # already stored: a restart resumes where the last run stopped
                self.stats.skipped_existing += 1
                return None
            fills = await self.broker.on_bar(conn, bar)
            # Addressed to no consumer: the bar is kept in the log, and its state is computed
            # here in one pass rather than by the live signals consumer.
            out = [Outgoing("market.bar", bar, "feed", corr, to_agent="record")]
            if state is not None:
                out.append(Outgoing("market.state", state, "signals", corr))
            out += fill_messages(fills, bar.ts)
            await self.bus.publish_many(out, conn=conn)
            now = time.monotonic()
            if now - self._last_beat >= 0.5:  # the watchdog reads seconds, not bars
                self._last_beat = now
                await beat(conn, "market_data", {"symbol": bar.symbol, "bar": bar.ts.isoformat()})
        self.stats.bars += 1
        self.stats.fills += len(fills)
        if state is None:
            return None
        self.stats.states += 1
        self.stats.bar_published_at[corr] = time.monotonic()
        return corr
