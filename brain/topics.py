"""Payloads of the trading cycle, after market.state (owned by brain.signals).

A cycle is one bar of one symbol; its correlation_id is `<symbol>@<bar time ISO>`, so a
redelivered bar can never start a second cycle.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from brain.messages import Payload, topic

Regime = Literal["trending_up", "trending_down", "ranging", "volatile"]
Stance = Literal["risk_on", "neutral", "risk_off"]
Side = Literal["buy", "sell"]
Signer = Literal["risk_gate", "fact_checker", "double_checker"]
Outcome = Literal["filled", "veto", "skip", "expired", "halted", "error"]


def correlation_for(symbol: str, bar_time: datetime) -> str:
    return f"{symbol}@{bar_time.isoformat()}"


class ModelCall(Payload):
    """Which prompt and route produced an agent's answer, and what it cost."""

    route: str
    model: str
    skill: str
    skill_hash: str
    cost_usd: float = 0.0
    latency_ms: float = 0.0


@topic("regime.assessment")
class RegimeAssessment(Payload):
    symbol: str
    bar_time: datetime
    state_message_id: int
    computed_regime: Regime          # what the numbers say (code)
    regime: Regime                   # what the Regime agent concluded
    stance: Stance
    confidence: float = Field(ge=0, le=1)
    rationale: str
    call: ModelCall | None = None


@topic("trade.proposal")
class TradeProposal(Payload):
    proposal_id: str                 # correlation id + version: what the signers sign
    version: int = 1
    symbol: str
    bar_time: datetime
    state_message_id: int
    side: Side
    entry: float = Field(gt=0)
    stop: float = Field(gt=0)
    take_profit: float = Field(gt=0)
    confidence: float = Field(ge=0, le=1)
    edge: float = Field(ge=0)        # expected reward per unit of risk (R multiple)
    size_factor: float = Field(ge=0, le=1)
    regime: Regime
    stance: Stance
    rationale: str
    numbers: dict[str, float]        # every number the proposal cites, for the FactChecker
    call: ModelCall | None = None


@topic("trade.skip")
class TradeSkip(Payload):
    symbol: str
    bar_time: datetime
    by: str
    reason: str
    numbers: dict[str, float] = {}
    call: ModelCall | None = None


@topic("trade.signature")
class TradeSignature(Payload):
    proposal_id: str
    proposal_message_id: int
    signer: Signer
    verdict: Literal["approve", "veto"]
    reasons: list[str]
    qty: float | None = None         # the Risk Gate's size; the executor never exceeds it
    numbers_seen: dict[str, float] = {}
    call: ModelCall | None = None


@topic("order.placed")
class OrderPlaced(Payload):
    proposal_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float = Field(gt=0)
    stop: float
    take_profit: float
    status: str


@topic("cycle.outcome")
class CycleOutcome(Payload):
    """The single end of a cycle; the recorder turns it into the journal entry."""

    symbol: str
    bar_time: datetime
    outcome: Outcome
    by: str
    detail: str


@topic("order.filled")
class OrderFilled(Payload):
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    commission: float
    at: datetime
    intent: Literal["open", "close"]
    reason: str                      # entry, stop, take_profit, flatten
    pnl: float | None = None


@topic("optimizer.request")
class OptimizerRequest(Payload):
    """Ask the brain for the Self-Optimizer's report on a day (the operator, or the nightly
    schedule)."""

    day: date
    days: int = Field(default=1, ge=1, le=366)
    requested_by: str
