"""The Interactive Brokers broker, through ib_async, against IB Gateway or TWS (paper first).

The book in Postgres mirrors the broker. An order is recorded before it is sent, so the
halt trigger on `orders` keeps the last word; fills arrive as IB execution events and are
stored idempotently by execution id; on every (re)connect the adapter reconciles orders,
fills and positions with what IB reports, and IB is the truth for positions. A bracket is
a market entry with a stop and a take-profit as children, every leg tagged with
orderRef = client order id (plus -stop / -tp), so a redelivered approval or a restarted
brain finds what is already at the broker instead of sending it twice.

The adapter only beats the `broker` heartbeat while the gateway answers: when the gateway
goes away (its nightly restart, a crash), the watchdog sees the beat age and halts, and the
adapter reconnects with backoff on its own.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast

import asyncpg

if TYPE_CHECKING:
    import ib_async

    from brain.market.bars import Bar

from brain.aio import Tasks
from brain.broker.base import BracketOrder, Fill, OrderResult
from brain.broker.book import bracket_levels, record_bracket, round_trip_pnl
from brain.broker.fills import fill_messages
from brain.bus import Outgoing
from brain.db.types import Conn, Queryable
from brain.errors import BrainError, one_line
from brain.heartbeat import beat
from brain.sql import queries_beside

Q = queries_beside(__file__, "paper.sql") | queries_beside(__file__, "ib.sql")
log = logging.getLogger("brain.broker.ib")
BOOK = "ib"                      # the key of this broker's book in `accounts` and `positions`
DEAD_STATES = {"Cancelled", "ApiCancelled", "Inactive"}
# An order is sent to IB inside the transaction that records it, and IB may fill it before
# that transaction commits: its execution waits this long for the order row to appear.
ORDER_ROW_WAIT_S = 10.0
CONTRACT_LOOKUP_S = 10.0
# IB reports an execution's commission in a message of its own, just after the execution.
COMMISSION_WAIT_S = 2.0
# What ib_async raises for requests in flight when the gateway goes away.
GATEWAY_GONE = (ConnectionError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class IBConfig:
    host: str = "127.0.0.1"
    port: int = 4002                   # IB Gateway, paper
    client_id: int = 11
    account: str = ""                  # the IB account code; empty: the gateway's only account
    connect_timeout_s: float = 10.0
    reconnect_max_s: float = 60.0
    heartbeat_s: float = 1.0


def stock(symbol: str) -> ib_async.Stock:
    from ib_async import Stock

    return Stock(symbol, "SMART", "USD")


def bracket_legs(ib: ib_async.IB, order: BracketOrder) -> list[ib_async.Order]:
    """Market entry, take-profit and stop; only the last leg transmits, so IB receives the
    three together and never holds an entry without its exits."""
    from ib_async import LimitOrder, MarketOrder, StopOrder

    action, reverse = ("BUY", "SELL") if order.side == "buy" else ("SELL", "BUY")
    coid = order.client_order_id
    parent = MarketOrder(action, order.qty, orderId=ib.client.getReqId(), orderRef=coid, tif="DAY",
                         transmit=False)
    take_profit = LimitOrder(reverse, order.qty, round(order.take_profit, 2), orderId=ib.client.getReqId(),
                             parentId=parent.orderId, orderRef=f"{coid}-tp", tif="GTC", transmit=False)
    stop = StopOrder(reverse, order.qty, round(order.stop, 2), orderId=ib.client.getReqId(),
                     parentId=parent.orderId, orderRef=f"{coid}-stop", tif="GTC", transmit=True)
    return [parent, take_profit, stop]


class IBBroker:
    name = "ib"
    account = BOOK

    def __init__(self, ib: ib_async.IB, cfg: IBConfig, pool: asyncpg.Pool,
                 publish: Callable[[list[Outgoing], Conn], Awaitable[object]] | None = None,
                 starting_cash: float = 0.0) -> None:
        self.ib = ib
        self.cfg = cfg
        self.pool = pool
        # publish(outgoing list, conn): how fills reach the bus (order.filled, cycle.outcome).
        self.publish = publish
        self.starting_cash = starting_cash
        self._contracts: dict[str, ib_async.Contract] = {}
        # Database work for IB's events, run one at a time in arrival order (see _spawn).
        self._events = Tasks("IB")
        self._serial = asyncio.Lock()
        self._hooked = False
        self._last_equity_row = 0.0
        self.connections = 0                   # completed connects, each reconciled
        self.last_reconcile: list[str] = []    # what the latest reconciliation found

    # ------------------------------------------------------------------ connection
    async def connect(self) -> list[str]:
        """Connect, subscribe to executions, reconcile; returns what reconciliation found."""
        try:
            await self.ib.connectAsync(self.cfg.host, self.cfg.port, clientId=self.cfg.client_id,
                                       timeout=self.cfg.connect_timeout_s, account=self.cfg.account)
        except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
            raise BrainError(f"IB gateway at {self.cfg.host}:{self.cfg.port} did not answer "
                             f"(client id {self.cfg.client_id}): {exc or type(exc).__name__}") from None
        if not self._hooked:
            self.ib.execDetailsEvent += self._on_execution
            self.ib.commissionReportEvent += self._on_commission
            self.ib.orderStatusEvent += self._on_status
            self.ib.disconnectedEvent += self._on_disconnect
            self._hooked = True
        async with self.pool.acquire() as conn:
            await conn.execute(Q["ensure_account"], BOOK, self.starting_cash)
            self.last_reconcile = await self.reconcile(conn)
        for problem in self.last_reconcile:
            log.warning("IB reconcile: %s", problem)
        await self.sync_account()
        self.connections += 1
        return self.last_reconcile

    async def run(self) -> None:
        """The adapter's own loop: account and heartbeat while connected, reconnect when not."""
        backoff = 1.0
        while True:
            if self.ib.isConnected():
                try:
                    await self.sync_account()
                except GATEWAY_GONE as exc:  # it went away mid-request: the branch below reconnects
                    log.warning("IB account sync cut short (%s)", one_line(exc) or type(exc).__name__)
                await asyncio.sleep(self.cfg.heartbeat_s)
                continue
            try:
                await self.connect()  # reconciles and syncs the account itself
                log.warning("IB gateway connected again; orders, fills and positions reconciled")
                backoff = 1.0
            except (BrainError, *GATEWAY_GONE) as exc:  # refused, or gone again mid-reconciliation
                log.warning("%s; retrying in %.0fs", one_line(exc) or type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.cfg.reconnect_max_s)

    def _on_disconnect(self) -> None:
        log.warning("IB gateway disconnected; no broker heartbeat until it is back")

    def _spawn(self, coro: Awaitable[object]) -> None:
        # ib_async calls handlers synchronously; the database work runs as a task, kept
        # referenced so it is not collected half-way, and a failure is logged, never lost.
        # One at a time, in arrival order: a commission must find the fill IB sent before it.
        async def in_order() -> object:
            async with self._serial:
                return await coro

        self._events.spawn(in_order(), "event handling", critical=False)

    async def settled(self) -> None:
        """Wait for every execution event received so far to be stored."""
        await self._events.settled()

    # ------------------------------------------------------------------ account
    async def sync_account(self) -> None:
        if not self.ib.isConnected():
            return
        values = {v.tag: v.value for v in self.ib.accountValues(self.cfg.account)
                  if v.currency in ("USD", "BASE", "")}
        async with self.pool.acquire() as conn:
            if "NetLiquidation" in values:
                equity = float(values["NetLiquidation"])
                cash = float(values.get("TotalCashValue", equity))
                gross = float(values.get("GrossPositionValue", 0.0))
                await conn.execute(Q["ib_sync_account"], BOOK, cash, equity, gross)
                if time.monotonic() - self._last_equity_row >= 60:
                    self._last_equity_row = time.monotonic()
                    await conn.execute(Q["record_equity"], BOOK, datetime.now(timezone.utc), equity, cash)
            await beat(conn, "broker", {"broker": "ib", "client_id": self.cfg.client_id,
                                        "account": self.cfg.account or None})

    # ------------------------------------------------------------------ orders
    def _at_broker(self, client_order_id: str) -> bool:
        return any(t.order.orderRef == client_order_id for t in self.ib.trades())

    async def _contract(self, symbol: str) -> ib_async.Contract:
        if symbol not in self._contracts:
            # Bounded: the executor asks this holding the lock every entry decision waits on.
            try:
                qualified = await asyncio.wait_for(self.ib.qualifyContractsAsync(stock(symbol)),
                                                   CONTRACT_LOOKUP_S)
            except asyncio.TimeoutError:
                raise BrainError(f"IB did not describe the stock {symbol!r} within {CONTRACT_LOOKUP_S:.0f}s") \
                    from None
            if not qualified or qualified[0] is None:
                raise BrainError(f"IB does not know the stock {symbol!r} on SMART/USD")
            self._contracts[symbol] = qualified[0]  # type: ignore[assignment]  # a list only with returnAll=True
        return self._contracts[symbol]

    async def place_bracket(self, conn: Conn, order: BracketOrder) -> OrderResult:
        acct = await conn.fetchrow(Q["account"], BOOK)
        if acct is not None and acct["locked"]:
            return OrderResult(order.client_order_id, "rejected", "the broker adapter is locked (L4 halt)")
        if not self.ib.isConnected():
            return OrderResult(order.client_order_id, "rejected", "the IB gateway is not connected")
        try:
            contract = await self._contract(order.symbol)
            async with conn.transaction():  # a savepoint: a refused order leaves the caller's work intact
                if not await record_bracket(conn, order, self.name):
                    return OrderResult(order.client_order_id, "duplicate", "already placed")
                if self._at_broker(order.client_order_id):
                    # Sent before, by a transaction that did not commit: record it, do not resend.
                    return OrderResult(order.client_order_id, "working", "already at IB; recorded, not sent again")
                legs = bracket_legs(self.ib, order)
                for leg in legs:
                    self.ib.placeOrder(contract, leg)
                await conn.execute(Q["ib_order_ids"], order.client_order_id, str(legs[0].orderId))
        except BrainError as exc:  # refused by a halt, or a stock IB does not know
            return OrderResult(order.client_order_id, "rejected", str(exc))
        return OrderResult(order.client_order_id, "working", "bracket sent to IB")

    async def on_bars(self, conn: Conn, bars: Sequence[Bar]) -> list[Fill]:
        return []  # IB fills arrive as execution events, not from bars

    # ------------------------------------------------------------------ executions
    def _on_execution(self, trade: ib_async.Trade, fill: ib_async.Fill) -> None:
        self._spawn(self.record_execution(fill))

    def _on_commission(self, trade: ib_async.Trade, fill: ib_async.Fill, report: ib_async.CommissionReport) -> None:
        self._spawn(self.pool.execute(Q["ib_commission"], f"ib:{report.execId}", report.commission))

    def _on_status(self, trade: ib_async.Trade) -> None:
        if trade.orderStatus.status in DEAD_STATES and trade.order.orderRef:
            self._spawn(self.pool.execute(Q["ib_dead_order"], trade.order.orderRef))

    async def record_execution(self, fill: ib_async.Fill, order_row_wait_s: float = ORDER_ROW_WAIT_S,
                               commission_wait_s: float = COMMISSION_WAIT_S) -> Fill | None:
        """Store one IB execution (idempotent by execution id) and, once its order is complete,
        update the book and publish the fill. Returns the completed fill, if any."""
        ex = fill.execution
        await commissions_reported([fill], commission_wait_s)
        # Without its report in time the fill is booked at $0 and the report corrects the row
        # when it comes; what was published with the fill (its commission, a close's P&L) stays.
        commission = fill.commissionReport.commission if fill.commissionReport else 0.0
        waited, delay = 0.0, 0.05
        while not await self.pool.fetchval(Q["ib_order_known"], ex.orderRef):
            if waited >= order_row_wait_s:
                log.warning("IB execution %s has orderRef %r, which this brain did not place; positions "
                            "reconcile from IB", ex.execId, ex.orderRef)
                return None
            await asyncio.sleep(delay)
            waited, delay = waited + delay, min(delay * 2, 1.0)
        async with self.pool.acquire() as conn, conn.transaction():
            order = await conn.fetchrow(Q["ib_order_for_update"], ex.orderRef)
            assert order is not None  # the wait above found it
            stored = await conn.fetchval(Q["ib_insert_fill"], ex.orderRef, f"ib:{ex.execId}", ex.shares, ex.price,
                                         commission or 0.0, ex.time)
            if not stored:
                return None  # seen before: a replayed event or a reconciliation
            done = await self._apply(conn, order, ex.time, ex.shares)
            if done is not None and self.publish is not None:
                await self.publish(fill_messages([done], ex.time), conn)
            return done

    async def _apply(self, conn: Conn, order: asyncpg.Record, at: datetime, shares: float) -> Fill | None:
        """Book one execution of `shares` on its order, given every execution stored so far."""
        coid, symbol = order["client_order_id"], order["symbol"]
        filled_qty, vwap, commission = cast(asyncpg.Record, await conn.fetchrow(Q["ib_filled_so_far"], coid))  # aggregate
        signed = filled_qty if order["side"] == "buy" else -filled_qty
        complete = filled_qty >= order["qty"] - 1e-9
        if order["intent"] == "open":
            stop, tp = await bracket_levels(conn, coid)
            await conn.execute(Q["upsert_position"], BOOK, symbol, signed, vwap, stop, tp, at)
            if not complete:
                return None
            await conn.execute(Q["mark_filled"], coid, at, vwap)
            await conn.execute(Q["activate_children"], coid)
            return Fill(coid, symbol, order["side"], filled_qty, vwap, commission, at, "open", "entry",
                        order["correlation_id"])
        pos = await conn.fetchrow(Q["position"], BOOK, symbol)
        if not complete:  # a part of a close: the position shrinks by this execution, not by the total so far
            if pos is not None:
                await conn.execute(Q["ib_position_qty"], BOOK, symbol,
                                   pos["qty"] + (shares if order["side"] == "buy" else -shares))
            return None
        await conn.execute(Q["mark_filled"], coid, at, vwap)
        if order["parent_client_order_id"]:
            await conn.execute(Q["cancel_siblings"], order["parent_client_order_id"], coid)
        pnl = None
        if pos is not None:
            pnl = await round_trip_pnl(conn, -signed, vwap, pos["avg_price"], commission,
                                       order["parent_client_order_id"])
            await conn.execute(Q["delete_position"], BOOK, symbol)
        return Fill(coid, symbol, order["side"], filled_qty, vwap, commission, at, "close", order["order_type"],
                    order["correlation_id"], pnl)

    # ------------------------------------------------------------------ reconciliation
    async def reconcile(self, conn: Conn) -> list[str]:
        """Make the book agree with IB after a (re)connect (brain/broker/ib_reconcile.py);
        returns what had to be fixed or what an operator should know."""
        from brain.broker.ib_reconcile import reconcile

        return await reconcile(self, conn)

    async def account_row(self, conn: Queryable) -> asyncpg.Record | None:
        return await conn.fetchrow(Q["account"], BOOK)

    async def positions(self, conn: Queryable) -> list[asyncpg.Record]:
        return await conn.fetch(Q["positions"], BOOK)


async def commissions_reported(fills: Sequence[ib_async.Fill], wait_s: float) -> None:
    """Until IB's commission reports for these executions have come (ib_async writes each into
    its Fill), for at most wait_s: a fill booked before its report would publish a commission
    of $0 and a close's P&L without it."""
    waited, delay = 0.0, 0.01
    while waited < wait_s and not all(f.commissionReport and f.commissionReport.execId for f in fills):
        await asyncio.sleep(delay)
        waited, delay = waited + delay, min(delay * 2, 0.25)
