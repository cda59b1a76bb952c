"""The watchdog's own line to Interactive Brokers.

It connects with its own client id, so it can cancel and flatten when the brain is dead,
hung or wrong; it shares nothing with the brain's adapter. ib_async's blocking API is used:
the watchdog is a plain loop, and each call waits for IB's answer. It reads every client's
working orders afresh (reqAllOpenOrders); IB lets one client cancel another's orders only
when it is the gateway's Master API client id, so the watchdog's id should be set as that
(the global cancel at L4 needs no such setting).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ib_async

log = logging.getLogger("watchdog")

FLATTEN_PREFIX = "flatten-"
# How long after a closing order filled (all or part) IB's position report may still show
# what it closed. Trusting the report meanwhile would send a second closing order, which
# opens the position again the other way.
FLATTEN_SETTLE_S = 10.0
# Order states in which nothing more will fill.
CANCELLED = ("Cancelled", "ApiCancelled", "Inactive")


def _is_flatten(trade: ib_async.Trade) -> bool:
    return (trade.order.orderRef or "").startswith(FLATTEN_PREFIX)


def _is_entry(trade: ib_async.Trade) -> bool:
    """An opening leg the brain placed: not a stop or take-profit child, not a flatten."""
    return (trade.order.parentId == 0 and not _is_flatten(trade)
            and not (trade.order.orderRef or "").endswith(("-stop", "-tp")))


class IBLink:
    def __init__(self, host: str, port: int, client_id: int, account: str = "", ib: ib_async.IB | None = None) -> None:
        if ib is None:
            from ib_async import IB

            ib = IB()
        self.ib = ib
        self.host, self.port, self.client_id, self.account = host, port, client_id, account
        self.last_error: str | None = None

    def ensure(self) -> bool:
        """Connected, or one attempt to connect now; never raises."""
        if self.ib.isConnected():
            return True
        try:
            self.ib.connect(self.host, self.port, clientId=self.client_id, timeout=5, account=self.account)
        except Exception as exc:  # a gateway that is down is a state to report, not a crash
            error = f"IB gateway at {self.host}:{self.port} (client id {self.client_id}): {exc or type(exc).__name__}"
            if error != self.last_error:
                log.error("cannot reach IB: %s", error)
            self.last_error = error
            return False
        log.warning("connected to IB at %s:%d as client %d", self.host, self.port, self.client_id)
        self.last_error = None
        return True

    def disconnect(self) -> None:
        if self.ib.isConnected():
            self.ib.disconnect()

    def state(self) -> str:
        return "connected" if self.ib.isConnected() else f"down: {self.last_error or 'not connected'}"

    def _cancel(self, which: Callable[[ib_async.Trade], bool]) -> list[str]:
        cancelled = []
        for trade in self.ib.reqAllOpenOrders():
            if which(trade):
                self.ib.cancelOrder(trade.order)
                cancelled.append(trade.order.orderRef or str(trade.order.orderId))
        return cancelled

    def cancel_entries(self) -> list[str]:
        """L3: cancel every working opening order at IB; stops and take-profits stay."""
        return self._cancel(_is_entry)

    def cancel_all_but_flatten(self) -> list[str]:
        """Every working order at IB except the watchdog's own closing orders."""
        return self._cancel(lambda t: not _is_flatten(t))

    def _positions(self) -> list[ib_async.Position]:
        return [p for p in self.ib.reqPositions()
                if p.position and (not self.account or p.account == self.account)]

    def flatten(self) -> list[dict[str, Any]]:
        """L4: cancel everything at IB, then close every position at market, except what a
        closing order already works on or has just closed (a second L4 halt while the first
        one's closing orders work or settle)."""
        if any(_is_flatten(t) for t in self.ib.reqAllOpenOrders()):
            self.cancel_all_but_flatten()
        else:
            self.ib.reqGlobalCancel()
        return [self.close(p.contract, p.position) for p in self.unflattened()]

    def close(self, contract: ib_async.Contract, position: float) -> dict[str, Any]:
        from ib_async import MarketOrder

        contract.exchange = contract.exchange or "SMART"
        ref = f"{FLATTEN_PREFIX}{contract.symbol}-{int(time.time() * 1000)}"
        side = "SELL" if position > 0 else "BUY"
        self.ib.placeOrder(contract, MarketOrder(side, abs(position), orderRef=ref, tif="DAY"))
        return {"symbol": contract.symbol, "qty": position, "client_order_id": ref, "side": side.lower()}

    def unflattened(self) -> list[ib_async.Position]:
        """Positions still open with no closing order working for them, nor one that filled
        too lately for IB's position report to show it. What IB and ib_async hold is the only
        record: open orders, this session's own (listed before IB lists them), and the day's
        executions (fetched at connect, so a restarted watchdog knows them too)."""
        working = {t.contract.symbol for t in (*self.ib.reqAllOpenOrders(), *self.ib.openTrades())
                   if _is_flatten(t) and t.orderStatus.status not in CANCELLED}  # IB lists Inactive ones too
        lately = datetime.fromtimestamp(time.time() - FLATTEN_SETTLE_S, timezone.utc)
        closed_lately = {f.contract.symbol for f in self.ib.fills()
                         if (f.execution.orderRef or "").startswith(FLATTEN_PREFIX) and f.time >= lately}
        return [p for p in self._positions() if p.contract.symbol not in working | closed_lately]
