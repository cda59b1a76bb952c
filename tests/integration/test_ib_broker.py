"""The IB adapter against a fake of ib_async's IB object: brackets tagged by client order id,
fills booked once from execution events, a gateway restart survived with the book
reconciled, and the same agents trading on live IB bars."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from ib_async import BarData

from brain.broker.base import BracketOrder
from brain.broker.ib import IBBroker, IBConfig
from brain.bus import Bus
from brain.market.history import bundled_frame
from tests.fakes.fake_ib import FakeIB
from tests.support.dates import day


def bracket(coid: str, side="buy", qty=10.0, stop=145.0, tp=160.0) -> BracketOrder:
    return BracketOrder(coid, "AAPL", side, qty, stop, tp, "AAPL@2024-03-01T00:00:00+00:00", f"p-{coid}",
                        day("2024-03-01"))


@pytest.fixture
async def adapter(pool, db, tmp_path):
    fake = FakeIB()
    bus = Bus(pool, settings=db.settings(tmp_path), listen_url=db.url("app"))

    async def publish(out, conn):
        await bus.publish_many(out, conn=conn)

    broker = IBBroker(fake, IBConfig(client_id=11, heartbeat_s=0.1, reconnect_max_s=0.2), pool, publish)
    await broker.connect()
    return fake, broker


async def place(pool, broker, order):
    async with pool.acquire() as conn, conn.transaction():
        return await broker.place_bracket(conn, order)


async def test_a_bracket_goes_to_ib_tagged_and_its_fills_are_booked(adapter, pool, db):
    fake, broker = adapter
    result = await place(pool, broker, bracket("c1"))
    assert result.status == "working"
    legs = [(o.orderRef, o.orderType, o.action, o.parentId != 0, o.transmit) for _, o in fake.placed]
    assert legs == [("c1", "MKT", "BUY", False, False), ("c1-tp", "LMT", "SELL", True, False),
                    ("c1-stop", "STP", "SELL", True, True)], "only the last leg transmits the bracket"
    assert fake.by_ref("c1-stop").order.auxPrice == 145.0 and fake.by_ref("c1-tp").order.lmtPrice == 160.0
    assert dict(db.sql("SELECT client_order_id, status FROM orders WHERE broker = 'ib'")) == {
        "c1": "working", "c1-stop": "new", "c1-tp": "new"}

    fake.execute("c1", 150.25)                       # the entry fills; commission reported after
    await broker.settled()
    assert db.sql("SELECT qty, price, commission FROM fills WHERE client_order_id = 'c1'") == [(10.0, 150.25, 1.0)]
    assert db.sql("SELECT qty, avg_price, stop_price, take_profit FROM positions WHERE account = 'ib'") == [
        (10.0, 150.25, 145.0, 160.0)]
    assert dict(db.sql("SELECT client_order_id, status FROM orders WHERE broker = 'ib'")) == {
        "c1": "filled", "c1-stop": "working", "c1-tp": "working"}

    fake.execute("c1-stop", 145.0)                   # the stop fills; IB cancels its OCA sibling
    await broker.settled()
    assert dict(db.sql("SELECT client_order_id, status FROM orders WHERE broker = 'ib'")) == {
        "c1": "filled", "c1-stop": "filled", "c1-tp": "cancelled"}
    assert db.sql("SELECT count(*) FROM positions WHERE account = 'ib'") == [(0,)]
    filled = db.sql("SELECT payload->>'reason', (payload->>'pnl')::float8 FROM agent_messages "
                    "WHERE topic = 'order.filled' ORDER BY id")
    # Loss on the stop: 10 x (145.00 - 150.25) less the round trip's two $1 commissions.
    assert filled == [("entry", None), ("stop", pytest.approx(-54.5))]
    assert db.sql("SELECT payload->>'outcome' FROM agent_messages WHERE topic = 'cycle.outcome'") == [("filled",)]

    await broker.sync_account()
    [(equity, cash)] = db.sql("SELECT equity, cash FROM accounts WHERE account = 'ib'")
    assert equity == pytest.approx(100_000 - 52.5 - 2.0) and cash == equity
    assert db.sql("SELECT value->>'broker' FROM app_state WHERE key = 'heartbeat:broker'") == [("ib",)]


async def test_a_commission_reported_just_after_its_execution_is_in_the_published_fill(adapter, pool, db):
    """IB sends an execution's commission in a message of its own, a moment later: the fill
    waits for it, so the close's published P&L counts both commissions of the round trip."""
    fake, broker = adapter
    await place(pool, broker, bracket("c7"))
    fake.execute("c7", 150.25, commission_after_s=0.2)
    await broker.settled()
    fake.execute("c7-stop", 145.0, commission_after_s=0.2)
    await broker.settled()
    assert _published_fills(db) == [(1.0, None), (1.0, pytest.approx(10 * (145.0 - 150.25) - 2.0))]


def _published_fills(db) -> list[tuple]:
    """Each order.filled message's commission and P&L, in order."""
    return db.sql("SELECT (payload->>'commission')::float8, (payload->>'pnl')::float8 FROM agent_messages "
                  "WHERE topic = 'order.filled' ORDER BY id")


async def test_nothing_is_sent_twice(adapter, pool, db):
    fake, broker = adapter
    assert (await place(pool, broker, bracket("c2"))).status == "working"
    assert (await place(pool, broker, bracket("c2"))).status == "duplicate"
    # Sent by a transaction that then failed: the redelivery records it, and sends nothing.
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await broker.place_bracket(conn, bracket("c3"))
            raise RuntimeError("the ack transaction died after the orders went out")
    assert db.sql("SELECT count(*) FROM orders WHERE client_order_id LIKE 'c3%'") == [(0,)]
    again = await place(pool, broker, bracket("c3"))
    assert again.status == "working" and "not sent again" in again.detail
    assert [o.orderRef for _, o in fake.placed].count("c3") == 1
    # A replayed execution event is booked once.
    fill = fake.execute("c2", 151.0)
    await broker.settled()
    fake.execDetailsEvent.emit(fake.by_ref("c2"), fill)
    await broker.settled()
    assert db.sql("SELECT count(*) FROM fills WHERE client_order_id = 'c2'") == [(1,)]


async def test_halts_and_the_lock_stop_orders_before_ib(adapter, pool, db):
    fake, broker = adapter
    db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (2, 'manual', 'test', 'operator')")
    refused = await place(pool, broker, bracket("c4"))
    assert refused.status == "rejected" and "halt" in refused.detail
    db.sql("UPDATE halts SET resumed_at = now(), resumed_by = 'op', resume_reason = 'test'")
    db.sql("UPDATE accounts SET locked = true WHERE account = 'ib'")
    assert (await place(pool, broker, bracket("c5"))).status == "rejected"
    fake.restart()
    db.sql("UPDATE accounts SET locked = false WHERE account = 'ib'")
    gone = await place(pool, broker, bracket("c6"))
    assert gone.status == "rejected" and "not connected" in gone.detail
    assert fake.placed == [] and db.sql("SELECT count(*) FROM orders") == [(0,)]


async def test_a_gateway_restart_is_survived_and_reconciled(adapter, pool, db):
    fake, broker = adapter
    assert (await place(pool, broker, bracket("c7"))).status == "working"
    db.sql("INSERT INTO positions (account, symbol, qty, avg_price, opened_at) VALUES ('ib', 'IBM', 5, 190, now())")
    loop = asyncio.ensure_future(broker.run())
    try:
        fake.restart()                                  # the nightly restart
        fake.execute("c7", 149.5)                       # filled while nobody listened
        fake.hold("MSFT", 3, 410.0)                     # and a position the book never saw
        await asyncio.sleep(0.5)
        beat_before = db.sql("SELECT updated_at FROM app_state WHERE key = 'heartbeat:broker'")
        await asyncio.sleep(0.4)
        assert db.sql("SELECT updated_at FROM app_state WHERE key = 'heartbeat:broker'") == beat_before, \
            "no broker heartbeat while the gateway is away"
        fake.come_back()
        for _ in range(100):  # the adapter retries with backoff (1 s first)
            if broker.connections == 2:
                break
            await asyncio.sleep(0.05)
        assert fake.client_ids == [11, 11]
    finally:
        loop.cancel()
    problems = broker.last_reconcile
    assert any("c7: fill" in p and "booked" in p for p in problems)
    assert any(p.startswith("MSFT: book had 0, IB holds 3") for p in problems)
    assert any(p.startswith("IBM: book had 5, IB holds nothing") for p in problems)
    assert any(p == "MSFT: IB position without a working stop" for p in problems)
    assert dict(db.sql("SELECT symbol, qty FROM positions WHERE account = 'ib'")) == {"AAPL": 10.0, "MSFT": 3.0}
    assert db.sql("SELECT status FROM orders WHERE client_order_id = 'c7'") == [("filled",)]


async def test_a_fill_booked_on_reconnect_waits_for_its_commission_report(adapter, pool, db):
    """Executions asked for after a reconnect come first, their commission reports after."""
    fake, broker = adapter
    await place(pool, broker, bracket("c6"))
    fake.execute("c6", 150.25)
    await broker.settled()
    loop = asyncio.ensure_future(broker.run())
    try:
        fake.restart()
        fake.execute("c6-stop", 145.0, commission_after_s=0.2)   # stopped out while nobody listened
        fake.come_back()
        for _ in range(100):  # the adapter retries with backoff (1 s first), then reconciles
            if broker.connections == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
    await broker.settled()
    assert any(p.startswith("c6-stop: fill") for p in broker.last_reconcile), broker.last_reconcile
    assert _published_fills(db) == [(1.0, None), (1.0, pytest.approx(10 * (145.0 - 150.25) - 2.0))]


async def test_unknown_symbols_and_a_dead_gateway_are_one_line_errors(pool):
    from brain.errors import BrainError

    fake = FakeIB()
    fake.down = True
    broker = IBBroker(fake, IBConfig(port=4002, client_id=11), pool)
    with pytest.raises(BrainError, match=r"^IB gateway at 127.0.0.1:4002 did not answer \(client id 11\)"):
        await broker.connect()
    fake.down = False
    await broker.connect()
    odd = BracketOrder("c8", "ZZZZ", "buy", 1, 1.0, 2.0, "ZZZZ@x", "p", day("2024-03-01"))
    result = await place(pool, broker, odd)
    assert result.status == "rejected" and "does not know the stock 'ZZZZ'" in result.detail


def _history(symbol: str, last: str) -> list[BarData]:
    frame = bundled_frame(symbol).loc["2012-01-01":last]
    return [BarData(date=ts.date(), open=r.open, high=r.high, low=r.low, close=r.close, volume=r.volume,
                    average=r.close, barCount=1000) for ts, r in frame.iterrows()]


async def test_live_ib_bars_drive_the_agents_to_an_order_at_ib(db, tmp_path):
    """History warms the indicators up; 5-second bars make the next bar; the same agents
    that trade the replay propose, sign and send the bracket to IB."""
    from tests.support.cycle import context_dir, outcome_of
    from brain.runtime import open_brain

    fake = FakeIB()
    fake.history["AAPL"] = _history("AAPL", "2013-01-14")
    settings = db.settings(tmp_path / "home", context_dir=context_dir(tmp_path), skills_dir=db_skills(),
                           bus_poll_interval_s=0.5, ingress_port=0, broker="ib", ib_symbols=["AAPL"],
                           ib_bar_seconds=3600, heartbeat_interval_s=0.2)
    (tmp_path / "home").mkdir()
    brain = await open_brain(settings, db.url("app"), require_watchdog=False, watch_skills=False, ib=fake)
    await brain.start()
    try:
        stored = db.sql("SELECT count(*), max(ts) FROM bars WHERE symbol = 'AAPL' AND source = 'ib'")
        assert stored[0][0] == len(fake.history["AAPL"]) and stored[0][1] == day("2013-01-14")
        # AAPL on 2013-01-15 (open 498.30, high 498.99, low 483.38, close 485.92) in three
        # 5-second bars of the 15:00 hour; the first bar of 16:00 finishes it.
        t = day("2013-01-15T15:00:00")
        real = bundled_frame("AAPL").loc["2013-01-15"]
        fake.tick("AAPL", t, real.open, real.high, real.open - 1, real.open - 0.5, real.volume * 0.5)
        fake.tick("AAPL", t + timedelta(seconds=5), real.open - 0.5, real.open, real.low, real.close - 1,
                  real.volume * 0.3)
        fake.tick("AAPL", t + timedelta(seconds=10), real.close - 1, real.close, real.close - 1.5, real.close,
                  real.volume * 0.2)
        assert db.sql("SELECT count(*) FROM bars WHERE ts = %s", (t,)) == [(0,)], "not finished yet"
        fake.tick("AAPL", day("2013-01-15T16:00:00"), real.close, real.close, real.close, real.close, 100)
        await brain.ib_feed.settled()
        [bar] = db.sql("SELECT open, high, low, close, volume, source FROM bars WHERE symbol = 'AAPL' AND ts = %s", (t,))
        assert bar == pytest.approx((real.open, real.high, real.low, real.close, real.volume, "ib"))
        corr = f"AAPL@{t.isoformat()}"
        assert await outcome_of(db, corr, timeout=20) == "placed"
        [(coid, side)] = db.sql("SELECT client_order_id, side FROM orders WHERE intent = 'open' AND correlation_id = %s",
                                (corr,))
        assert side == "sell" and [o.orderRef for _, o in fake.placed] == [coid, f"{coid}-tp", f"{coid}-stop"]
        fake.execute(coid, real.close)
        for _ in range(100):
            if db.sql("SELECT outcome FROM agent_journal WHERE correlation_id = %s AND outcome = 'filled'", (corr,)):
                break
            await asyncio.sleep(0.05)
        assert db.sql("SELECT outcome FROM agent_journal WHERE correlation_id = %s AND outcome = 'filled'",
                      (corr,)) == [("filled",)]
    finally:
        await brain.close()


def db_skills():
    from tests.support.paths import REPO

    return REPO / "skills"


async def test_a_fill_ib_sends_before_its_order_row_commits_is_booked(adapter, pool, db):
    """The order is sent inside the transaction that records it; IB can fill it before that
    transaction commits, and the fill must wait for the row rather than be dropped."""
    fake, broker = adapter
    async with pool.acquire() as conn, conn.transaction():
        assert (await broker.place_bracket(conn, bracket("c9"))).status == "working"
        fake.execute("c9", 150.0)                    # filled at once, the ack not yet committed
        await asyncio.sleep(0.3)
    await broker.settled()
    assert db.sql("SELECT status FROM orders WHERE client_order_id = 'c9'") == [("filled",)]
    assert db.sql("SELECT qty, avg_price FROM positions WHERE account = 'ib'") == [(10.0, 150.0)]


async def test_a_close_filled_in_parts_shrinks_the_position_part_by_part(adapter, pool, db):
    fake, broker = adapter
    await place(pool, broker, bracket("c8"))
    fake.execute("c8", 150.0)
    await broker.settled()
    held = []
    for part in (4, 3):
        fake.execute("c8-stop", 145.0, shares=part)
        await broker.settled()
        held += db.sql("SELECT qty FROM positions WHERE account = 'ib'")
    assert held == [(6.0,), (3.0,)]
    fake.execute("c8-stop", 145.0, shares=3)
    await broker.settled()
    assert db.sql("SELECT count(*) FROM positions WHERE account = 'ib'") == [(0,)]


async def test_history_leaves_the_bar_still_forming_to_the_stream(pool, db, tmp_path):
    """History read during the session ends with the bar in progress: storing it would keep a
    partial bar for good and skip its cycle when the stream finishes it."""
    from brain.market.ib_feed import IBBarFeed

    fake = FakeIB()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    forming = now - timedelta(seconds=now.timestamp() % 300)  # the 5-minute bar in progress
    fake.history["AAPL"] = [BarData(date=forming - timedelta(minutes=5 * k), open=10.0, high=11.0, low=9.0,
                                    close=10.5, volume=100, average=10.2, barCount=10) for k in (2, 1, 0)]
    feed = IBBarFeed(fake, pool, Bus(pool, settings=db.settings(tmp_path), listen_url=db.url("app")), ["AAPL"],
                  bar_seconds=300)
    await feed.subscribe()
    stored = [ts for (ts,) in db.sql("SELECT ts FROM bars WHERE symbol = 'AAPL' ORDER BY ts")]
    assert stored == [forming - timedelta(minutes=10), forming - timedelta(minutes=5)]


async def test_live_bars_are_regular_hours_like_the_history_they_follow(pool, db, tmp_path):
    """The indicators warm up on regular-hours history: a pre-market bar among them would be
    a bar the backtest never saw, traded on at its thin prices."""
    from brain.market.ib_feed import IBBarFeed

    fake = FakeIB()
    feed = IBBarFeed(fake, pool, Bus(pool, settings=db.settings(tmp_path), listen_url=db.url("app")), ["AAPL"],
                     bar_seconds=3600)
    await feed.subscribe()
    for t in ("2013-01-15T13:00:00", "2013-01-15T13:00:05",    # 08:00 in New York: pre-market
              "2013-01-15T14:30:00", "2013-01-15T14:59:55",    # the session's first half hour
              "2013-01-15T15:00:00"):                          # finishes the 14:00 (UTC) bar
        fake.tick("AAPL", day(t), 100.0, 101.0, 99.0, 100.5, 1000)
    await feed.settled()
    assert db.sql("SELECT ts FROM bars WHERE symbol = 'AAPL' ORDER BY ts") == [(day("2013-01-15T14:00:00"),)]


async def test_a_gateway_lost_again_while_reconciling_is_retried_not_fatal(adapter, pool, db):
    fake, broker = adapter
    loop = asyncio.ensure_future(broker.run())
    try:
        fake.restart()
        await asyncio.sleep(0.2)
        fake.drop_next_executions_request = True       # the next reconnect dies mid-reconciliation
        fake.come_back()
        for _ in range(200):
            if broker.connections == 2 or loop.done():
                break
            await asyncio.sleep(0.05)
        assert not loop.done(), loop.exception() if loop.done() else None
        assert broker.connections == 2 and fake.client_ids == [11, 11, 11]
    finally:
        loop.cancel()


async def test_a_contract_lookup_ib_never_answers_refuses_the_order_in_time(adapter, pool, db, monkeypatch):
    """The executor asks for the contract holding the lock every entry decision waits on."""
    import brain.broker.ib as ib

    fake, broker = adapter
    monkeypatch.setattr(ib, "CONTRACT_LOOKUP_S", 0.2)
    fake.slow_lookups = True
    result = await asyncio.wait_for(place(pool, broker, bracket("c6")), 5)
    assert result.status == "rejected" and "did not describe the stock 'AAPL'" in result.detail
    assert db.sql("SELECT count(*) FROM orders WHERE client_order_id LIKE 'c6%%'") == [(0,)]
