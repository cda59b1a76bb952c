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
from datetime import datetime, timezone

log = logging.getLogger("watchdog")

FLATTEN_PREFIX = "flatten-"
# How long after a flatten order stopped working (it filled, or was cancelled after filling
# part) IB's position report may still show what it closed. Trusting the report meanwhile
# would send a second closing order, which opens the position again the other way.
FLATTEN_SETTLE_S = 10.0
# A closing order sent longer ago than this (a DAY order lives a day at most) is forgotten.
FLATTEN_FORGET_S = 86_400.0
# Order states in which nothing more will fill.
CANCELLED = ("Cancelled", "ApiCancelled", "Inactive")


class _Flatten:
    """A closing order this link sent, and when it first saw it no longer working: a market
    order sent while the market is closed fills at the open, so the wait counts from there."""

    def __init__(self, trade) -> None:
        self.trade = trade
        self.sent_at = time.monotonic()
        self.gone_at: float | None = None

    def settling(self, now: float) -> bool:
        """Called while the order is not working: may the report still lag what it closed?"""
        if self.gone_at is None:
            self.gone_at = now
        status = self.trade.orderStatus
        if status.status in CANCELLED and not status.filled:
            return False  # it closed nothing: the report is right, and the position needs closing
        # Filled, cancelled after filling part, or a status this link no longer hears about
        # (ib_async forgets a session's orders when it reconnects): give the report its time.
        return now - self.gone_at < FLATTEN_SETTLE_S


def _is_flatten(trade) -> bool:
    return (trade.order.orderRef or "").startswith(FLATTEN_PREFIX)


def _is_entry(trade) -> bool:
    """An opening leg the brain placed: not a stop or take-profit child, not a flatten."""
    return (trade.order.parentId == 0 and not _is_flatten(trade)
            and not (trade.order.orderRef or "").endswith(("-stop", "-tp")))


class IBLink:
    def __init__(self, host: str, port: int, client_id: int, account: str = "", ib=None) -> None:
        if ib is None:
            from ib_async import IB

            ib = IB()
        self.ib = ib
        self.host, self.port, self.client_id, self.account = host, port, client_id, account
        self.last_error: str | None = None
        self._flattens: dict[str, _Flatten] = {}  # symbol -> the last closing order this link sent for it

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

    def _cancel(self, which) -> list[str]:
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

    def _positions(self) -> list:
        return [p for p in self.ib.reqPositions()
                if p.position and (not self.account or p.account == self.account)]

    def flatten(self) -> list[dict]:
        """L4: cancel everything at IB, then close every position at market, except what a
        closing order already works on or has just closed (a second L4 halt while the first
        one's closing orders work or settle)."""
        if any(_is_flatten(t) for t in self.ib.reqAllOpenOrders()):
            self.cancel_all_but_flatten()
        else:
            self.ib.reqGlobalCancel()
        return [self.close(p.contract, p.position) for p in self.unflattened()]

    def close(self, contract, position: float) -> dict:
        from ib_async import MarketOrder

        contract.exchange = contract.exchange or "SMART"
        ref = f"{FLATTEN_PREFIX}{contract.symbol}-{int(time.time() * 1000)}"
        side = "SELL" if position > 0 else "BUY"
        trade = self.ib.placeOrder(contract, MarketOrder(side, abs(position), orderRef=ref, tif="DAY"))
        self._flattens[contract.symbol] = _Flatten(trade)
        return {"symbol": contract.symbol, "qty": position, "client_order_id": ref, "side": side.lower()}

    def unflattened(self) -> list:
        """Positions still open with no closing order working for them, nor one that stopped
        working too lately for the position report to show what it closed."""
        working = {t.contract.symbol for t in self.ib.reqAllOpenOrders()
                   if _is_flatten(t) and t.orderStatus.status not in CANCELLED}  # IB lists Inactive ones too
        for symbol in working & self._flattens.keys():
            self._flattens[symbol].gone_at = None  # listed again (it was not yet, just sent): not settling
        positions = self._positions()
        shown = {p.contract.symbol for p in positions}
        now = time.monotonic()
        for symbol in [s for s, f in self._flattens.items()
                       if s not in working and (s not in shown or now - f.sent_at > FLATTEN_FORGET_S)]:
            del self._flattens[symbol]  # done, the report shows it; or a day old: it weighs on nothing now
        # What this link sent before it was restarted (or what another watchdog sent before this
        # one took the watch) it knows only from IB's executions of the day.
        lately = datetime.fromtimestamp(time.time() - FLATTEN_SETTLE_S, timezone.utc)
        closed_lately = {f.contract.symbol for f in self.ib.fills()
                         if (f.execution.orderRef or "").startswith(FLATTEN_PREFIX) and f.time >= lately}
        # Every closing order of this link not working is looked at, so that each one's wait
        # counts from the first pass that finds it gone.
        settling = {s for s, f in self._flattens.items() if s not in working and f.settling(now)}
        return [p for p in positions if p.contract.symbol not in working | settling | closed_lately]
