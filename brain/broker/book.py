"""The order book in Postgres that every broker writes first: a bracket's three rows."""
from __future__ import annotations

import asyncpg

from brain.broker.base import BracketOrder
from brain.sql import queries_beside

Q = queries_beside(__file__, "paper.sql")


async def record_bracket(conn: asyncpg.Connection, order: BracketOrder, broker: str) -> bool:
    """Insert the entry (working) and its stop and take-profit (new until the entry fills).
    False when the client order id is already there: placement is idempotent. The halt
    trigger on `orders` raises here, before any broker sees the order."""
    parent = await conn.fetchval(
        Q["insert_order"], order.client_order_id, None, order.correlation_id, order.symbol,
        order.side, "open", "market", order.qty, None, None, "working", order.signal_time, broker)
    if parent is None:
        return False
    exit_side = "sell" if order.side == "buy" else "buy"
    for suffix, kind, stop, limit in (("stop", "stop", order.stop, None), ("tp", "take_profit", None, order.take_profit)):
        await conn.execute(
            Q["insert_order"], f"{order.client_order_id}-{suffix}", order.client_order_id, order.correlation_id,
            order.symbol, exit_side, "close", kind, order.qty, stop, limit, "new", order.signal_time, broker)
    return True
