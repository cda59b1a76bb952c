"""Reads the agents share: a stored message, the latest bars, the account."""
from __future__ import annotations

import json

from brain.broker.base import Broker
from brain.db.types import Queryable
from brain.risk.gate import Account
from brain.signals.state import MarketState


async def market_state(conn: Queryable, message_id: int) -> MarketState:
    """The market.state message as stored: agents re-read it rather than trust a copy."""
    raw = await conn.fetchval("SELECT payload::text FROM agent_messages WHERE id = $1 AND topic = 'market.state'",
                              message_id)
    if raw is None:
        raise LookupError(f"market.state message {message_id} not found")
    return MarketState.model_validate(json.loads(raw))


# Entry orders placed and not filled yet: the paper broker fills them at the next bar's open,
# IB when it does, and until then `positions` does not show them.
_ENTERING = "FROM orders WHERE broker = $1 AND intent = 'open' AND status IN ('new', 'working')"
ENTERING = f"SELECT symbol, sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) AS qty {_ENTERING} GROUP BY symbol"
HOLDING = (f"SELECT EXISTS (SELECT 1 FROM positions WHERE account = $3 AND symbol = $2) "
           f"OR EXISTS (SELECT 1 {_ENTERING} AND symbol = $2)")


async def account(conn: Queryable, broker: Broker) -> Account:
    """The account as the risk limits see it: what is held, and what is being entered."""
    row = await broker.account_row(conn)
    # Entries first: an entry that fills between the two reads is then seen once or twice,
    # never missed.
    entering = await conn.fetch(ENTERING, broker.name)
    held = {p["symbol"]: p["qty"] for p in await broker.positions(conn)}
    for r in entering:
        held.setdefault(r["symbol"], r["qty"])
    if row is None:
        return Account(equity=broker.starting_cash, cash=broker.starting_cash, high_water_mark=broker.starting_cash,
                       day_start_equity=broker.starting_cash, open_positions=held)
    return Account(equity=row["equity"], cash=row["cash"], high_water_mark=row["high_water_mark"],
                   day_start_equity=row["day_start_equity"], open_positions=held, locked=row["locked"])


async def holding(conn: Queryable, broker: Broker, symbol: str) -> bool:
    """Held, or being entered (see ENTERING)."""
    return await conn.fetchval(HOLDING, broker.name, symbol, broker.account)
