"""The market.state message: one per bar and symbol, carrying every number the agents see."""
from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from brain.market.bars import Bar
from brain.messages import Payload, topic
from brain.signals import regime as rules
from brain.strategy import DEFAULT


@topic("market.state")
class MarketState(Payload):
    symbol: str
    bar_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    indicators: dict[str, float]
    computed_regime: rules.Regime
    composite: float
    signalled_side: Literal["buy", "sell"] | None


def build_state(bar: Bar, indicators: dict[str, float], align_threshold: float = DEFAULT.align_threshold) -> MarketState | None:
    """The state for a bar, or None while the indicators are still warming up."""
    if any(not math.isfinite(v) for v in indicators.values()):
        return None
    ind = {k: round(float(v), 6) for k, v in indicators.items()}
    score = rules.composite(ind)
    return MarketState(symbol=bar.symbol, bar_time=bar.ts, open=bar.open, high=bar.high, low=bar.low,
                       close=bar.close, volume=bar.volume, indicators=ind,
                       computed_regime=rules.computed_regime(ind), composite=score,
                       signalled_side=rules.signalled_side(ind, score, align_threshold))
