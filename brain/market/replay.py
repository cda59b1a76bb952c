"""The replay feed: real historical bars through the same path live bars take.

The bars of all symbols go out in time order, one timestamp at a time, as a portfolio
would see them. Per timestamp one transaction stores its bars, lets the paper broker fill
and run stops on each, and publishes market.bar, market.state and any fills. The next
timestamp follows after 1/--speed seconds or, by default, as soon as the cycles settle.

Settling matters only for a cycle that can place an order: its order must reach the book
before the symbol's next bar, which fills it at that bar's open. The Strategist proposes only
on a side the deterministic signals name and a stance the computed regime allows, so a bar
that fails either cannot trade, and the feed goes on without waiting for its cycle (which
still ends in its journal outcome).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import pandas as pd

from brain.topics import correlation_for
from brain.broker.fills import fill_messages
from brain.broker.base import Broker
from brain.bus import Bus, Delivery, Outgoing
from brain.heartbeat import beat
from brain.market.bars import Bar
from brain.market.history import ValidatedHistory, bar_at
from brain.signals.indicators import compute
from brain.signals.state import MarketState, build_state
from brain.sql import queries_beside
from brain.strategy import DEFAULT, can_trade

log = logging.getLogger("brain.feed")
Q = queries_beside(__file__, "replay.sql")
SETTLE_TOPICS = ("cycle.outcome", "order.placed")


class SettleTracker:
    """Which of the awaited cycles have ended (an outcome, or an order waiting for its fill)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def expect(self, correlation_id: str) -> None:
        """Register before publishing, so an end that comes quickly is not missed."""
        self._events[correlation_id] = asyncio.Event()

    async def handle(self, d: Delivery) -> None:
        event = self._events.get(d.correlation_id or "")
        if event is not None:
            event.set()

    def forget(self, correlation_id: str) -> None:
        self._events.pop(correlation_id, None)

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
    awaited: int = 0      # cycles that could trade, so the feed waited for them to settle
    skipped_existing: int = 0
    unsettled: int = 0
    fills: int = 0


class ReplayFeed:
    def __init__(self, pool: asyncpg.Pool, bus: Bus, broker: Broker, history: ValidatedHistory,
                 tracker: SettleTracker, speed: float | None = None, settle_timeout_s: float = 60.0,
                 start: datetime | None = None,
                 align_threshold: float = DEFAULT.align_threshold) -> None:
        self.pool = pool
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
        indicators = {s: compute(f).to_dict("records") for s, f in self.history.frames.items()}
        for step in self._timestamps():
            started = time.monotonic()
            bars = [(bar_at(s, self.history.frames[s], i), indicators[s][i]) for s, i in step]
            awaited = await self._publish_step(bars)
            settled = await asyncio.gather(*(self.tracker.wait(c, self.settle_timeout_s) for c in awaited))
            for corr, ok in zip(awaited, settled):
                if not ok:
                    self.stats.unsettled += 1
                    log.warning("cycle %s did not settle within %.0fs; moving on", corr, self.settle_timeout_s)
            if self.speed:
                await asyncio.sleep(max(0.0, 1.0 / self.speed - (time.monotonic() - started)))
        return self.stats

    def _timestamps(self) -> list[list[tuple[str, int]]]:
        """(symbol, row) pairs grouped by timestamp, in time order."""
        steps: dict[pd.Timestamp, list[tuple[str, int]]] = {}
        for symbol, frame in self.history.frames.items():
            for i in range(self.first[symbol], len(frame)):
                steps.setdefault(frame.index[i], []).append((symbol, i))
        return [steps[ts] for ts in sorted(steps)]

    async def _publish_step(self, bars: list[tuple[Bar, dict]]) -> list[str]:
        """Store and publish one timestamp's bars; the correlation ids of the cycles the feed
        must wait for (those that can trade)."""
        cycles = [(bar, build_state(bar, ind, self.align_threshold), correlation_for(bar.symbol, bar.ts))
                  for bar, ind in bars]
        tradable = [corr for _, state, corr in cycles if state is not None and can_trade(state)]
        for corr in tradable:
            self.tracker.expect(corr)
        fresh = await self._store_and_publish(cycles)
        for corr in tradable:
            if corr not in fresh:
                self.tracker.forget(corr)
        self.stats.bars += len(fresh)
        self.stats.skipped_existing += len(cycles) - len(fresh)
        self.stats.states += sum(1 for _, state, corr in cycles if state is not None and corr in fresh)
        awaited = [corr for corr in tradable if corr in fresh]
        self.stats.awaited += len(awaited)
        return awaited

    async def _store_and_publish(self, cycles: list[tuple[Bar, MarketState | None, str]]) -> set[str]:
        """One transaction; the correlation ids of the bars that were new (a restart resumes
        where the last run stopped, so stored bars are passed over)."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = [(b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume, b.source) for b, _, _ in cycles]
            stored = {r["symbol"] for r in await conn.fetch(Q["insert_bars"], *map(list, zip(*rows)))}
            new = [(bar, state, corr) for bar, state, corr in cycles if bar.symbol in stored]
            fills = await self.broker.on_bars(conn, [bar for bar, _, _ in new])
            out = []
            for bar, state, corr in new:
                # Addressed to no consumer: the bar is kept in the log, and its state is computed
                # here in one pass rather than by the live signals consumer.
                out.append(Outgoing("market.bar", bar, "feed", corr, to_agent="record"))
                if state is not None:
                    out.append(Outgoing("market.state", state, "signals", corr))
            out += fill_messages(fills, cycles[0][0].ts)
            await self.bus.publish_many(out, conn=conn)
            now = time.monotonic()
            if new and now - self._last_beat >= 0.5:  # the watchdog reads seconds, not bars
                self._last_beat = now
                last = cycles[-1][0]
                await beat(conn, "market_data", {"symbol": last.symbol, "bar": last.ts.isoformat()})
        self.stats.fills += len(fills)
        return {corr for _, _, corr in new}
