"""The order book in Postgres that every broker writes first: a bracket's three rows."""
from __future__ import annotations

import asyncpg

from brain.broker.base import BracketOrder
from brain.db.types import Conn
from brain.errors import BrainError
from brain.sql import queries_beside

Q = queries_beside(__file__, "paper.sql")
HALTED = "P0001"   # the sqlstate the orders trigger raises for an opening order under a halt


class OrderRefused(BrainError):
    """The database refused the order (an active halt at L2 or above)."""


async def record_bracket(conn: Conn, order: BracketOrder, broker: str) -> bool:
    """Insert the entry (working) and its stop and take-profit (new until the entry fills).
    False when the client order id is already there: placement is idempotent. The halt
    trigger on `orders` refuses here, as OrderRefused, before any broker sees the order;
    call it inside a savepoint so the refusal leaves the caller's work intact."""
    try:
        parent = await conn.fetchval(
            Q["insert_order"], order.client_order_id, None, order.correlation_id, order.symbol,
            order.side, "open", "market", order.qty, None, None, "working", order.signal_time, broker)
        if parent is None:
            return False
        exit_side = "sell" if order.side == "buy" else "buy"
        for suffix, kind, stop, limit in (("stop", "stop", order.stop, None),
                                          ("tp", "take_profit", None, order.take_profit)):
            await conn.execute(
                Q["insert_order"], f"{order.client_order_id}-{suffix}", order.client_order_id, order.correlation_id,
                order.symbol, exit_side, "close", kind, order.qty, stop, limit, "new", order.signal_time, broker)
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) == HALTED:
            raise OrderRefused(str(exc).splitlines()[0]) from None
        raise
    return True


async def bracket_levels(conn: Conn, client_order_id: str) -> tuple[float | None, float | None]:
    """The stop and take-profit levels of an entry's bracket, for the position it opens."""
    row = await conn.fetchrow(Q["bracket_levels"], f"{client_order_id}-stop", f"{client_order_id}-tp")
    assert row is not None  # a SELECT of two subqueries: always one row
    return row["stop"], row["take_profit"]


async def round_trip_pnl(conn: Conn, held: float, exit_price: float, avg_price: float,
                         exit_commission: float, entry_client_order_id: str | None) -> float:
    """A closed position's P&L: the move on the signed quantity held, less both commissions of
    the round trip (the entry's are on the entry's fills)."""
    paid = await conn.fetchval(Q["commission_paid"], entry_client_order_id) if entry_client_order_id else 0.0
    return held * (exit_price - avg_price) - exit_commission - paid
