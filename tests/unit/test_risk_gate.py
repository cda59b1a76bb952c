"""Hard caps hold under adversarial proposals; Half-Kelly sizing checked by hand."""
from __future__ import annotations

import math

import pytest

from brain.risk import limits
from brain.risk.gate import Account, Proposal, evaluate, half_kelly

FLAT = Account(equity=100_000, cash=100_000, high_water_mark=100_000, day_start_equity=100_000, open_positions={})


def proposal(**kw) -> Proposal:
    base = dict(symbol="AAPL", side="buy", entry=100.0, stop=96.0, take_profit=106.0, confidence=0.6, edge=1.5,
                size_factor=1.0, stance="risk_on")
    base.update(kw)
    return Proposal(**base)


def test_half_kelly_by_hand():
    # p = 0.6, b = 1.5: f* = 0.6 - 0.4 / 1.5 = 0.3333; half of it = 0.1667
    assert half_kelly(0.6, 1.5) == pytest.approx(0.166667, abs=1e-6)
    assert half_kelly(0.3, 1.0) == 0.0           # negative Kelly means no bet
    assert half_kelly(0.9, 0.0) == 0.0


def test_size_is_capped_by_risk_per_trade_and_position_size():
    d = evaluate(proposal(), FLAT)
    assert d.verdict == "approve"
    # Half-Kelly 16.7% is capped to 2% risk = $2,000 / $4 per share = 500 shares,
    # then the 10% position cap: $10,000 / $100 = 100 shares.
    assert d.qty == 100
    wide = evaluate(proposal(stop=80.0, take_profit=130.0), FLAT)
    # 2% risk = $2,000 / $20 per share = 100 shares; position cap also 100.
    assert wide.qty == 100
    assert wide.numbers["risk_at_stop"] <= limits.MAX_RISK_PER_TRADE * FLAT.equity


def test_huge_confidence_and_edge_cannot_exceed_the_caps():
    d = evaluate(proposal(confidence=1.0, edge=1e9, size_factor=1.0), FLAT)
    assert d.verdict == "approve"
    assert d.qty * 100.0 <= limits.MAX_POSITION_FRACTION * FLAT.equity
    assert d.qty * 4.0 <= limits.MAX_RISK_PER_TRADE * FLAT.equity


@pytest.mark.parametrize("bad", [
    dict(stop=None), dict(stop=float("nan")), dict(entry=float("inf")), dict(confidence=1.5),
    dict(confidence=-0.1), dict(size_factor=2.0), dict(edge=-1.0), dict(stop=101.0), dict(stop=50.0),
    dict(take_profit=102.0), dict(entry=-5.0), dict(side="sell", stop=96.0),
])
def test_malformed_or_dangerous_proposals_are_vetoed(bad):
    d = evaluate(proposal(**bad), FLAT)
    assert d.verdict == "veto" and d.qty == 0 and d.reasons


def test_stance_scales_the_risk_budget():
    on = evaluate(proposal(stop=80.0, take_profit=130.0, stance="risk_on"), FLAT)
    neutral = evaluate(proposal(stop=80.0, take_profit=130.0, stance="neutral"), FLAT)
    off = evaluate(proposal(stop=80.0, take_profit=130.0, stance="risk_off"), FLAT)
    assert on.qty == 100 and neutral.qty == 50 and off.qty == 25


def test_fifty_symbols_at_once_never_open_more_than_five():
    account = FLAT
    opened = []
    for i in range(50):
        d = evaluate(proposal(symbol=f"S{i:02d}"), account)
        if d.verdict == "approve":
            opened.append(f"S{i:02d}")
            account = Account(account.equity, account.cash, account.high_water_mark, account.day_start_equity,
                              {**account.open_positions, f"S{i:02d}": d.qty})
    assert len(opened) == limits.MAX_OPEN_POSITIONS


def test_daily_loss_and_drawdown_block_new_entries():
    losing_day = Account(equity=94_000, cash=94_000, high_water_mark=100_000, day_start_equity=99_000, open_positions={})
    assert evaluate(proposal(), losing_day).verdict == "veto"
    deep = Account(equity=84_000, cash=84_000, high_water_mark=100_000, day_start_equity=84_000, open_positions={})
    d = evaluate(proposal(), deep)
    assert d.verdict == "veto" and "drawdown" in d.reasons[0]


def test_locked_broker_and_existing_position_veto():
    locked = Account(100_000, 100_000, 100_000, 100_000, {}, locked=True)
    assert evaluate(proposal(), locked).verdict == "veto"
    holding = Account(100_000, 100_000, 100_000, 100_000, {"AAPL": 10})
    assert "already holding" in evaluate(proposal(), holding).reasons[0]


def test_caps_are_code_constants():
    assert (limits.MAX_RISK_PER_TRADE, limits.MAX_POSITION_FRACTION, limits.MAX_OPEN_POSITIONS,
            limits.DAILY_LOSS_BLOCK) == (0.02, 0.10, 5, -0.05)
    assert not math.isnan(limits.MAX_DRAWDOWN)
