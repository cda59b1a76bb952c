"""The watchdog's own line to Interactive Brokers.

It connects with its own client id, so it can cancel and flatten when the brain is dead,
hung or wrong; it shares nothing with the brain's adapter. ib_async's blocking API is used:
the watchdog is a plain loop, and each call waits for IB's answer.
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger("watchdog")

FLATTEN_PREFIX = "flatten-"


def _is_entry(trade) -> bool:
    """An opening leg the brain placed: not a stop or take-profit child, not a flatten."""
    ref = trade.order.orderRef or ""
    return (trade.order.parentId == 0 and not ref.startswith(FLATTEN_PREFIX)
            and not ref.endswith(("-stop", "-tp")))


class IBLink:
    def __init__(self, host: str, port: int, client_id: int, account: str = "", ib=None) -> None:
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

    def state(self) -> str:
        return "connected" if self.ib.isConnected() else f"down: {self.last_error or 'not connected'}"

    def cancel_entries(self) -> list[str]:
        """L3: cancel every working opening order at IB; stops and take-profits stay."""
        cancelled = []
        for trade in self.ib.openTrades():
            if _is_entry(trade):
                self.ib.cancelOrder(trade.order)
                cancelled.append(trade.order.orderRef or str(trade.order.orderId))
        return cancelled

    def cancel_all_but_flatten(self) -> list[str]:
        """Every working order at IB except the watchdog's own closing orders."""
        cancelled = []
        for trade in self.ib.openTrades():
            if not (trade.order.orderRef or "").startswith(FLATTEN_PREFIX):
                self.ib.cancelOrder(trade.order)
                cancelled.append(trade.order.orderRef or str(trade.order.orderId))
        return cancelled

    def flatten(self) -> list[dict]:
        """L4: cancel everything at IB, then close every position at market."""
        self.ib.reqGlobalCancel()
        closed = []
        for p in self.ib.reqPositions():
            if not p.position or (self.account and p.account != self.account):
                continue
            closed.append(self.close(p.contract, p.position))
        return closed

    def close(self, contract, position: float) -> dict:
        from ib_async import MarketOrder

        contract.exchange = contract.exchange or "SMART"
        ref = f"{FLATTEN_PREFIX}{contract.symbol}-{int(time.time() * 1000)}"
        side = "SELL" if position > 0 else "BUY"
        self.ib.placeOrder(contract, MarketOrder(side, abs(position), orderRef=ref, tif="DAY"))
        return {"symbol": contract.symbol, "qty": position, "client_order_id": ref,
                "side": side.lower()}

    def unflattened(self) -> list:
        """Positions still open with no flatten order working for them."""
        working = {t.contract.symbol for t in self.ib.openTrades()
                   if (t.order.orderRef or "").startswith(FLATTEN_PREFIX)}
        return [p for p in self.ib.reqPositions()
                if p.position and p.contract.symbol not in working
                and (not self.account or p.account == self.account)]
