"""The three signers of a proposal. Each decides alone; code checks come first and a model
can only add a veto or shrink the size, never overturn a code veto."""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, cast

from brain.agents import reads
from brain.agents.context import AgentContext, call_info
from brain.agents.strategist import bracket
from brain.bus import Delivery, Handler, Outgoing
from brain.topics import ModelCall, TradeProposal, TradeSignature
from brain.risk.gate import Proposal, evaluate
from brain.router.answers import ModelFailure
from brain.sql import queries_beside
from brain.strategy import StrategyParams

Q = queries_beside(__file__, "signers.sql")

DRIFT_LIMIT = 0.01          # the latest close may be at most 1% from the proposal's entry
TOLERANCE = 1e-6            # relative difference below which two numbers are the same number


def _signature(d: Delivery, p: TradeProposal, signer: str, verdict: str, reasons: list[str], numbers: dict[str, Any],
               qty: float | None = None, call: ModelCall | None = None) -> list[Outgoing]:
    clean = {k: float(v) for k, v in numbers.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    sig = TradeSignature(proposal_id=p.proposal_id, proposal_message_id=d.message_id, signer=signer,
                         verdict=verdict, reasons=reasons, qty=qty, numbers_seen=clean, call=call)
    return [Outgoing("trade.signature", sig, signer, d.correlation_id, d.message_id)]


def risk_gate(ctx: AgentContext) -> Handler:
    async def handle(d: Delivery) -> list[Outgoing]:
        p = cast(TradeProposal, d.payload)  # the bus validated it as its topic's model
        account = await reads.account(ctx.pool, ctx.broker)
        decision = evaluate(Proposal(p.symbol, p.side, p.entry, p.stop, p.take_profit, p.confidence, p.edge,
                                     p.size_factor, p.stance), account)
        if decision.verdict == "veto":
            return _signature(d, p, "risk_gate", "veto", decision.reasons, decision.numbers)
        inputs = {"proposal": p.model_dump(mode="json", include={"symbol", "side", "entry", "stop", "take_profit",
                                                                  "confidence", "edge"}),
                  "code_decision": asdict(decision),
                  "positions": [{"symbol": s, "qty": q} for s, q in account.open_positions.items()]}
        answer = await ctx.ask("risk_gate", "risk-gate", inputs, d.correlation_id)
        if isinstance(answer, ModelFailure):
            return _signature(d, p, "risk_gate", "veto", [f"model failure, failing closed: {answer.reason}"],
                              decision.numbers)
        qty = math.floor(decision.qty * answer.data["size_factor"])  # at most 1 (agents/answers.py)
        if answer.data["verdict"] == "veto" or qty < 1:
            return _signature(d, p, "risk_gate", "veto", answer.data["reasons"], decision.numbers, call=call_info(answer))
        reasons = list(dict.fromkeys(decision.reasons + answer.data["reasons"]))  # the model may echo the code
        return _signature(d, p, "risk_gate", "approve", reasons,
                          decision.numbers, float(qty), call_info(answer))

    return handle


def fact_checker(ctx: AgentContext) -> Handler:
    params = StrategyParams.of(ctx.settings)

    async def handle(d: Delivery) -> list[Outgoing]:
        p = cast(TradeProposal, d.payload)  # the bus validated it as its topic's model
        state = await reads.market_state(ctx.pool, p.state_message_id)
        bar = await ctx.pool.fetchrow(Q["bar_close"], p.symbol, p.bar_time)
        latest = await ctx.pool.fetchrow(Q["latest_close"], p.symbol, p.bar_time)
        if bar is None or latest is None:
            return _signature(d, p, "fact_checker", "veto", [f"no stored bar for {p.symbol} at {p.bar_time}"], {})
        stop, target = bracket(p.side, bar["close"], state.indicators["atr"], params)
        recomputed = {"close": bar["close"], "entry": bar["close"], "atr": state.indicators["atr"], "stop": stop,
                      "take_profit": target, "composite": state.composite,
                      **{k: state.indicators[k] for k in ("rsi", "adx", "macd_hist")}}
        cited = {**p.numbers, "entry": p.entry, "stop": p.stop, "take_profit": p.take_profit}
        mismatches = sorted(k for k, v in cited.items()
                            if k not in recomputed or abs(v - recomputed[k]) > TOLERANCE * max(1.0, abs(recomputed[k])))
        drift = (latest["close"] - p.entry) / p.entry
        numbers = {**{f"recomputed_{k}": v for k, v in recomputed.items()}, "drift": drift,
                   "bar_age_bars": float(latest["newer"])}
        inputs = {"cited": cited, "recomputed": recomputed, "mismatches": mismatches,
                  "bar_age_bars": latest["newer"], "drift": drift, "drift_limit": DRIFT_LIMIT}
        code_problems = [f"{k} cited {cited[k]} but is {recomputed.get(k)}" for k in mismatches]
        if latest["newer"] > 0:
            code_problems.append(f"stale: {latest['newer']} newer bar(s) exist")
        if abs(drift) > DRIFT_LIMIT:
            code_problems.append(f"price drifted {drift:+.2%} since the proposal (limit {DRIFT_LIMIT:.0%})")
        if code_problems:
            return _signature(d, p, "fact_checker", "veto", code_problems, numbers)
        answer = await ctx.ask("fact_checker", "fact-checker", inputs, d.correlation_id)
        if isinstance(answer, ModelFailure):
            return _signature(d, p, "fact_checker", "veto", [f"model failure, failing closed: {answer.reason}"], numbers)
        return _signature(d, p, "fact_checker", answer.data["verdict"], answer.data["reasons"], numbers,
                          call=call_info(answer))

    return handle


def double_checker(ctx: AgentContext) -> Handler:
    async def handle(d: Delivery) -> list[Outgoing]:
        p = cast(TradeProposal, d.payload)  # the bus validated it as its topic's model
        # Blind: built from the stored market state; the proposal contributes only its side.
        state = await reads.market_state(ctx.pool, p.state_message_id)
        inputs = {"symbol": state.symbol, "bar_time": state.bar_time.isoformat(), "close": state.close,
                  "computed_regime": state.computed_regime, "composite": state.composite,
                  "indicators": state.indicators, "proposed_side": p.side}
        answer = await ctx.ask("double_checker", "double-checker", inputs, d.correlation_id)
        numbers = {"composite": state.composite, **state.indicators}
        if isinstance(answer, ModelFailure):
            return _signature(d, p, "double_checker", "veto", [f"model failure, failing closed: {answer.reason}"], numbers)
        verdict = answer.data["verdict"] if answer.data["view"] == p.side else "veto"
        return _signature(d, p, "double_checker", verdict, answer.data["reasons"], numbers, call=call_info(answer))

    return handle
