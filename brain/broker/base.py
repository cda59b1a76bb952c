"""What the executor and the feed need from a broker."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import asyncpg

from brain.db.types import Conn, Queryable
from brain.market.bars import Bar


@dataclass(frozen=True)
class OrderResult:
    client_order_id: str
    status: Literal["working", "filled", "rejected", "duplicate"]
    detail: str = ""


@dataclass(frozen=True)
class Fill:
    client_order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: float
    price: float
    commission: float
    at: datetime
    intent: Literal["open", "close"]
    reason: str                      # entry, stop, take_profit, flatten
    correlation_id: str | None
    pnl: float | None = None         # realised on a closing fill


@dataclass(frozen=True)
class BracketOrder:
    client_order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: float
    stop: float
    take_profit: float
    correlation_id: str
    proposal_id: str
    signal_time: datetime


class Broker(Protocol):
    name: str
    account: str            # the key of its book in `accounts` and `positions`
    starting_cash: float

    async def place_bracket(self, conn: Conn, order: BracketOrder) -> OrderResult: ...

    async def on_bars(self, conn: Conn, bars: Sequence[Bar]) -> list[Fill]: ...

    async def reconcile(self, conn: Conn) -> list[str]: ...

    async def account_row(self, conn: Queryable) -> asyncpg.Record | None: ...

    async def positions(self, conn: Queryable) -> list[asyncpg.Record]: ...
