"""Indicators over a symbol's OHLCV history (pandas-ta-classic where it has the indicator).

Computed over a whole frame at once: a backtest computes each symbol's history once, and a
live feed recomputes over a trailing window (a few hundred bars) on each new bar.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

WARMUP_BARS = 60          # EMA 55 and ADX 14 need this much history before they mean anything
ROC_RANK_WINDOW = 252     # one trading year for the ROC percentile
VOLUME_WINDOW = 20
VWAP_WINDOW = 20          # daily bars: a rolling VWAP (a session-anchored one is just the bar's HLC3)

COLUMNS = ("rsi", "macd_hist", "bb_pct_b", "adx", "ema_fast", "ema_slow", "ema_cross", "roc",
           "roc_pct", "vwap", "volume_ratio", "realized_vol", "vol_pct", "atr")


def compute(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per bar with every indicator; rows before the warm-up are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library warns about pandas deprecations at import
        import pandas_ta_classic as ta

    o, h, l, c, v = (frame[k] for k in ("open", "high", "low", "close", "volume"))
    out = pd.DataFrame(index=frame.index, columns=list(COLUMNS), dtype=float)
    if len(frame) <= WARMUP_BARS:
        return out  # all NaN: not enough history for any indicator to mean anything

    def column(result: Any, i: int | None = None) -> pd.Series:  # what pandas-ta returns (untyped)
        if result is None:
            return pd.Series(np.nan, index=frame.index)
        return result.iloc[:, i] if i is not None else result

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas-ta's own FutureWarnings say nothing about our data
        out["rsi"] = column(ta.rsi(c, length=14))
        out["macd_hist"] = column(ta.macd(c, fast=12, slow=26, signal=9), 1)
        out["bb_pct_b"] = column(ta.bbands(c, length=20, std=2.0), 4)
        out["adx"] = column(ta.adx(h, l, c, length=14), 0)
        out["ema_fast"] = column(ta.ema(c, length=21))
        out["ema_slow"] = column(ta.ema(c, length=55))
        out["roc"] = column(ta.roc(c, length=10))
        out["atr"] = column(ta.atr(h, l, c, length=14))
    out["ema_cross"] = np.sign(out["ema_fast"] - out["ema_slow"])
    out["roc_pct"] = out["roc"].rolling(ROC_RANK_WINDOW, min_periods=WARMUP_BARS).rank(pct=True)
    typical = (h + l + c) / 3
    out["vwap"] = (typical * v).rolling(VWAP_WINDOW).sum() / v.rolling(VWAP_WINDOW).sum()
    out["volume_ratio"] = v / v.rolling(VOLUME_WINDOW).mean()
    log_ret = np.log(c / c.shift(1))
    out["realized_vol"] = log_ret.rolling(20).std() * np.sqrt(252)  # type: ignore[attr-defined]  # np.log(Series) is a Series
    out["vol_pct"] = out["realized_vol"].rolling(ROC_RANK_WINDOW, min_periods=WARMUP_BARS).rank(pct=True)
    out.iloc[:WARMUP_BARS] = np.nan
    return out[list(COLUMNS)]
