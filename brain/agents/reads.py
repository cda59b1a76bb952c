"""Reads the agents share: a stored message, the latest bars, the account."""
from __future__ import annotations

import json

from brain.broker.base import Broker
from brain.db.types import Queryable
from brain.risk.gate import Account
from brain.signals.state import MarketState
from brain.sql import queries_beside

Q = queries_beside(__file__, "reads.sql")


async def market_state(conn: Queryable, message_id: int) -> MarketState:
    """The market.state message as stored: agents re-read it rather than trust a copy."""
    raw = await conn.fetchval(Q["market_state"], message_id)
    if raw is None:
        raise LookupError(f"market.state message {message_id} not found")
    return MarketState.model_validate(json.loads(raw))


async def account(conn: Queryable, broker: Broker) -> Account:
    """The account as the risk limits see it: what is held, and what is being entered."""
    row = await broker.account_row(conn)
    # Entries first: an entry that fills between the two reads is then seen once or twice,
    # never missed.
    entering = await conn.fetch(Q["entering"], broker.name)
    held = {p["symbol"]: p["qty"] for p in await broker.positions(conn)}
    for r in entering:
        held.setdefault(r["symbol"], r["qty"])
    if row is None:
        return Account(equity=broker.starting_cash, cash=broker.starting_cash, high_water_mark=broker.starting_cash,
                       day_start_equity=broker.starting_cash, open_positions=held)
    return Account(equity=row["equity"], cash=row["cash"], high_water_mark=row["high_water_mark"],
                   day_start_equity=row["day_start_equity"], open_positions=held, locked=row["locked"])


async def holding(conn: Queryable, broker: Broker, symbol: str) -> bool:
    """Held, or being entered (see the entering query in reads.sql)."""
    return await conn.fetchval(Q["holding"], broker.name, symbol, broker.account)
