"""Performance figures from what a run stored: the equity curve and the closing fills."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Metrics:
    start_equity: float
    end_equity: float
    return_pct: float
    buy_and_hold_pct: float
    sharpe: float
    max_drawdown_pct: float
    trades: int
    wins: int
    win_rate_pct: float


def daily_equity(curve: list[tuple[datetime, float]]) -> list[float]:
    """The last equity of each day (several symbols mark the book on the same day)."""
    by_day: dict = {}
    for ts, equity in sorted(curve):
        by_day[ts.date()] = equity
    return list(by_day.values())


def sharpe(equities: list[float]) -> float:
    rets = [b / a - 1 for a, b in zip(equities, equities[1:]) if a > 0]
    if len(rets) < 2:
        return 0.0
    mean = sum(rets) / len(rets)
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
    return 0.0 if sd == 0 else mean / sd * math.sqrt(252)


def max_drawdown(equities: list[float]) -> float:
    peak, worst = -math.inf, 0.0
    for e in equities:
        peak = max(peak, e)
        worst = max(worst, 1 - e / peak if peak > 0 else 0.0)
    return worst


def compute(start_equity: float, curve: list[tuple[datetime, float]], closed_pnls: list[float],
            buy_and_hold_pct: float) -> Metrics:
    equities = [start_equity] + daily_equity(curve)
    end = equities[-1]
    wins = sum(1 for p in closed_pnls if p > 0)
    return Metrics(start_equity, round(end, 2), round((end / start_equity - 1) * 100, 3), round(buy_and_hold_pct, 3),
                   round(sharpe(equities), 3), round(max_drawdown(equities) * 100, 3), len(closed_pnls), wins,
                   round(100 * wins / len(closed_pnls), 2) if closed_pnls else 0.0)


def buy_and_hold(first_opens: dict[str, float], last_closes: dict[str, float]) -> float:
    """Equal weight in every symbol from its first replayed open to its last close, in percent."""
    legs = [last_closes[s] / first_opens[s] - 1 for s in first_opens if s in last_closes and first_opens[s] > 0]
    return 100 * sum(legs) / len(legs) if legs else 0.0
