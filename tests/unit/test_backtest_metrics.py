"""Backtest figures re-derived by hand."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from brain.backtest.metrics import buy_and_hold, compute, daily_equity, max_drawdown, sharpe

D0 = datetime(2013, 1, 2, tzinfo=timezone.utc)


def test_daily_equity_keeps_the_last_mark_of_each_day():
    curve = [(D0, 100.0), (D0 + timedelta(hours=1), 101.0), (D0 + timedelta(days=1), 99.0)]
    assert daily_equity(curve) == [101.0, 99.0]


def test_drawdown_and_sharpe_by_hand():
    assert max_drawdown([100, 120, 90, 130, 117]) == pytest.approx(0.25)   # 120 -> 90
    rets = [0.01, -0.005, 0.02]
    eq = [100.0]
    for r in rets:
        eq.append(eq[-1] * (1 + r))
    mean = sum(rets) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / 2)
    assert sharpe(eq) == pytest.approx(mean / sd * math.sqrt(252))


def test_whole_run_figures():
    curve = [(D0 + timedelta(days=i), e) for i, e in enumerate([100_500.0, 99_000.0, 102_000.0])]
    m = compute(100_000.0, curve, [300.0, -100.0, 50.0], buy_and_hold({"A": 10.0, "B": 20.0}, {"A": 11.0, "B": 18.0}))
    assert m.return_pct == 2.0 and m.trades == 3 and m.wins == 2 and m.win_rate_pct == pytest.approx(66.67)
    assert m.buy_and_hold_pct == pytest.approx(0.0)          # +10% and -10%, equal weight
    assert m.max_drawdown_pct == pytest.approx(round((1 - 99_000 / 100_500) * 100, 3))


def test_price_table_uses_the_row_in_effect_on_the_day():
    from datetime import date

    from brain.router.prices import PriceTable, Usage

    table = PriceTable()
    usage = Usage(input_tokens=0, output_tokens=0, cache_read_tokens=1_000_000)
    assert table.cost("claude-sonnet-5-5", usage, date(2026, 9, 15)) == pytest.approx(0.20)
    assert table.cost("claude-sonnet-5-5", usage, date(2026, 11, 1)) == pytest.approx(0.10)
    assert table.cost("no-such-model", usage) is None


def test_an_unpriced_model_is_booked_at_the_tables_highest_rates(tmp_path):
    from datetime import date

    from brain.router.prices import PriceTable, Usage

    (tmp_path / "prices.yaml").write_text(
        "models:\n"
        "  a: [{effective: 2026-01-01, input: 1.0, output: 9.0, cache_write: 0.5, cache_read: 0.1}]\n"
        "  b: [{effective: 2026-01-01, input: 3.0, output: 4.0, cache_write: 2.0, cache_read: 0.3},\n"
        "      {effective: 2027-01-01, input: 30.0, output: 40.0, cache_write: 20.0, cache_read: 3.0}]\n")
    table = PriceTable(tmp_path / "prices.yaml")
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000,
                  cache_write_tokens=1_000_000)
    assert table.highest(usage, date(2026, 6, 1)) == pytest.approx(3.0 + 9.0 + 0.3 + 2.0)
    assert table.highest(usage, date(2027, 6, 1)) == pytest.approx(30.0 + 40.0 + 3.0 + 20.0)
