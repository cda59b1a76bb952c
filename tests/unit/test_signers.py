"""The Risk Gate's signature from a model answer: a model may shrink the code's size or veto,
never enlarge it, whatever the editable skill file allows."""
from __future__ import annotations

import asyncio
import math
from datetime import datetime, timezone
from types import SimpleNamespace

from brain.agents.context import AgentContext
from brain.agents.signers import risk_gate
from brain.topics import TradeProposal
from brain.bus import Delivery
from brain.risk.gate import Account, Proposal, evaluate
from brain.router.answers import ModelAnswer

WHEN = datetime(2013, 1, 15, tzinfo=timezone.utc)
PROPOSAL = TradeProposal(proposal_id="AAPL@x:v1", symbol="AAPL", bar_time=WHEN, state_message_id=1, side="sell",
                         entry=70.0, stop=72.0, take_profit=67.0, confidence=0.6, edge=1.5, size_factor=1.0,
                         regime="trending_down", stance="neutral", rationale="test", numbers={"close": 70.0})
CASH = 100_000.0


class FlatBroker:
    """A broker with no account row yet and nothing open: the gate sizes against starting cash."""
    name = account = "paper"
    starting_cash = CASH

    async def account_row(self, _conn):
        return None

    async def positions(self, _conn):
        return []


def sign(size_factor: float, verdict: str = "approve"):
    async def call(*_args):  # the router, as if the skill's schema had let this answer by
        return ModelAnswer({"verdict": verdict, "size_factor": size_factor, "reasons": ["model"]}, "offline",
                           "offline", "risk-gate", "h", 0.0, 1.0)

    async def nothing_entering(*_args):
        return []

    ctx = AgentContext(pool=SimpleNamespace(fetch=nothing_entering), router=SimpleNamespace(call=call),
                       skills=SimpleNamespace(get=lambda name: name), broker=FlatBroker(), settings=None,
                       context_dir=None)
    d = Delivery("risk_gate", 7, "trade.proposal", PROPOSAL, "strategist", None, "AAPL@x", 1, 1, WHEN)
    [out] = asyncio.run(risk_gate(ctx)(d))
    return out.payload


def code_qty() -> float:
    p = PROPOSAL
    flat = Account(equity=CASH, cash=CASH, high_water_mark=CASH, day_start_equity=CASH, open_positions={})
    decision = evaluate(Proposal(p.symbol, p.side, p.entry, p.stop, p.take_profit, p.confidence, p.edge,
                                 p.size_factor, p.stance), flat)
    assert decision.verdict == "approve" and decision.qty >= 4
    return decision.qty


def test_a_model_may_shrink_the_codes_size():
    sig = sign(0.5)
    assert sig.verdict == "approve" and sig.qty == math.floor(code_qty() * 0.5)
    assert sign(1.0).qty == code_qty()


def test_a_model_asking_for_more_than_the_codes_size_is_a_veto():
    sig = sign(2.5)
    assert sig.verdict == "veto" and sig.qty is None
    assert sig.reasons == ["model failure, failing closed: the answer is outside what the code takes: "
                           "size_factor: Input should be less than or equal to 1"]
    assert sign(-0.5).verdict == "veto"
