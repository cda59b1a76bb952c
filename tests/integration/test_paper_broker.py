"""The paper broker on real AAPL bars (January 2013), every number checked by hand."""
from __future__ import annotations

import asyncpg
import pytest

from brain.broker.base import BracketOrder
from brain.broker.paper import PaperBroker
from brain.market.bars import Bar
from brain.market.history import bar_at, bundled_frame
from tests.support.dates import day

AAPL = bundled_frame("AAPL").loc["2013-01-14":"2013-01-25"]


@pytest.fixture
async def conn(db):
    c = await asyncpg.connect(db.url("app"))
    yield c
    await c.close()


async def feed(conn, broker: PaperBroker, first: str, last: str) -> list:
    fills = []
    for i, ts in enumerate(AAPL.index):
        if day(first) <= ts.to_pydatetime() <= day(last):
            bar = bar_at("AAPL", AAPL, i)
            async with conn.transaction():
                await store(conn, bar)
                fills += await broker.on_bars(conn, [bar])
    return fills


async def store(conn, bar) -> None:
    await conn.execute("INSERT INTO bars (symbol, ts, open, high, low, close, volume) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                       bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)


def bracket(coid: str, signal: str, side="buy", qty=10.0, stop=480.0, tp=509.0) -> BracketOrder:
    return BracketOrder(coid, "AAPL", side, qty, stop, tp, f"AAPL@{signal}", f"p-{coid}", day(signal))


async def test_entry_at_next_open_then_take_profit(conn):
    broker = PaperBroker()
    await broker.ensure_account(conn)
    await feed(conn, broker, "2013-01-14", "2013-01-15")
    assert (await broker.place_bracket(conn, bracket("t1", "2013-01-15"))).status == "working"
    fills = await feed(conn, broker, "2013-01-16", "2013-01-16")
    entry, exit_ = fills
    # 2013-01-16 opened at 494.64; a buy slips 2 bps: 494.64 * 1.0002 = 494.738928.
    assert entry.price == pytest.approx(494.738928) and entry.commission == 1.0
    # Its high 509.44 reached the 509 take-profit; a limit fills at its level, without slippage.
    assert (exit_.reason, exit_.price) == ("take_profit", 509.0)
    assert exit_.pnl == pytest.approx(10 * (509.0 - 494.738928) - 1.0 - 1.0), "both commissions of the round trip"
    acct = await broker.account_row(conn)
    assert acct["cash"] == pytest.approx(100_000 - 4947.38928 - 1 + 5090 - 1)
    assert await broker.positions(conn) == []
    statuses = dict(await conn.fetch("SELECT client_order_id, status FROM orders ORDER BY id"))
    assert statuses == {"t1": "filled", "t1-stop": "cancelled", "t1-tp": "filled"}


async def test_stop_first_when_a_bar_touches_both(conn):
    broker = PaperBroker()
    await broker.ensure_account(conn)
    await feed(conn, broker, "2013-01-14", "2013-01-22")
    await broker.place_bracket(conn, bracket("t2", "2013-01-22", stop=505.0, tp=514.0))
    # 2013-01-23: low 504.77 <= 505 and high 514.99 >= 514: the stop is assumed first.
    entry, exit_ = await feed(conn, broker, "2013-01-23", "2013-01-23")
    assert entry.price == pytest.approx(508.81 * 1.0002)
    assert exit_.reason == "stop" and exit_.price == pytest.approx(505.0 * 0.9998)


async def test_gap_through_the_stop_fills_at_the_open(conn):
    broker = PaperBroker()
    await broker.ensure_account(conn)
    await feed(conn, broker, "2013-01-14", "2013-01-22")
    await broker.place_bracket(conn, bracket("t3", "2013-01-22", stop=470.0, tp=530.0))
    [entry] = await feed(conn, broker, "2013-01-23", "2013-01-23")
    [pos] = await broker.positions(conn)
    assert pos["qty"] == 10 and pos["stop_price"] == 470.0
    # 2013-01-24 opened at 460, below the 470 stop: the stop fills at the open, slipped.
    [exit_] = await feed(conn, broker, "2013-01-24", "2013-01-24")
    assert exit_.reason == "stop" and exit_.price == pytest.approx(460.0 * 0.9998)


async def test_a_short_and_equity_marked_to_market(conn):
    broker = PaperBroker()
    await broker.ensure_account(conn)
    await feed(conn, broker, "2013-01-14", "2013-01-16")
    await broker.place_bracket(conn, bracket("t4", "2013-01-16", side="sell", qty=10, stop=530.0, tp=440.0))
    [entry] = await feed(conn, broker, "2013-01-17", "2013-01-17")
    # A sell slips down: 510.31 * 0.9998; cash grows by the proceeds less commission.
    assert entry.price == pytest.approx(510.31 * 0.9998)
    acct = await broker.account_row(conn)
    assert acct["cash"] == pytest.approx(100_000 + 10 * 510.31 * 0.9998 - 1)
    # Equity marks the -10 shares at the 502.68 close.
    assert acct["equity"] == pytest.approx(acct["cash"] - 10 * 502.68)


async def test_placement_is_idempotent_and_refused_under_a_halt(conn, db):
    broker = PaperBroker()
    await broker.ensure_account(conn)
    assert (await broker.place_bracket(conn, bracket("t5", "2013-01-15"))).status == "working"
    assert (await broker.place_bracket(conn, bracket("t5", "2013-01-15"))).status == "duplicate"
    assert await conn.fetchval("SELECT count(*) FROM orders WHERE client_order_id LIKE 't5%'") == 3
    db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (2, 'test', 'halted', 'watchdog')",
           role="watchdog")
    result = await broker.place_bracket(conn, bracket("t6", "2013-01-15"))
    assert result.status == "rejected" and "trading halted" in result.detail
    assert await conn.fetchval("SELECT count(*) FROM orders WHERE client_order_id LIKE 't6%'") == 0


async def test_one_step_of_several_symbols_is_applied_together(conn):
    """A replay step hands the broker every symbol's bar at once: AAPL's entry fills and hits
    its take-profit, MSFT's entry fills and stays open, and the account is marked once."""
    msft = bundled_frame("MSFT").loc["2013-01-14":"2013-01-25"]
    broker = PaperBroker()
    await broker.ensure_account(conn)
    await feed(conn, broker, "2013-01-14", "2013-01-15")
    await conn.execute("INSERT INTO bars (symbol, ts, open, high, low, close, volume) "
                       "VALUES ('MSFT', $1, 26.83, 27.29, 26.825, 27.21, 48244500)", day("2013-01-15"))
    await broker.place_bracket(conn, bracket("a1", "2013-01-15"))
    await broker.place_bracket(conn, BracketOrder("m1", "MSFT", "buy", 100.0, 25.0, 30.0, "MSFT@2013-01-15",
                                                  "p-m1", day("2013-01-15")))
    step = [bar_at("AAPL", AAPL, list(AAPL.index).index(day("2013-01-16"))),
            bar_at("MSFT", msft, list(msft.index).index(day("2013-01-16")))]
    async with conn.transaction():
        for b in step:
            await store(conn, b)
        fills = await broker.on_bars(conn, step)
    assert sorted((f.client_order_id, f.reason) for f in fills) == [
        ("a1", "entry"), ("a1-tp", "take_profit"), ("m1", "entry")]
    # AAPL: in at 494.64 slipped 2 bps, out at the 509 limit; MSFT: 100 in at 27.15 slipped.
    cash = 100_000 - 10 * 494.64 * 1.0002 - 1 + 10 * 509.0 - 1 - 100 * 27.15 * 1.0002 - 1
    acct = await broker.account_row(conn)
    assert acct["cash"] == pytest.approx(cash)
    assert acct["equity"] == pytest.approx(cash + 100 * 27.04)  # MSFT marked at the step's 27.04 close
    assert [(p["symbol"], p["qty"]) for p in await broker.positions(conn)] == [("MSFT", 100)]
    assert await conn.fetchval("SELECT count(*) FROM equity_history WHERE ts = $1", day("2013-01-16")) == 1
    with pytest.raises(ValueError):
        await broker.on_bars(conn, [step[0], step[0]])


async def test_a_late_bar_of_an_earlier_day_does_not_start_a_new_day(conn):
    """Posted bars keep time per symbol only: one symbol's bar may come after another's of the
    next day. The day's baseline for the daily-loss limits must not move back and forth."""
    broker = PaperBroker()
    await broker.ensure_account(conn)
    await feed(conn, broker, "2013-01-16", "2013-01-16")
    await broker.place_bracket(conn, bracket("t9", "2013-01-16", side="buy", qty=50, stop=400.0, tp=600.0))
    await feed(conn, broker, "2013-01-17", "2013-01-17")     # filled at the open, marked at the close
    before = await broker.account_row(conn)
    assert before["day"] == day("2013-01-17").date()
    late = Bar(symbol="MSFT", ts=day("2013-01-16"), open=27.0, high=27.5, low=26.8, close=27.2, volume=1)
    async with conn.transaction():
        await store(conn, late)
        await broker.on_bars(conn, [late])
    after = await broker.account_row(conn)
    assert (after["day"], after["day_start_equity"]) == (before["day"], before["day_start_equity"])
