"""The paper broker: fills simulated from bars, the book kept in Postgres.

Market entries fill at the next bar's open with slippage and a per-share commission. The
bracket's stop and take-profit are checked on each bar's range: a gap through a level fills
at the open, a touch fills at the level, and when a bar touches both the stop is assumed to
have come first (the conservative reading of a daily bar).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import asyncpg

from brain.broker.base import BracketOrder, Fill, OrderResult
from brain.broker.book import OrderRefused, bracket_levels, record_bracket, round_trip_pnl
from brain.db.types import Conn, Queryable
from brain.market.bars import Bar
from brain.sql import queries_beside

Q = queries_beside(__file__, "paper.sql")


@dataclass(frozen=True)
class PaperCosts:
    slippage_bps: float = 2.0
    commission_per_share: float = 0.005
    commission_min: float = 1.0

    def commission(self, qty: float) -> float:
        return max(self.commission_min, abs(qty) * self.commission_per_share)

    def slipped(self, price: float, side: str) -> float:
        factor = self.slippage_bps / 10_000
        return price * (1 + factor) if side == "buy" else price * (1 - factor)


class PaperBroker:
    name = "paper"

    def __init__(self, account: str = "paper", starting_cash: float = 100_000.0,
                 costs: PaperCosts | None = None) -> None:
        self.account = account
        self.starting_cash = starting_cash
        self.costs = costs or PaperCosts()

    async def ensure_account(self, conn: Conn) -> None:
        await conn.execute(Q["ensure_account"], self.account, self.starting_cash)

    async def place_bracket(self, conn: Conn, order: BracketOrder) -> OrderResult:
        """Record the entry with its stop and take-profit attached; idempotent by client id."""
        acct = await conn.fetchrow(Q["account"], self.account)
        if acct is not None and acct["locked"]:
            return OrderResult(order.client_order_id, "rejected", "the broker adapter is locked (L4 halt)")
        try:
            async with conn.transaction():  # a savepoint: a refused order leaves the caller's work intact
                if not await record_bracket(conn, order, self.name):
                    return OrderResult(order.client_order_id, "duplicate", "already placed")
        except OrderRefused as exc:
            return OrderResult(order.client_order_id, "rejected", str(exc))
        return OrderResult(order.client_order_id, "working", "bracket recorded; fills at the next bar's open")

    async def on_bars(self, conn: Conn, bars: Sequence[Bar]) -> list[Fill]:
        """Apply the bars of one moment (one per symbol, as a replay step brings them): fill
        due entries at each bar's open, run stops and take-profits on its range, then mark the
        account to market. Call inside the transaction storing the bars. The book is read once
        for all of them, so a step costs a few statements rather than a few per bar."""
        if not bars:
            return []
        by_symbol = {b.symbol: b for b in bars}
        if len(by_symbol) != len(bars):
            raise ValueError("on_bars takes one bar per symbol")
        acct = await conn.fetchrow(Q["account_for_update"], self.account)
        if acct is None:
            await self.ensure_account(conn)
            acct = await conn.fetchrow(Q["account_for_update"], self.account)
        assert acct is not None  # ensure_account made it
        cash = acct["cash"]
        day_start, day = acct["day_start_equity"], acct["day"]
        now = max(b.ts for b in bars)
        if now.date() > day or (now.date() < day and not await conn.fetchval(Q["bars_after"], now)):
            # A new day; or an earlier one that nothing stored has passed yet (a replay of old
            # bars into a fresh account). A late bar of a day others have left is not.
            day_start, day = acct["equity"], now.date()
        positions = {p["symbol"]: dict(p) for p in await conn.fetch(Q["positions_for_update"], self.account)}
        fills: list[Fill] = []
        for entry in await conn.fetch(Q["entries_due"], list(by_symbol), [b.ts for b in bars]):
            fill, cash, positions[entry["symbol"]] = await self._fill_entry(conn, entry, by_symbol[entry["symbol"]], cash)
            fills.append(fill)
        held = [b for b in bars if b.symbol in positions]
        exits: dict[str, dict[str, asyncpg.Record]] = {}
        if held:  # read after the entries: a bracket's stop may be hit on its entry's own bar
            for o in await conn.fetch(Q["exit_orders"], [b.symbol for b in held]):
                exits.setdefault(o["symbol"], {})[o["order_type"]] = o
        for bar in held:
            exit_fill, cash = await self._run_exits(conn, bar, positions[bar.symbol], exits.get(bar.symbol, {}), cash)
            if exit_fill is not None:
                fills.append(exit_fill)
                del positions[bar.symbol]
        await self._mark_to_market(conn, cash, day_start, day, now, bars, positions)
        return fills

    async def _fill_entry(self, conn: Conn, entry: asyncpg.Record, bar: Bar,
                          cash: float) -> tuple[Fill, float, dict[str, Any]]:
        side, qty = entry["side"], entry["qty"]
        price = self.costs.slipped(bar.open, side)
        commission = self.costs.commission(qty)
        signed = qty if side == "buy" else -qty
        cash -= signed * price + commission
        coid = entry["client_order_id"]
        await conn.execute(Q["mark_filled"], coid, bar.ts, price)
        await conn.execute(Q["insert_fill"], coid, f"paper:{coid}", qty, price, commission, bar.ts)
        await conn.execute(Q["activate_children"], coid)
        stop, tp = await bracket_levels(conn, coid)
        await conn.execute(Q["upsert_position"], self.account, bar.symbol, signed, price, stop, tp, bar.ts)
        position = {"symbol": bar.symbol, "qty": signed, "avg_price": price, "stop_price": stop, "take_profit": tp}
        return Fill(coid, bar.symbol, side, qty, price, commission, bar.ts, "open", "entry",
                    entry["correlation_id"]), cash, position

    async def _run_exits(self, conn: Conn, bar: Bar, pos: dict[str, Any], orders: dict[str, asyncpg.Record],
                         cash: float) -> tuple[Fill | None, float]:
        long = pos["qty"] > 0
        hit: tuple[str, float] | None = None
        stop = orders.get("stop")
        tp = orders.get("take_profit")
        if stop is not None:
            level = stop["stop_price"]
            if (long and bar.open <= level) or (not long and bar.open >= level):
                hit = ("stop", bar.open)
            elif (long and bar.low <= level) or (not long and bar.high >= level):
                hit = ("stop", level)
        if hit is None and tp is not None:
            level = tp["limit_price"]
            if (long and bar.open >= level) or (not long and bar.open <= level):
                hit = ("take_profit", bar.open)
            elif (long and bar.high >= level) or (not long and bar.low <= level):
                hit = ("take_profit", level)
        if hit is None:
            return None, cash
        kind, level = hit
        order = orders[kind]
        side: Literal["buy", "sell"] = "sell" if long else "buy"
        qty = abs(pos["qty"])
        price = self.costs.slipped(level, side) if kind == "stop" else level  # stops slip, limits do not
        commission = self.costs.commission(qty)
        cash -= (-pos["qty"]) * price + commission
        pnl = await round_trip_pnl(conn, pos["qty"], price, pos["avg_price"], commission,
                                   order["parent_client_order_id"])
        coid = order["client_order_id"]
        await conn.execute(Q["mark_filled"], coid, bar.ts, price)
        await conn.execute(Q["insert_fill"], coid, f"paper:{coid}", qty, price, commission, bar.ts)
        await conn.execute(Q["cancel_siblings"], order["parent_client_order_id"], coid)
        await conn.execute(Q["delete_position"], self.account, bar.symbol)
        return Fill(coid, bar.symbol, side, qty, price, commission, bar.ts, "close", kind,
                    order["correlation_id"], pnl), cash

    async def _mark_to_market(self, conn: Conn, cash: float, day_start: float, day: date, now: datetime,
                              bars: Sequence[Bar], positions: dict[str, dict[str, Any]]) -> None:
        closes = {b.symbol: b.close for b in bars}
        others = [s for s in positions if s not in closes]
        if others:  # held symbols without a bar now are valued at their last stored close
            closes.update({r["symbol"]: r["close"] for r in await conn.fetch(Q["latest_closes"], others)})
        value = sum(p["qty"] * closes.get(s, p["avg_price"]) for s, p in positions.items())
        gross = sum(abs(p["qty"]) * closes.get(s, p["avg_price"]) for s, p in positions.items())
        await conn.execute(Q["update_account"], self.account, cash, cash + value, day_start, day, gross)
        await conn.execute(Q["record_equity"], self.account, now, cash + value, cash)

    async def reconcile(self, conn: Conn) -> list[str]:
        """On start: every filled entry has its position, every position its working stop."""
        problems = []
        positions = {p["symbol"]: p for p in await conn.fetch(Q["positions"], self.account)}
        for symbol, p in positions.items():
            if p["stop_price"] is None:
                problems.append(f"{symbol}: position without a stop")
        return problems

    async def account_row(self, conn: Queryable) -> asyncpg.Record | None:
        return await conn.fetchrow(Q["account"], self.account)

    async def positions(self, conn: Queryable) -> list[asyncpg.Record]:
        return await conn.fetch(Q["positions"], self.account)
