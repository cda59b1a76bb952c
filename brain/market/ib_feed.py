"""Live bars from Interactive Brokers.

On each (re)connect: the recent history at the configured bar size warms the indicators up
(stored, no cycle started), then IB's 5-second real-time bars are folded into bars of that
size. A finished bar takes the ingress path (validated, stored, market.bar published, the
market-data heartbeat beaten), so the same signals consumer and agents trade on it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    import ib_async

from brain.aio import Tasks
from brain.broker.ib import stock
from brain.bus import Bus
from brain.market.bars import Bar, BarRejected
from brain.market.live_bars import store_live_bar
from brain.sql import queries_beside

log = logging.getLogger("brain.feed.ib")
Q = queries_beside(__file__, "ib_feed.sql")

# IB's names for the historical bar sizes a live bar can have (the setting ib_bar_seconds is
# checked against these keys in brain/config.py).
BAR_SIZES = {60: "1 min", 300: "5 mins", 900: "15 mins", 1800: "30 mins", 3600: "1 hour"}
REALTIME_S = 5   # the only size IB streams


class Aggregator:
    """Folds 5-second bars into bars of `seconds`, labelled by their start. A bar is finished
    when the first 5-second bar of the next period arrives."""

    def __init__(self, symbol: str, seconds: int) -> None:
        self.symbol = symbol
        self.seconds = seconds
        self._open: list | None = None   # [start, open, high, low, close, volume]

    def add(self, t: datetime, o: float, h: float, lo: float, c: float, v: float) -> Bar | None:
        start = int(t.timestamp()) // self.seconds * self.seconds
        cur = self._open
        if cur is None or start > cur[0]:
            self._open = [start, o, h, lo, c, max(v, 0.0)]
            return None if cur is None else self._bar(cur)
        if start == cur[0]:
            cur[2], cur[3], cur[4], cur[5] = max(cur[2], h), min(cur[3], lo), c, cur[5] + max(v, 0.0)
        return None  # a late 5-second bar of a period already finished is dropped

    def _bar(self, cur: list) -> Bar:
        return Bar(symbol=self.symbol, ts=datetime.fromtimestamp(cur[0], timezone.utc), open=cur[1], high=cur[2],
                   low=cur[3], close=cur[4], volume=cur[5], source="ib")


def _utc(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise BarRejected(f"IB bar time {value!r} is not a date")


class IBBarFeed:
    def __init__(self, ib: ib_async.IB, pool: asyncpg.Pool, bus: Bus, symbols: list[str], bar_seconds: int = 300,
                 history_duration: str = "10 D") -> None:
        self.ib, self.pool, self.bus = ib, pool, bus
        self.symbols = symbols
        self.bar_seconds = bar_seconds
        self.history_duration = history_duration
        self.aggregators = {s: Aggregator(s, bar_seconds) for s in symbols}
        # A finished bar is stored (and its cycle started) as a task: IB's events are synchronous.
        self._stores = Tasks("IB bars")

    async def subscribe(self) -> None:
        """Warm up from history and stream; call after every (re)connect."""
        for symbol in self.symbols:
            [contract] = await self.ib.qualifyContractsAsync(stock(symbol))
            if contract is None:
                log.error("IB does not know the stock %r on SMART/USD; no bars for it", symbol)
                continue
            history = await self.ib.reqHistoricalDataAsync(
                contract, endDateTime="", durationStr=self.history_duration,  # type: ignore[arg-type]  # a list only with returnAll
                barSizeSetting=BAR_SIZES[self.bar_seconds], whatToShow="TRADES", useRTH=True, formatDate=2)
            warm = 0
            forming = datetime.now(timezone.utc) - timedelta(seconds=self.bar_seconds)
            for b in history:
                if _utc(b.date) > forming:
                    # Still forming: history during the session ends with the bar in progress.
                    # The stream finishes it, stores it whole and starts its cycle.
                    continue
                warm += await self._store(Bar(symbol=symbol, ts=_utc(b.date), open=b.open, high=b.high, low=b.low,
                                              close=b.close, volume=max(b.volume, 0.0), source="ib"), publish=False)
            # Regular trading hours only, like the history above: the indicators and every
            # backtest know no pre-market or after-hours bar, and their thin prices are no
            # place to trade on.
            stream = self.ib.reqRealTimeBars(contract, REALTIME_S, "TRADES", True)  # type: ignore[arg-type]  # a list only with returnAll
            stream.updateEvent += self._on_update(symbol)
            log.info("IB bars for %s: %d history bars stored, streaming %ds bars", symbol, warm, self.bar_seconds)

    def _on_update(self, symbol: str) -> Callable[[ib_async.RealTimeBarList, bool], None]:
        def handle(bars: ib_async.RealTimeBarList, has_new_bar: bool) -> None:
            if not has_new_bar or not bars:
                return
            rt = bars[-1]
            done = self.aggregators[symbol].add(_utc(rt.time), rt.open_, rt.high, rt.low, rt.close, rt.volume)
            if done is not None:
                # A failure is logged: the bar is missing until a reconnect re-reads the history.
                self._stores.spawn(self._store(done, publish=True), f"storing {symbol} {done.ts:%Y-%m-%d %H:%M}",
                                   critical=False)

        return handle

    async def _store(self, bar: Bar, publish: bool) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(Q["bar_stored"], bar.symbol, bar.ts):
                return 0  # already stored: a reconnect re-reads history it has
            try:
                await store_live_bar(conn, self.bus, bar, publish=publish)
            except BarRejected as exc:
                log.warning("IB bar %s %s rejected: %s", bar.symbol, bar.ts, exc)
                return 0
        return 1

    async def settled(self) -> None:
        await self._stores.settled()
