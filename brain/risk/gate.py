"""The numerical Risk Gate: sizes a proposal by Half-Kelly and vetoes anything past a cap.

A pure function of the proposal and the account as read from the database, so a test can
throw any adversarial proposal at it and check every cap by hand.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from brain.risk import limits as L


@dataclass(frozen=True)
class Account:
    equity: float
    cash: float
    high_water_mark: float
    day_start_equity: float
    open_positions: dict[str, float]      # symbol -> signed quantity, entries not yet filled included
    locked: bool = False


@dataclass(frozen=True)
class Proposal:
    symbol: str
    side: Literal["buy", "sell"]
    entry: float
    stop: float | None
    take_profit: float
    confidence: float
    edge: float                           # reward per unit risk (R multiple) the strategist expects
    size_factor: float = 1.0              # models may only shrink
    stance: str = "neutral"


@dataclass(frozen=True)
class RiskDecision:
    verdict: Literal["approve", "veto"]
    qty: float
    reasons: list[str]
    numbers: dict[str, float] = field(default_factory=dict)


def half_kelly(confidence: float, edge: float) -> float:
    """Kelly fraction f* = p - (1 - p) / b for win probability p and payoff b (R multiple),
    halved; never negative."""
    if edge <= 0:
        return 0.0
    return max(0.0, L.KELLY_FRACTION * (confidence - (1.0 - confidence) / edge))


def _finite(*values: float | None) -> bool:
    return all(v is not None and isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def no_room_for(symbol: str, open_positions: dict[str, float]) -> str | None:
    """Why the book takes no new entry in symbol, or None. An entry placed and not yet filled
    counts as held: until its fill, positions do not show it."""
    if symbol in open_positions:
        return f"already holding or entering {symbol}"
    if len(open_positions) >= L.MAX_OPEN_POSITIONS:
        return f"{len(open_positions)} positions open or entering, the cap is {L.MAX_OPEN_POSITIONS}"
    return None


def evaluate(p: Proposal, a: Account) -> RiskDecision:
    def veto(reason: str, **numbers: float) -> RiskDecision:
        return RiskDecision("veto", 0.0, [reason], numbers)

    if a.locked:
        return veto("the broker adapter is locked (L4 halt)")
    if not _finite(p.entry, p.take_profit, p.confidence, p.edge, p.size_factor, a.equity):
        return veto("a number in the proposal or the account is missing or not finite")
    if p.stop is None or not _finite(p.stop):
        return veto("no stop: every order needs a stop attached at placement")
    if a.equity <= 0 or p.entry <= 0 or p.stop <= 0 or p.take_profit <= 0:
        return veto("prices and equity must be positive")
    if not (0 <= p.confidence <= 1) or not (0 <= p.size_factor <= 1) or p.edge < 0:
        return veto("confidence and size factor must lie in [0, 1] and edge must be >= 0")
    risk_per_share = (p.entry - p.stop) if p.side == "buy" else (p.stop - p.entry)
    reward_per_share = (p.take_profit - p.entry) if p.side == "buy" else (p.entry - p.take_profit)
    numbers = {"equity": a.equity, "entry": p.entry, "stop": p.stop, "take_profit": p.take_profit,
               "risk_per_share": risk_per_share, "reward_per_share": reward_per_share}
    if risk_per_share <= 0:
        return veto(f"the stop {p.stop} is on the wrong side of the entry {p.entry}", **numbers)
    if risk_per_share / p.entry > L.MAX_STOP_DISTANCE:
        return veto(f"the stop is {risk_per_share / p.entry:.1%} away, beyond {L.MAX_STOP_DISTANCE:.0%}", **numbers)
    if reward_per_share < L.MIN_REWARD_RISK * risk_per_share:
        return veto("the take-profit is closer than the stop", **numbers)
    if (full := no_room_for(p.symbol, a.open_positions)) is not None:
        return veto(full, **numbers)
    day_pnl = (a.equity - a.day_start_equity) / a.day_start_equity if a.day_start_equity > 0 else 0.0
    numbers["day_pnl_fraction"] = day_pnl
    if day_pnl <= L.DAILY_LOSS_BLOCK:
        return veto(f"today's loss {day_pnl:.2%} reached the {L.DAILY_LOSS_BLOCK:.0%} block on new entries", **numbers)
    drawdown = 1 - a.equity / a.high_water_mark if a.high_water_mark > 0 else 0.0
    numbers["drawdown"] = drawdown
    if drawdown >= L.MAX_DRAWDOWN:
        return veto(f"drawdown {drawdown:.2%} is at the {L.MAX_DRAWDOWN:.0%} cap", **numbers)

    kelly = half_kelly(p.confidence, p.edge)
    risk_budget = min(kelly, L.MAX_RISK_PER_TRADE) * L.STANCE_RISK_SCALE.get(p.stance, 0.25) * p.size_factor
    numbers.update(half_kelly=kelly, risk_budget_fraction=risk_budget)
    if risk_budget <= 0:
        return veto(f"Half-Kelly gives no size (confidence {p.confidence}, edge {p.edge})", **numbers)
    qty = min(a.equity * risk_budget / risk_per_share, a.equity * L.MAX_POSITION_FRACTION / p.entry)
    qty = math.floor(qty)
    numbers.update(qty=qty, notional=qty * p.entry, risk_at_stop=qty * risk_per_share)
    if qty < 1:
        return veto("the capped size is below one share", **numbers)
    return RiskDecision("approve", float(qty), [
        f"Half-Kelly {kelly:.2%} capped to a {risk_budget:.2%} risk budget ({p.stance}); "
        f"{qty:.0f} shares risk {qty * risk_per_share:,.2f} at the stop"], numbers)
