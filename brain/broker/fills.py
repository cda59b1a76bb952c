"""The bus messages a broker's fills become: order.filled for each, and the cycle's `filled`
outcome for each entry. Shared by the paper broker's replay and the IB adapter."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd

from brain.broker.base import Fill
from brain.topics import CycleOutcome, OrderFilled
from brain.bus import Outgoing


def fill_messages(fills: Iterable[Fill], bar_ts: datetime) -> list[Outgoing]:
    """order.filled for each fill, and the cycle's `filled` outcome for each entry; bar_ts is
    the bar a fill happened on when its correlation id does not name one."""
    out = []
    for f in fills:
        payload = OrderFilled(client_order_id=f.client_order_id, symbol=f.symbol, side=f.side, qty=f.qty,
                              price=round(f.price, 6), commission=round(f.commission, 6), at=f.at, intent=f.intent,
                              reason=f.reason, pnl=None if f.pnl is None else round(f.pnl, 6))
        out.append(Outgoing("order.filled", payload, "broker", f.correlation_id))
        if f.intent == "open":
            out.append(Outgoing("cycle.outcome", CycleOutcome(
                symbol=f.symbol, bar_time=_bar_time(f.correlation_id, bar_ts), outcome="filled", by="broker",
                detail=f"{f.side} {f.qty:.0f} at {f.price:.4f} on {f.at:%Y-%m-%d %H:%M}"),
                "broker", f.correlation_id))
    return out


def _bar_time(correlation_id: str | None, bar_ts: datetime) -> datetime:
    if correlation_id and "@" in correlation_id:
        return pd.Timestamp(correlation_id.split("@", 1)[1]).to_pydatetime()
    return bar_ts
