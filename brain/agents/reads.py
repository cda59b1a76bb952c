"""Reads the agents share: a stored message, the latest bars, the account."""
from __future__ import annotations

import json

import asyncpg

from brain.risk.gate import Account
from brain.signals.state import MarketState


async def market_state(conn: asyncpg.Pool | asyncpg.Connection, message_id: int) -> MarketState:
    """The market.state message as stored: agents re-read it rather than trust a copy."""
    raw = await conn.fetchval("SELECT payload::text FROM agent_messages WHERE id = $1 AND topic = 'market.state'",
                              message_id)
    if raw is None:
        raise LookupError(f"market.state message {message_id} not found")
    return MarketState.model_validate(json.loads(raw))


async def account(conn, broker) -> Account:
    row = await broker.account_row(conn)
    positions = await broker.positions(conn)
    if row is None:
        return Account(equity=broker.starting_cash, cash=broker.starting_cash, high_water_mark=broker.starting_cash,
                       day_start_equity=broker.starting_cash, open_positions={})
    return Account(equity=row["equity"], cash=row["cash"], high_water_mark=row["high_water_mark"],
                   day_start_equity=row["day_start_equity"],
                   open_positions={p["symbol"]: p["qty"] for p in positions}, locked=row["locked"])


async def holding(conn, account_name: str, symbol: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM positions WHERE account = $1 AND symbol = $2",
                                    account_name, symbol))
