"""The computed regime and the composite signal: fixed rules a person can check by hand."""
from __future__ import annotations

import math
from typing import Literal

from brain.strategy import DEFAULT

Regime = Literal["trending_up", "trending_down", "ranging", "volatile"]

ADX_TRENDING = 25.0     # Wilder: ADX above ~25 means a trend worth trading
VOL_PCT_VOLATILE = 0.90  # realized volatility in the top decile of its trailing year

# Composite weights (they sum to 1). Each component is scaled to [-1, 1], positive = bullish.
WEIGHTS = {
    "trend": 0.30,      # EMA 21/55 cross direction, scaled by ADX strength (ADX 40 = full)
    "macd": 0.25,       # MACD histogram in units of half an ATR, squashed by tanh
    "rsi": 0.15,        # (RSI - 50) / 50
    "roc": 0.15,        # ROC percentile over a year, mapped to [-1, 1]
    "bollinger": 0.15,  # position inside the Bollinger bands, mapped to [-1, 1]
}
RSI_OVERBOUGHT = 75.0
RSI_OVERSOLD = 25.0


def computed_regime(ind: dict[str, float]) -> Regime:
    if ind["vol_pct"] >= VOL_PCT_VOLATILE:
        return "volatile"
    if ind["adx"] >= ADX_TRENDING:
        return "trending_up" if ind["ema_cross"] > 0 else "trending_down"
    return "ranging"


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, x))


def components(ind: dict[str, float]) -> dict[str, float]:
    return {
        "trend": _clip(ind["ema_cross"] * min(ind["adx"] / 40.0, 1.0)),
        "macd": math.tanh(ind["macd_hist"] / (0.5 * ind["atr"])) if ind["atr"] > 0 else 0.0,
        "rsi": _clip((ind["rsi"] - 50.0) / 50.0),
        "roc": _clip(2.0 * ind["roc_pct"] - 1.0),
        "bollinger": _clip(2.0 * ind["bb_pct_b"] - 1.0),
    }


def composite(ind: dict[str, float]) -> float:
    parts = components(ind)
    return round(sum(WEIGHTS[k] * v for k, v in parts.items()), 6)


def signalled_side(ind: dict[str, float], score: float, threshold: float = DEFAULT.align_threshold) -> Literal["buy", "sell"] | None:
    """The side the numbers support, if any: composite beyond the threshold (the setting
    strategy_align_threshold), the trend agreeing, and the RSI not already stretched that way."""
    if score >= threshold and ind["ema_cross"] > 0 and ind["rsi"] < RSI_OVERBOUGHT:
        return "buy"
    if score <= -threshold and ind["ema_cross"] < 0 and ind["rsi"] > RSI_OVERSOLD:
        return "sell"
    return None
