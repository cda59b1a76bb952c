"""Strategist: regime.assessment -> trade.proposal or trade.skip. Prices come from code
(entry at the close, stop and take-profit a set number of ATRs away, 2 and 3 by default);
the model judges quality."""
from __future__ import annotations

from typing import cast

from brain.agents import reads
from brain.agents.context import AgentContext, call_info
from brain.bus import Delivery, Handler, Outgoing
from brain.topics import CycleOutcome, ModelCall, RegimeAssessment, TradeProposal, TradeSkip
from brain.router.answers import ModelFailure
from brain.signals.state import MarketState
from brain.strategy import DEFAULT, StrategyParams, stance_against


def bracket(side: str, close: float, atr: float, params: StrategyParams = DEFAULT) -> tuple[float, float]:
    if side == "buy":
        return round(close - params.stop_atr * atr, 4), round(close + params.target_atr * atr, 4)
    return round(close + params.stop_atr * atr, 4), round(close - params.target_atr * atr, 4)


def make_handler(ctx: AgentContext) -> Handler:
    params = StrategyParams.of(ctx.settings)

    async def handle(d: Delivery) -> list[Outgoing]:
        a = cast(RegimeAssessment, d.payload)  # the bus validated it as its topic's model
        state = await reads.market_state(ctx.pool, a.state_message_id)
        corr = d.correlation_id
        side = state.signalled_side
        atr = state.indicators["atr"]

        def skip(reason: str, call: ModelCall | None = None) -> list[Outgoing]:
            numbers = {"close": state.close, "composite": state.composite, "atr": atr}
            return [Outgoing("trade.skip", TradeSkip(symbol=state.symbol, bar_time=state.bar_time, by="strategist",
                                                     reason=reason, numbers=numbers, call=call),
                             "strategist", corr, d.message_id),
                    Outgoing("cycle.outcome", CycleOutcome(symbol=state.symbol, bar_time=state.bar_time,
                                                           outcome="skip", by="strategist", detail=reason),
                             "strategist", corr, d.message_id)]

        # The rules a model may not override are checked before spending a call. The side
        # first: it depends on the bar alone, so a cycle that cannot trade ends the same way
        # however far the feed has moved on (see brain/market/replay.py).
        if side is None:
            return skip(f"signals do not align on a side (composite {state.composite:+.2f})")
        held = await reads.holding(ctx.pool, ctx.broker, state.symbol)
        if held:
            return skip(f"already holding or entering {state.symbol}")
        if stance_against(side, a.stance):
            return skip(f"regime stance {a.stance} is against a {side}")
        stop, target = bracket(side, state.close, atr, params)
        if min(stop, target) <= 0:  # a short in a symbol whose ATR is a third of its price
            return skip(f"the {'stop' if stop <= 0 else 'take-profit'} would be at {min(stop, target)}: "
                        f"{state.symbol}'s ATR {atr:.4g} is too large against its close {state.close:.4g}")
        inputs = {"symbol": state.symbol, "bar_time": state.bar_time.isoformat(), "close": state.close,
                  "signalled_side": side, "composite": state.composite, "computed_regime": state.computed_regime,
                  "indicators": state.indicators, "regime": a.regime, "stance": a.stance,
                  "regime_confidence": a.confidence, "entry": state.close, "stop": stop, "take_profit": target,
                  "reward_risk": params.reward_risk, "holding": held}
        answer = await ctx.ask("strategist", "strategist", inputs, corr)
        if isinstance(answer, ModelFailure):
            return skip(f"model failure, failing closed: {answer.reason}")
        data = answer.data
        if data["action"] == "skip":
            return skip(data["skip_reason"] or data["rationale"], call_info(answer))
        if data["side"] != side:
            return skip(f"model proposed {data['side']} but the signals allow only {side}", call_info(answer))
        numbers = {"close": state.close, "atr": atr, "entry": state.close, "stop": stop, "take_profit": target,
                   "composite": state.composite, **{k: state.indicators[k] for k in ("rsi", "adx", "macd_hist")}}
        proposal = TradeProposal(
            proposal_id=f"{corr}:v1", symbol=state.symbol, bar_time=state.bar_time, state_message_id=a.state_message_id,
            side=side, entry=state.close, stop=stop, take_profit=target, confidence=data["confidence"],
            edge=min(data["edge"], params.reward_risk), size_factor=data["size_factor"], regime=a.regime,
            stance=a.stance, rationale=data["rationale"], numbers=numbers, call=call_info(answer))
        return [Outgoing("trade.proposal", proposal, "strategist", corr, d.message_id)]

    return handle
