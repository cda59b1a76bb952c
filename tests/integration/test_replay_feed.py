"""The replay feed with the real agents and bus: bars go out in time order across symbols,
the feed waits for the cycles that can trade (their orders fill at the next bar's open) and
not for the others, and every cycle still ends in exactly one outcome."""
from __future__ import annotations

from datetime import datetime

from brain.strategy import can_trade
from brain.topics import correlation_for
from brain.signals.state import MarketState
from tests.support.cycle import replay
from tests.support.dates import day


async def test_replay_in_time_order_waits_only_for_cycles_that_can_trade(db, tmp_path):
    feed, stats, history = await replay(db, tmp_path, ["AAPL", "MSFT"], start=day("2013-01-02"),
                                        end=day("2013-04-01"))

    assert stats.bars == feed.total == db.sql("SELECT count(*) FROM bars")[0][0]
    # One portfolio clock: no bar of one symbol goes out before an earlier bar of another.
    times = [t for (t,) in db.sql("SELECT (payload->>'ts')::timestamptz FROM agent_messages "
                                  "WHERE topic = 'market.bar' ORDER BY id")]
    assert times == sorted(times)

    states = db.sql("SELECT correlation_id, payload::text FROM agent_messages WHERE topic = 'market.state'")
    tradable = [c for c, p in states if can_trade(MarketState.model_validate_json(p))]
    assert stats.awaited == len(tradable) and 0 < len(tradable) < len(states) == stats.states

    # Every cycle ends exactly once; only an order placed on the last bar still waits for a fill.
    ends = dict(db.sql("SELECT correlation_id, count(*) FROM agent_messages WHERE topic = 'cycle.outcome' GROUP BY 1"))
    placed = {c for (c,) in db.sql("SELECT correlation_id FROM agent_messages WHERE topic = 'order.placed'")}
    last_bars = {correlation_for(s, f.index[-1].to_pydatetime()) for s, f in history.frames.items()}
    for corr, _ in states:
        assert ends.get(corr, 0) == 1 or (ends.get(corr, 0) == 0 and corr in placed & last_bars), corr

    # The feed waited for each order: every entry filled at the open of the very next bar.
    fills = db.sql("""SELECT o.symbol, s.payload->>'bar_time', f.filled_at, f.price FROM orders o
                        JOIN fills f ON f.client_order_id = o.client_order_id
                        JOIN agent_messages s ON s.topic = 'market.state' AND s.correlation_id = o.correlation_id
                       WHERE o.intent = 'open' AND o.parent_client_order_id IS NULL""")
    assert fills, "the window holds at least one filled order"
    for symbol, bar_time, filled_at, _price in fills:
        frame = history.frames[symbol]
        after = frame.index[frame.index > datetime.fromisoformat(bar_time)]
        assert filled_at == after[0].to_pydatetime(), (symbol, bar_time, filled_at)
