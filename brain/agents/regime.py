"""Regime: market.state -> regime.assessment. The model may be more cautious than the
numbers, never less; code enforces that after the answer."""
from __future__ import annotations

from typing import cast

from brain.agents.context import AgentContext, call_info
from brain.bus import Delivery, Handler, Outgoing
from brain.router.answers import ModelFailure
from brain.signals.state import MarketState
from brain.strategy import REGIME_STANCE_CAP, why_no_trade
from brain.topics import CycleOutcome, RegimeAssessment, TradeSkip, correlation_for

CAUTION = {"trending_up": 0, "trending_down": 0, "ranging": 1, "volatile": 2}
STANCE_RANK = {"risk_off": 0, "neutral": 1, "risk_on": 2}


def clamp(computed: str, regime: str, stance: str) -> tuple[str, str, list[str]]:
    """Never less cautious than the code: a less cautious (or sideways) regime falls back to
    the computed one, and the stance is capped by the regime."""
    notes = []
    if regime != computed and CAUTION[regime] <= CAUTION[computed]:
        notes.append(f"model said {regime}; kept the computed {computed} (a model may only be more cautious)")
        regime = computed
    cap = REGIME_STANCE_CAP[regime]
    if STANCE_RANK[stance] > STANCE_RANK[cap]:
        notes.append(f"stance {stance} capped to {cap} for a {regime} regime")
        stance = cap
    return regime, stance, notes


def make_handler(ctx: AgentContext) -> Handler:
    async def handle(d: Delivery) -> list[Outgoing]:
        state = cast(MarketState, d.payload)  # the bus validated it as its topic's model
        corr = d.correlation_id or correlation_for(state.symbol, state.bar_time)
        cannot = why_no_trade(state)
        if cannot is not None:
            # No answer could make this bar trade (a model may only shrink or veto): the
            # cycle ends here, by code, and pays for no call.
            return skip_untradable(state, corr, d.message_id, f"{cannot}; no model was asked")
        inputs = {"symbol": state.symbol, "bar_time": state.bar_time.isoformat(), "close": state.close,
                  "computed_regime": state.computed_regime, "composite": state.composite,
                  "indicators": state.indicators}
        answer = await ctx.ask("regime", "regime", inputs, corr)
        if isinstance(answer, ModelFailure):
            # Fail closed: no reliable read of the market means no risk.
            out = RegimeAssessment(symbol=state.symbol, bar_time=state.bar_time, state_message_id=d.message_id,
                                   computed_regime=state.computed_regime, regime="volatile", stance="risk_off",
                                   confidence=0.0, rationale=f"model failure, failing closed: {answer.reason}")
        else:
            regime, stance, notes = clamp(state.computed_regime, answer.data["regime"], answer.data["stance"])
            out = RegimeAssessment(symbol=state.symbol, bar_time=state.bar_time, state_message_id=d.message_id,
                                   computed_regime=state.computed_regime, regime=regime, stance=stance,
                                   confidence=answer.data["confidence"],
                                   rationale=" ".join([answer.data["rationale"], *notes]), call=call_info(answer))
        return [Outgoing("regime.assessment", out, "regime", corr, d.message_id)]

    return handle


def skip_untradable(state: MarketState, corr: str, cause: int, reason: str) -> list[Outgoing]:
    """The end of a cycle whose bar cannot trade: a skip by the signals, with its numbers."""
    numbers = {"close": state.close, "composite": state.composite, "atr": state.indicators["atr"]}
    return [Outgoing("trade.skip", TradeSkip(symbol=state.symbol, bar_time=state.bar_time, by="signals",
                                             reason=reason, numbers=numbers), "regime", corr, cause),
            Outgoing("cycle.outcome", CycleOutcome(symbol=state.symbol, bar_time=state.bar_time, outcome="skip",
                                                   by="signals", detail=reason), "regime", corr, cause)]
