"""A model is asked only where a trade can follow: a bar whose signals name no side, or whose
computed regime allows no stance for that side, ends its cycle as a skip, journaled with
its numbers, without a model call. The trades are the same as when every bar asked."""
from __future__ import annotations

from brain.signals.state import MarketState
from brain.strategy import can_trade
from tests.support.cycle import replay
from tests.support.dates import day

# Every fill of the replay below (offline route, so deterministic), as it was while every bar
# asked the Regime agent: (symbol, side, qty, price, day).
TRADES = [
    ('AAPL', 'buy', 14.0, 675.7051, '2012-09-05'),
    ('MSFT', 'buy', 319.0, 31.0462, '2012-09-07'),
    ('IBM', 'buy', 49.0, 200.5901, '2012-09-11'),
    ('MSFT', 'sell', 319.0, 30.2739, '2012-09-26'),
    ('IBM', 'sell', 49.0, 208.6558, '2012-10-01'),
    ('AAPL', 'sell', 14.0, 652.3957, '2012-10-02'),
    ('MSFT', 'sell', 332.0, 30.224, '2012-10-05'),
    ('IBM', 'buy', 47.0, 209.992, '2012-10-09'),
    ('IBM', 'sell', 47.0, 205.0999, '2012-10-10'),
    ('MSFT', 'buy', 332.0, 28.6191, '2012-10-19'),
    ('MSFT', 'sell', 349.0, 28.7243, '2012-10-22'),
    ('AAPL', 'sell', 15.0, 630.8738, '2012-10-23'),
    ('IBM', 'sell', 52.0, 191.4517, '2012-10-26'),
    ('AAPL', 'buy', 15.0, 589.4557, '2012-10-31'),
    ('AAPL', 'sell', 16.0, 598.1004, '2012-11-01'),
    ('IBM', 'buy', 52.0, 197.7813, '2012-11-01'),
    ('IBM', 'sell', 50.0, 197.4905, '2012-11-02'),
    ('MSFT', 'buy', 349.0, 29.6636, '2012-11-02'),
    ('AAPL', 'buy', 16.0, 547.1517, '2012-11-08'),
    ('IBM', 'buy', 50.0, 187.9855, '2012-11-12'),
    ('IBM', 'sell', 54.0, 188.5823, '2012-11-19'),
    ('GOOG', 'sell', 15.0, 669.3761, '2012-11-20'),
    ('IBM', 'buy', 54.0, 193.0104, '2012-11-23'),
    ('MSFT', 'sell', 375.0, 27.2246, '2012-11-23'),
    ('GOOG', 'buy', 15.0, 698.4864, '2012-11-30'),
    ('GOOG', 'buy', 14.0, 705.6411, '2012-12-17'),
    ('AAPL', 'sell', 18.0, 531.3637, '2012-12-19'),
    ('GOOG', 'sell', 14.0, 741.423, '2013-01-04'),
    ('GOOG', 'buy', 13.0, 735.5971, '2013-01-07'),
    ('GOOG', 'sell', 13.0, 711.3302, '2013-01-17'),
    ('AAPL', 'buy', 18.0, 460.0, '2013-01-24'),
    ('MSFT', 'buy', 375.0, 28.0463, '2013-01-24'),
    ('GOOG', 'buy', 13.0, 750.9202, '2013-01-25'),
    ('IBM', 'buy', 49.0, 203.7307, '2013-01-30'),
    ('MSFT', 'buy', 364.0, 28.0456, '2013-02-15'),
    ('GOOG', 'sell', 13.0, 799.0527, '2013-02-19'),
    ('GOOG', 'buy', 12.0, 798.1596, '2013-02-21'),
    ('IBM', 'sell', 49.0, 198.5825, '2013-02-21'),
]


async def test_a_bar_that_cannot_trade_asks_no_model_and_the_trades_stay_the_same(db, tmp_path):
    await replay(db, tmp_path, ["AAPL", "MSFT", "IBM", "GOOG"], start=day("2012-09-01"))
    trades = [(s, side, qty, round(price, 4), str(at)) for s, side, qty, price, at in db.sql(
        "SELECT symbol, side, qty, price, filled_at::date FROM fills ORDER BY filled_at, symbol, side, qty")]
    assert trades == TRADES

    cycles = db.sql("SELECT correlation_id, payload::text FROM agent_messages WHERE topic = 'market.state'")
    asked = {c for (c,) in db.sql("SELECT DISTINCT correlation_id FROM llm_cost_ledger")}
    untradable = [c for c, p in cycles if not can_trade(MarketState.model_validate_json(p))]
    assert untradable and not asked & set(untradable), "no model call for a bar that cannot trade"
    [(regime_calls,)] = db.sql("SELECT count(*) FROM llm_cost_ledger WHERE agent = 'regime'")
    assert regime_calls == len(cycles) - len(untradable), "each bar that can trade asks the Regime agent once"

    # Each of them still ends its cycle, once, as a skip that says why, with its numbers.
    ends = {c: (o, by, detail) for c, o, by, detail in db.sql(
        "SELECT correlation_id, payload->>'outcome', payload->>'by', payload->>'detail' FROM agent_messages "
        "WHERE topic = 'cycle.outcome'")}
    skips = {c: n for c, n in db.sql("SELECT correlation_id, payload->'numbers' FROM agent_messages "
                                     "WHERE topic = 'trade.skip' AND payload->>'by' = 'signals'")}
    for corr in untradable:
        outcome, by, detail = ends[corr]
        assert (outcome, by) == ("skip", "signals"), corr
        assert "signals do not align on a side" in detail or "allows no stance" in detail, detail
        assert {"close", "composite", "atr"} <= set(skips[corr]), corr
    [(body,)] = db.sql("SELECT body_md FROM agent_journal WHERE correlation_id = %s", (untradable[0],))
    assert "Skip (Signals)" in body and "no model was asked" in body
