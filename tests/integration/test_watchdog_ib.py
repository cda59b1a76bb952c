"""The watchdog's own IB connection (its own client id): L3 cancels entries at IB and keeps
the stops, L4 cancels everything and flattens at market, and a gateway that is down at the
moment of the halt is flattened as soon as it answers."""
from __future__ import annotations

import pytest
from ib_async import MarketOrder, StopOrder

from brain.broker.ib import stock
from tests.fakes.fake_ib import FakeIB
from watchdog_proc.actions import enforce, raise_halt
from watchdog_proc.checks import Breach
from watchdog_proc.ib_link import IBLink


@pytest.fixture
def settings(db, tmp_path):
    (tmp_path / "context").mkdir()
    return db.settings(tmp_path / "home", context_dir=tmp_path / "context", broker="ib")


@pytest.fixture
def book(db):
    """IB holds 10 AAPL with its stop working, and an MSFT entry not yet filled."""
    fake = FakeIB()
    fake.connect(clientId=11)                        # the brain's connection places the orders
    aapl, msft = stock("AAPL"), stock("MSFT")
    fake.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="e1", transmit=True))
    fake.execute("e1", 150.0)
    fake.placeOrder(aapl, StopOrder("SELL", 10, 145.0, orderRef="e1-stop", parentId=0, transmit=True))
    fake.placeOrder(msft, MarketOrder("BUY", 5, orderRef="e2", transmit=True))
    fake.disconnect()
    db.sql("INSERT INTO accounts (account, cash, equity, high_water_mark, day_start_equity, day) "
           "VALUES ('ib', 98500, 100000, 100000, 100000, current_date)")
    db.sql("INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty, status, broker) VALUES "
           "('e2', 'MSFT', 'buy', 'open', 'market', 5, 'working', 'ib')")
    return fake


def statuses(fake) -> dict[str, str]:
    return {t.order.orderRef: t.orderStatus.status for t in fake.trades()}


def test_l3_cancels_entries_at_ib_and_keeps_the_stops(conn, settings, book, db):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    halt_id = raise_halt(conn, settings, Breach("broker_heartbeat", 3, "no broker heartbeat"), ib_link=link)
    assert book.client_ids[-1] == 12, "the watchdog connects with its own client id"
    assert statuses(book) == {"e1": "Filled", "e1-stop": "Submitted", "e2": "Cancelled"}
    assert db.sql("SELECT status FROM orders WHERE client_order_id = 'e2'") == [("cancelled",)]
    [(actions,)] = db.sql("SELECT facts->'actions' FROM agent_journal WHERE facts->>'halt_id' = %s", (str(halt_id),))
    assert "cancelled 1 working entry orders at IB" in actions


def test_l4_flattens_at_ib_and_locks_the_adapter(conn, settings, book, db):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    st = statuses(book)
    assert st["e1-stop"] == "Cancelled" and st["e2"] == "Cancelled"
    [(ref, order)] = [(s, o) for s, o in book.placed if (o.orderRef or "").startswith("flatten-")]
    assert (ref, order.action, order.totalQuantity, order.orderType) == ("AAPL", "SELL", 10, "MKT")
    assert db.sql("SELECT symbol, side, qty, status, broker FROM orders WHERE client_order_id = %s",
                  (order.orderRef,)) == [("AAPL", "sell", 10.0, "working", "ib")]
    assert db.sql("SELECT locked FROM accounts WHERE account = 'ib'") == [(True,)]
    # Enforcing again sends nothing more while the flatten order works, and leaves it working.
    enforce(conn, settings, link)
    assert len([o for _, o in book.placed if (o.orderRef or "").startswith("flatten-")]) == 1
    assert statuses(book)[order.orderRef] == "Submitted"
    assert db.sql("SELECT status FROM orders WHERE client_order_id = %s", (order.orderRef,)) == [("working",)]


def test_a_gateway_down_at_l4_is_flattened_when_it_answers(conn, settings, book, db):
    book.down = True
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    halt_id = raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [(actions,)] = db.sql("SELECT facts->'actions' FROM agent_journal WHERE facts->>'halt_id' = %s", (str(halt_id),))
    assert any("could NOT reach IB to flatten" in a for a in actions)
    assert db.sql("SELECT locked FROM accounts WHERE account = 'ib'") == [(True,)]
    assert enforce(conn, settings, link) == []  # still down: nothing to report done
    book.come_back()
    done = enforce(conn, settings, link)
    assert any("sent market orders to close AAPL" in line for line in done)
    assert statuses(book)["e1-stop"] == "Cancelled"


def flatten_orders(fake) -> list:
    return [o for _, o in fake.placed if (o.orderRef or "").startswith("flatten-")]


def test_a_filled_flatten_the_position_report_still_shows_is_not_sent_again(conn, settings, book, db, monkeypatch):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    book.lag_positions()  # IB has filled the flatten; its position report does not show it yet
    book.execute(first.orderRef, 149.0)
    assert enforce(conn, settings, link) == []
    assert flatten_orders(book) == [first], "a second SELL 10 would have left the account short 10 AAPL"
    book.catch_up()
    assert enforce(conn, settings, link) == [] and flatten_orders(book) == [first]
    # A position shown once the fill has had time to appear is believed.
    book.hold("AAPL", 10, 150.0)
    monkeypatch.setattr("watchdog_proc.ib_link.FLATTEN_SETTLE_S", 0.0)
    done = enforce(conn, settings, link)
    assert any("sent market orders to close AAPL" in line for line in done)
    assert len(flatten_orders(book)) == 2


def test_a_flatten_ib_cancelled_is_sent_again_at_once(conn, settings, book, db):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    book.cancelOrder(first)  # IB rejected or cancelled it: nothing is closing the position
    done = enforce(conn, settings, link)
    assert any("sent market orders to close AAPL" in line for line in done)
    [_, second] = flatten_orders(book)
    assert (second.action, second.totalQuantity) == ("SELL", 10)


def test_a_watchdog_standing_by_lets_go_of_its_ib_connection(book):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    assert link.ensure() and book.isConnected()
    link.disconnect()  # the acting watchdog connects with the same client id, and IB drops the older
    assert not book.isConnected() and link.state().startswith("down")
    link.disconnect()  # and again, harmlessly


class Clock:
    """watchdog_proc.ib_link's view of time, moved by hand (its wall clock moves with it)."""

    def __init__(self) -> None:
        self.now = self.start = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        import time
        return time.time() + (self.now - self.start)

    def utc(self):
        from datetime import datetime, timezone
        return datetime.fromtimestamp(self.time(), timezone.utc)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr("watchdog_proc.ib_link.time", c)
    return c


def test_a_flatten_sent_while_the_market_is_closed_settles_from_its_fill(conn, settings, book, db, clock):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    clock.now += 15 * 3600  # the DAY order waits for the open
    assert enforce(conn, settings, link) == []
    book.lag_positions()
    book.execute(first.orderRef, 149.0, when=clock.utc())  # the open: it fills, and the report lags
    assert enforce(conn, settings, link) == [] and flatten_orders(book) == [first]
    clock.now += 9
    assert enforce(conn, settings, link) == [] and flatten_orders(book) == [first]
    clock.now += 2  # past the settle time, what the report still shows is believed
    assert any("sent market orders to close AAPL" in line for line in enforce(conn, settings, link))


def test_a_flatten_cancelled_after_filling_part_waits_for_the_report(conn, settings, book, db, clock):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    book.lag_positions()
    book.execute(first.orderRef, 149.0, shares=4)
    book.cancelOrder(first)  # 4 of 10 sold, the rest cancelled; the report still shows 10
    assert enforce(conn, settings, link) == [] and flatten_orders(book) == [first], "a SELL 10 would oversell by 4"
    book.catch_up()
    clock.now += 11
    enforce(conn, settings, link)
    [_, second] = flatten_orders(book)
    assert (second.action, second.totalQuantity) == ("SELL", 6)


def test_a_second_l4_while_the_first_closes_sends_nothing_twice(conn, settings, book, db, clock):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    raise_halt(conn, settings, Breach("daily_loss", 4, "daily loss 6%"), ib_link=link)  # while it works
    assert flatten_orders(book) == [first] and statuses(book)[first.orderRef] == "Submitted"
    book.lag_positions()
    book.execute(first.orderRef, 149.0)
    raise_halt(conn, settings, Breach("margin", 4, "margin 130%"), ib_link=link)  # while the report lags
    assert flatten_orders(book) == [first]


def test_a_flatten_done_and_reported_does_not_delay_a_later_one(conn, settings, book, db, clock):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    book.execute(first.orderRef, 149.0)
    assert enforce(conn, settings, link) == []  # the report shows AAPL closed
    clock.now += 60
    book.hold("AAPL", 3, 150.0)  # later, AAPL is held again
    assert any("sent market orders to close AAPL" in line for line in enforce(conn, settings, link))


def test_a_flatten_not_yet_listed_when_first_looked_for_settles_from_its_fill(conn, settings, book, db, clock,
                                                                           monkeypatch):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    listed = book.reqAllOpenOrders
    monkeypatch.setattr(book, "reqAllOpenOrders", lambda: [])  # just sent: IB does not list it yet
    assert enforce(conn, settings, link) == []
    monkeypatch.setattr(book, "reqAllOpenOrders", listed)
    assert enforce(conn, settings, link) == []  # listed, waiting for the open
    clock.now += 15 * 3600
    book.lag_positions()
    book.execute(first.orderRef, 149.0, when=clock.utc())
    assert enforce(conn, settings, link) == [] and flatten_orders(book) == [first]


def test_an_inactive_flatten_ib_still_lists_is_sent_again(conn, settings, book, db):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    book.by_ref(first.orderRef).orderStatus.status = "Inactive"  # rejected, and still in the open list

    def listed():
        return [t for t in book.trades() if t.orderStatus.status in ("PreSubmitted", "Submitted", "Inactive")]

    book.reqAllOpenOrders = listed
    assert any("sent market orders to close AAPL" in line for line in enforce(conn, settings, link))
    assert len(flatten_orders(book)) == 2


def test_a_watchdog_restarted_while_a_fill_settles_does_not_close_again(conn, settings, book, db):
    link = IBLink("127.0.0.1", 4002, 12, ib=book)
    raise_halt(conn, settings, Breach("max_drawdown", 4, "drawdown 21%"), ib_link=link)
    [first] = flatten_orders(book)
    book.lag_positions()
    book.execute(first.orderRef, 149.0)
    restarted = IBLink("127.0.0.1", 4002, 12, ib=book)  # knows nothing of what the first one sent
    assert enforce(conn, settings, restarted) == [] and flatten_orders(book) == [first]
