"""Store a live bar and start its cycle: the one path ingress bars and IB bars both take.

The bar is checked against the symbol's latest stored bar (time strictly increasing, prices
sane), stored, traded on by the paper broker, published as market.bar for the live signals
consumer, and the market-data heartbeat the watchdog reads is beaten, all in the caller's
transaction.
"""
from __future__ import annotations

import asyncpg

from brain.topics import correlation_for
from brain.broker.base import Broker
from brain.broker.fills import fill_messages
from brain.bus import Bus
from brain.db.types import Conn
from brain.heartbeat import beat
from brain.market.bars import Bar, check_bar
from brain.sql import queries_beside

Q = queries_beside(__file__, "live_bars.sql")


async def store_live_bar(conn: Conn, bus: Bus, bar: Bar, publish: bool = True,
                         broker: Broker | None = None) -> int | None:
    """Raises BarRejected for a bad bar (nothing stored); returns the market.bar message id.
    publish=False stores a warm-up bar without starting a cycle on it. A broker given here
    trades on the bar first, as a replay step does: the paper broker fills the entries due at
    its open and runs stops and take-profits on its range (IB fills from its own executions)."""
    latest = await conn.fetchval(Q["latest_bar_time"], bar.symbol)
    check_bar(bar, latest)
    await conn.execute(Q["insert_bar"], bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.source)
    if not publish:
        return None
    if broker is not None:
        await bus.publish_many(fill_messages(await broker.on_bars(conn, [bar]), bar.ts), conn=conn)
    message_id = await bus.publish("market.bar", bar, from_agent=bar.source, conn=conn,
                                   correlation_id=correlation_for(bar.symbol, bar.ts))
    await beat(conn, "market_data", {"symbol": bar.symbol, "bar": bar.ts.isoformat(), "source": bar.source})
    return message_id
