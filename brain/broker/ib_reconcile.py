"""Reconciling the IB book after a (re)connect: executions missed while away are booked,
orders IB no longer works are closed in the book, positions are taken from IB (IB is the
truth for positions), and every difference is said."""
from __future__ import annotations

from typing import TYPE_CHECKING

from brain.broker.ib import BOOK, COMMISSION_WAIT_S, Q, commissions_reported
from brain.db.types import Conn

if TYPE_CHECKING:
    from brain.broker.ib import IBBroker


async def reconcile(broker: IBBroker, conn: Conn) -> list[str]:
    """Make the book agree with IB after a (re)connect; returns what had to be fixed or
    what an operator should know. Executions missed while away are stored; orders IB no
    longer works are closed in the book; positions are taken from IB."""
    problems: list[str] = []
    fills = [f for f in await broker.ib.reqExecutionsAsync() if f.execution.orderRef]
    # Their commission reports follow the answer: one wait for all of them, not one each.
    await commissions_reported(fills, COMMISSION_WAIT_S)
    for fill in fills:
        # What was placed before this reconnect is committed: an unknown orderRef is not ours.
        if await broker.record_execution(fill, order_row_wait_s=0, commission_wait_s=0) is not None:
            problems.append(f"{fill.execution.orderRef}: fill {fill.execution.execId} arrived while away; booked")
    open_refs = {t.order.orderRef for t in await broker.ib.reqAllOpenOrdersAsync() if t.order.orderRef}
    known = {r["client_order_id"] for r in await conn.fetch(Q["ib_all_refs"])}
    for ref in sorted(open_refs - known):
        problems.append(f"IB works an order with orderRef {ref!r} that this brain did not place; left alone")
    for row in await conn.fetch(Q["ib_open_in_book"]):
        # A child not yet live waits for its parent; anything else must be working at IB.
        if row["status"] == "working" and row["client_order_id"] not in open_refs:
            await conn.execute(Q["ib_dead_order"], row["client_order_id"])
            problems.append(f"{row['client_order_id']}: no longer working at IB; marked cancelled")
    at_ib = {p.contract.symbol: p for p in await broker.ib.reqPositionsAsync()
             if (not broker.cfg.account or p.account == broker.cfg.account) and p.position}
    book = {r["symbol"]: r for r in await conn.fetch(Q["positions"], BOOK)}
    for symbol, p in at_ib.items():
        mine = book.get(symbol)
        if mine is None or abs(mine["qty"] - p.position) > 1e-9:
            await conn.execute(Q["ib_take_position"], BOOK, symbol, p.position, p.avgCost)
            problems.append(f"{symbol}: book had {mine['qty'] if mine else 0:g}, IB holds {p.position:g}; "
                            "took IB's")
    for symbol in sorted(set(book) - set(at_ib)):
        await conn.execute(Q["delete_position"], BOOK, symbol)
        problems.append(f"{symbol}: book had {book[symbol]['qty']:g}, IB holds nothing; removed")
    stops = {t.contract.symbol for t in broker.ib.openTrades() if t.order.orderType in ("STP", "STP LMT")}
    for symbol in sorted(set(at_ib) - stops):
        problems.append(f"{symbol}: IB position without a working stop")
    return problems
