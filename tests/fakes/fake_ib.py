"""A fake of ib_async's `IB` object: the methods and events the adapter, the bar feed and the
watchdog use, answering with ib_async's own objects (Trade, Execution, Fill, Position,
AccountValue, RealTimeBarList, BarData) shaped as an IB Gateway paper account reports them:
execution ids like 0000e0d5.65b2f1c4.01.01, sides BOT/SLD, commissions reported after the
execution, bracket children PreSubmitted until the parent fills, OCA siblings cancelled.

It is also the exchange: `execute(ref, price)` fills a working order, and `restart()` /
`come_back()` play the gateway's nightly restart.
"""
from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from eventkit import Event
from ib_async import (AccountValue, BarData, CommissionReport, Contract, Execution, Fill, Order, OrderStatus,
                      Position, RealTimeBar, RealTimeBarList, Trade)

ACCOUNT = "DU1234567"
NEW_YORK = ZoneInfo("America/New_York")
# Contract ids IB assigns to these stocks (SMART routing, USD).
CONTRACTS = {"AAPL": (265598, "NASDAQ"), "MSFT": (272093, "NASDAQ"), "IBM": (8314, "NYSE"),
             "GOOG": (208813720, "NASDAQ")}


def _regular_hours(t: datetime) -> bool:
    """NYSE's regular session, 09:30 to 16:00 New York time on weekdays (holidays aside)."""
    local = t.astimezone(NEW_YORK)
    return local.weekday() < 5 and time(9, 30) <= local.time() < time(16, 0)


class _Client:
    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def getReqId(self) -> int:
        return next(self._ids)


class FakeIB:
    def __init__(self, net_liquidation: float = 100_000.0) -> None:
        self.client = _Client()
        self.connectedEvent = Event("connectedEvent")
        self.disconnectedEvent = Event("disconnectedEvent")
        self.execDetailsEvent = Event("execDetailsEvent")
        self.commissionReportEvent = Event("commissionReportEvent")
        self.orderStatusEvent = Event("orderStatusEvent")
        self.errorEvent = Event("errorEvent")
        self.connected = False
        self.down = False                 # the gateway refuses connections (restarting)
        self.client_ids: list[int] = []   # every client id that connected, in order
        self.cash = net_liquidation
        self.marks: dict[str, float] = {}
        self._trades: list[Trade] = []
        self._fills: list[Fill] = []
        self._late_reports: list[tuple[Trade, Fill, float, float]] = []  # commission reports still to come
        self._positions: dict[str, list] = {}   # symbol -> [contract, qty, avg cost]
        self._reported: dict[str, list] | None = None  # what reqPositions shows while it lags
        self._exec_ids = itertools.count(1)
        self.history: dict[str, list[BarData]] = {}
        self.drop_next_executions_request = False
        self.slow_lookups = False
        self.streams: dict[str, RealTimeBarList] = {}
        self.placed: list[tuple[str, Order]] = []

    # ------------------------------------------------------------------ connection
    async def connectAsync(self, host="127.0.0.1", port=7497, clientId=1, timeout=4, readonly=False, account=""):
        self.connect(host, port, clientId, timeout, readonly, account)

    def connect(self, host="127.0.0.1", port=7497, clientId=1, timeout=4, readonly=False, account=""):
        if self.down:
            raise ConnectionRefusedError(61, "Connect call failed")
        self.connected = True
        self.client_ids.append(clientId)
        self.connectedEvent.emit()

    def isConnected(self) -> bool:
        return self.connected

    def disconnect(self) -> None:
        if self.connected:
            self.connected = False
            self.disconnectedEvent.emit()

    def restart(self) -> None:
        """The gateway goes away (its nightly restart): connections drop and are refused."""
        self.down = True
        self.disconnect()

    def come_back(self) -> None:
        self.down = False

    # ------------------------------------------------------------------ account
    def accountValues(self, account: str = "") -> list[AccountValue]:
        gross = sum(abs(q) * self.marks.get(s, avg) for s, (_c, q, avg) in self._positions.items())
        value = sum(q * self.marks.get(s, avg) for s, (_c, q, avg) in self._positions.items())
        net = self.cash + value
        rows = [("NetLiquidation", net), ("TotalCashValue", self.cash), ("GrossPositionValue", gross),
                ("MaintMarginReq", gross * 0.25), ("AvailableFunds", net - gross * 0.25)]
        return [AccountValue(ACCOUNT, tag, f"{v:.2f}", "USD", "") for tag, v in rows] + [
            AccountValue(ACCOUNT, "AccountType", "INDIVIDUAL", "", "")]

    # ------------------------------------------------------------------ contracts
    async def qualifyContractsAsync(self, *contracts: Contract, returnAll: bool = False):
        if self.slow_lookups:  # a gateway that never answers this request
            await asyncio.Event().wait()
        out = []
        for c in contracts:
            if c.symbol not in CONTRACTS:
                out.append(None)
                continue
            c.conId, c.primaryExchange = CONTRACTS[c.symbol]
            c.localSymbol, c.tradingClass = c.symbol, "NMS"
            out.append(c)
        return out

    # ------------------------------------------------------------------ orders
    def placeOrder(self, contract: Contract, order: Order) -> Trade:
        order.orderId = order.orderId or self.client.getReqId()
        order.clientId = self.client_ids[-1] if self.client_ids else 0
        order.account = ACCOUNT
        status = "PreSubmitted" if order.parentId else "Submitted"
        trade = Trade(contract, order, OrderStatus(orderId=order.orderId, status=status, remaining=order.totalQuantity))
        self._trades.append(trade)
        self.placed.append((contract.symbol, order))
        return trade

    def trades(self) -> list[Trade]:
        return list(self._trades)

    def openTrades(self) -> list[Trade]:
        return [t for t in self._trades if t.orderStatus.status in ("PendingSubmit", "PreSubmitted", "Submitted")]

    async def reqAllOpenOrdersAsync(self) -> list[Trade]:
        return self.openTrades()

    def reqAllOpenOrders(self) -> list[Trade]:
        return self.openTrades()

    def cancelOrder(self, order: Order):
        for t in self._trades:
            if t.order.orderId == order.orderId and t in self.openTrades():
                self._set_status(t, "Cancelled")
        return None

    def reqGlobalCancel(self) -> None:
        for t in self.openTrades():
            self._set_status(t, "Cancelled")

    def _set_status(self, trade: Trade, status: str, emit: bool = True) -> None:
        trade.orderStatus.status = status
        if emit and self.connected:
            self.orderStatusEvent.emit(trade)

    def by_ref(self, ref: str) -> Trade:
        [trade] = [t for t in self._trades if t.order.orderRef == ref]
        return trade

    # ------------------------------------------------------------------ the exchange
    def execute(self, ref: str, price: float, shares: float | None = None, commission: float = 1.0,
                when: datetime | None = None, commission_after_s: float = 0.0) -> Fill:
        """Fill (part of) a working order; events go out only while a client is connected. The
        commission report follows the execution at once, or commission_after_s later."""
        trade = self.by_ref(ref)
        order = trade.order
        assert trade.orderStatus.status in ("Submitted",), f"{ref} is {trade.orderStatus.status}, not working"
        shares = order.totalQuantity - trade.orderStatus.filled if shares is None else shares
        when = when or datetime.now(timezone.utc)
        n = next(self._exec_ids)
        execution = Execution(execId=f"0000e0d5.65b2f1{n:02x}.01.01", time=when, acctNumber=ACCOUNT, exchange="ISLAND",
                              side="BOT" if order.action == "BUY" else "SLD", shares=shares, price=price,
                              permId=1_700_000_000 + order.orderId, clientId=order.clientId, orderId=order.orderId,
                              cumQty=trade.orderStatus.filled + shares, avgPrice=price, orderRef=order.orderRef)
        fill = Fill(trade.contract, execution, CommissionReport(), when)
        trade.fills.append(fill)
        self._fills.append(fill)
        trade.orderStatus.filled += shares
        trade.orderStatus.remaining = order.totalQuantity - trade.orderStatus.filled
        self._book(trade.contract, shares if order.action == "BUY" else -shares, price)
        self.cash -= (shares if order.action == "BUY" else -shares) * price + commission
        done = trade.orderStatus.remaining <= 1e-9
        if done:
            trade.orderStatus.status = "Filled"
            for child in self._trades:
                if child.order.parentId == order.orderId and child.orderStatus.status == "PreSubmitted":
                    child.orderStatus.status = "Submitted"
            if order.parentId:  # a bracket exit: its sibling is one-cancels-all
                for sib in self._trades:
                    if sib.order.parentId == order.parentId and sib is not trade and sib in self.openTrades():
                        self._set_status(sib, "Cancelled")
        if self.connected:
            self.execDetailsEvent.emit(trade, fill)
            if commission_after_s:
                asyncio.get_running_loop().call_later(commission_after_s, self._report_commission, trade, fill,
                                                      commission)
            else:
                self._report_commission(trade, fill, commission)
        elif commission_after_s:  # sent commission_after_s after the executions are asked for
            self._late_reports.append((trade, fill, commission, commission_after_s))
        else:
            fill.commissionReport.execId, fill.commissionReport.commission = execution.execId, commission
        return fill

    def _report_commission(self, trade: Trade, fill: Fill, commission: float) -> None:
        # ib_async writes the report into the execution's Fill, then emits it.
        fill.commissionReport.execId, fill.commissionReport.commission = fill.execution.execId, commission
        fill.commissionReport.currency = "USD"
        self.commissionReportEvent.emit(trade, fill, CommissionReport(execId=fill.execution.execId,
                                                                      commission=commission, currency="USD"))

    def _book(self, contract: Contract, signed: float, price: float) -> None:
        c, qty, avg = self._positions.get(contract.symbol, [contract, 0.0, 0.0])
        new = qty + signed
        if abs(new) < 1e-9:
            self._positions.pop(contract.symbol, None)
            return
        avg = (qty * avg + signed * price) / new if abs(new) > abs(qty) else avg
        self._positions[contract.symbol] = [c, new, avg]

    def hold(self, symbol: str, qty: float, avg: float) -> None:
        """A position the brain did not open (or opened while its book was lost)."""
        c = Contract(secType="STK", symbol=symbol, currency="USD", conId=CONTRACTS[symbol][0])
        self._positions[symbol] = [c, qty, avg]

    async def reqExecutionsAsync(self, execFilter=None) -> list[Fill]:
        if self.drop_next_executions_request:  # the gateway goes away again while answering
            self.drop_next_executions_request = False
            self.disconnect()
            raise ConnectionError("Socket disconnect")
        for trade, fill, commission, after_s in self._late_reports:
            asyncio.get_running_loop().call_later(after_s, self._report_commission, trade, fill, commission)
        self._late_reports.clear()
        return list(self._fills)

    def fills(self) -> list[Fill]:
        """The day's executions, as ib_async holds them (fetched at connect, then kept up)."""
        return list(self._fills)

    def lag_positions(self) -> None:
        """IB's position report falls behind: it shows what was held now until catch_up()."""
        self._reported = {s: list(row) for s, row in self._positions.items()}

    def catch_up(self) -> None:
        self._reported = None

    def _position_rows(self) -> list[Position]:
        # IB reports positions with the contract's primary listing, not SMART.
        held = self._positions if self._reported is None else self._reported
        return [Position(ACCOUNT, Contract(secType="STK", symbol=s, currency="USD", conId=c.conId,
                                           exchange=c.primaryExchange or "NASDAQ"), q, avg)
                for s, (c, q, avg) in held.items()]

    async def reqPositionsAsync(self) -> list[Position]:
        return self._position_rows()

    def reqPositions(self) -> list[Position]:
        return self._position_rows()

    def positions(self, account: str = "") -> list[Position]:
        return self._position_rows()

    # ------------------------------------------------------------------ market data
    async def reqHistoricalDataAsync(self, contract, endDateTime, durationStr, barSizeSetting, whatToShow, useRTH,
                                     formatDate=1, keepUpToDate=False, chartOptions=None, timeout=60):
        return list(self.history.get(contract.symbol, []))

    def reqRealTimeBars(self, contract, barSize, whatToShow, useRTH, realTimeBarsOptions=None) -> RealTimeBarList:
        bars = RealTimeBarList()
        bars.reqId, bars.contract, bars.barSize = self.client.getReqId(), contract, barSize
        bars.whatToShow, bars.useRTH, bars.realTimeBarsOptions = whatToShow, useRTH, []
        self.streams[contract.symbol] = bars
        return bars

    def tick(self, symbol: str, t: datetime, o: float, h: float, lo: float, c: float, v: float) -> None:
        """One 5-second bar from IB's real-time stream; a stream asked for regular trading
        hours only is sent nothing outside them, as IB does."""
        bars = self.streams[symbol]
        if bars.useRTH and not _regular_hours(t):
            return
        bars.append(RealTimeBar(time=t, endTime=-1, open_=o, high=h, low=lo, close=c, volume=v, wap=c, count=10))
        self.marks[symbol] = c
        bars.updateEvent.emit(bars, True)
