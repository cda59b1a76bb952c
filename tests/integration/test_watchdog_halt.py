"""A halt outlives whatever fails after it is raised, and a watchdog whose passes fail does
not look alive."""
from __future__ import annotations

import time

import psycopg
import pytest

import watchdog_proc.__main__ as watchdog
from watchdog_proc.actions import raise_halt
from watchdog_proc.checks import L4, Breach


def _an_open_paper_book(db) -> None:
    db.sql("""INSERT INTO accounts (account, cash, equity, high_water_mark, day_start_equity, day)
              VALUES ('paper', 70000, 80000, 100000, 100000, current_date)""")
    db.sql("""INSERT INTO positions (account, symbol, qty, avg_price, opened_at)
              VALUES ('paper', 'IBM', 100, 100.0, now())""")


def test_a_halt_stays_in_force_when_its_journal_cannot_be_written(db, tmp_path):
    _an_open_paper_book(db)
    blocked = tmp_path / "context"
    blocked.write_text("a file where the journal folder should be")
    settings = db.settings(tmp_path, context_dir=blocked)
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        raise_halt(conn, settings, Breach("drawdown", L4, "20% below the high-water mark"))
    assert db.sql("SELECT level, invariant, resumed_at FROM halts") == [(4, "drawdown", None)]
    assert db.sql("SELECT locked FROM accounts") == [(True,)]
    assert db.sql("SELECT count(*) FROM positions") == [(0,)], "the flatten stands"


def test_a_pass_that_fails_writes_no_heartbeat(db, tmp_path, monkeypatch):
    def broken(conn, settings):
        raise RuntimeError("a check with a bug")

    monkeypatch.setattr(watchdog, "run_checks", broken)
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        with pytest.raises(RuntimeError):
            watchdog.check_once(conn, db.settings(tmp_path))
    assert db.sql("SELECT count(*) FROM app_state WHERE key = 'heartbeat:watchdog'") == [(0,)]
    monkeypatch.undo()
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        watchdog.check_once(conn, db.settings(tmp_path))
    assert db.sql("SELECT count(*) FROM app_state WHERE key = 'heartbeat:watchdog'") == [(1,)]


def test_the_heartbeat_does_not_wait_for_paging(db, tmp_path, monkeypatch):
    """Pages retry for many seconds; a watchdog that has checked must not look dead meanwhile
    (and `brain up` waits only so long for its first heartbeat)."""
    _an_open_paper_book(db)
    beat_when_paged = []

    def page(conn, settings, halt_id, breach):
        beat_when_paged.append(conn.execute(
            "SELECT count(*) FROM app_state WHERE key = 'heartbeat:watchdog'").fetchone()[0])

    monkeypatch.setattr(watchdog, "page", page)
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        raised = watchdog.check_once(conn, db.settings(tmp_path))
    assert raised and beat_when_paged and all(n == 1 for n in beat_when_paged)


def test_a_watchdog_that_cannot_read_the_halts_writes_no_heartbeat(db, tmp_path):
    db.sql("REVOKE SELECT ON halts FROM brain_watchdog")
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        with pytest.raises(RuntimeError, match="cannot be read"):
            watchdog.check_once(conn, db.settings(tmp_path))
    assert db.sql("SELECT count(*) FROM app_state WHERE key = 'heartbeat:watchdog'") == [(0,)]


def test_the_watch_is_renewed_before_every_page(db, tmp_path, monkeypatch):
    """A failing page takes about 18 s: a lease renewed only once a pass would run out while
    its holder still acts, and a watchdog standing by would act beside it."""
    from watchdog_proc import lease

    _an_open_paper_book(db)
    db.sql("INSERT INTO positions (account, symbol, qty, avg_price, opened_at) VALUES ('paper', 'MSFT', 5, 1, now())")
    me, ages = lease.identity(), []

    def page(conn, settings, halt_id, breach):
        ages.append(lease.holder(conn)[1])
        time.sleep(0.6)  # a slow pager

    monkeypatch.setattr(watchdog, "page", page)
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        assert lease.hold(conn, me, 1.0, False)
        raised = watchdog.check_once(conn, db.settings(tmp_path), keep_watch=lambda: lease.hold(conn, me, 1.0, True))
        assert len(raised) >= 2 and len(ages) >= 2
        assert all(age < 0.3 for age in ages), ages
        assert lease.holder(conn)[0]["instance"] == me["instance"]


def test_a_lock_on_app_state_does_not_stop_the_watch(db, tmp_path, monkeypatch):
    """brain_app may lock a table it can update; the lease then cannot be had, and the
    watchdog keeps checking, halting and paging rather than waiting on it."""
    from watchdog_proc import lease

    _an_open_paper_book(db)
    paged = []
    monkeypatch.setattr(watchdog, "page", lambda conn, settings, halt_id, breach: paged.append(breach.invariant))
    with psycopg.connect(db.url("app")) as brain, psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        me, standby = lease.identity(), lease.identity()
        assert lease.hold(conn, me, 30.0, False)
        brain.execute("LOCK TABLE app_state IN SHARE MODE")  # held until this block ends
        conn.execute("SET lock_timeout = '200ms'")
        assert lease.hold(conn, me, 30.0, True), "the watchdog holding the watch keeps it"
        assert not lease.hold(conn, standby, 30.0, False), "one standing by does not act beside it"
        with pytest.raises(psycopg.errors.LockNotAvailable):
            watchdog.check_once(conn, db.settings(tmp_path))  # checks and halts, then cannot beat
        assert "max_drawdown" in {inv for (inv,) in db.sql("SELECT invariant FROM halts")}
        assert "max_drawdown" in paged, "paged although the pass failed after raising it"
        assert lease.hold(conn, standby, 0.1, False), "a lease run out is taken, written or not"


def test_checks_a_lock_keeps_from_reading_halt_at_l3(db, tmp_path, monkeypatch):
    paged = []
    monkeypatch.setattr(watchdog, "page", lambda conn, settings, halt_id, breach: paged.append(breach.invariant))
    with psycopg.connect(db.url("app")) as brain, psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        brain.execute("LOCK TABLE app_state IN ACCESS EXCLUSIVE MODE")  # not even readable
        conn.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            watchdog.check_once(conn, db.settings(tmp_path))
        assert db.sql("SELECT level, invariant FROM halts WHERE resumed_at IS NULL") == [(3, "checks_blocked")]
        assert paged == ["checks_blocked"]
        with pytest.raises(psycopg.errors.LockNotAvailable):
            watchdog.check_once(conn, db.settings(tmp_path))
        assert db.sql("SELECT count(*) FROM halts") == [(1,)], "raised once while it lasts"


def test_an_l4_halt_commits_although_the_brain_holds_the_account_locked(db, tmp_path):
    _an_open_paper_book(db)
    with psycopg.connect(db.url("app")) as brain, psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        brain.execute("SELECT 1 FROM accounts WHERE account = 'paper' FOR UPDATE")  # a slow or hung transaction
        conn.execute("SET lock_timeout = '200ms'")
        halt_id = raise_halt(conn, db.settings(tmp_path), Breach("max_drawdown", L4, "drawdown 20%"))
        assert db.sql("SELECT level, invariant FROM halts WHERE id = %s", (halt_id,)) == [(4, "max_drawdown")]
        [(actions,)] = db.sql("SELECT facts->'actions' FROM agent_journal WHERE facts->>'halt_id' = %s",
                              (str(halt_id),))
        assert any("locking the broker failed" in a for a in actions)
    # The lock gone, the next pass locks the book and flattens it.
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        watchdog.enforce(conn, db.settings(tmp_path))
    assert db.sql("SELECT locked FROM accounts WHERE account = 'paper'") == [(True,)]
    assert db.sql("SELECT count(*) FROM positions") == [(0,)]


def test_an_entry_a_halt_cancels_ends_its_cycle(db, tmp_path):
    """No fill will end the cycle of an entry the watchdog cancelled: the watchdog ends it, once,
    for the recorder to journal."""
    from brain.topics import CycleOutcome
    from watchdog_proc.checks import L3

    _an_open_paper_book(db)
    corr = "AAPL@2013-01-15T00:00:00+00:00"
    db.sql("INSERT INTO orders (client_order_id, correlation_id, symbol, side, intent, order_type, qty, status, "
           "signal_time) VALUES ('b-1', %s, 'AAPL', 'buy', 'open', 'market', 5, 'working', '2013-01-15')", (corr,),
           role="app")
    db.sql("INSERT INTO orders (client_order_id, parent_client_order_id, correlation_id, symbol, side, intent, "
           "order_type, qty, stop_price, status) VALUES ('b-1-stop', 'b-1', %s, 'AAPL', 'sell', 'close', 'stop', 5, "
           "90, 'new')", (corr,), role="app")
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        raise_halt(conn, db.settings(tmp_path), Breach("brain_heartbeat", L3, "the brain is silent"))
        watchdog.enforce(conn, db.settings(tmp_path))  # a later pass finds nothing more to end
    assert db.sql("SELECT status FROM orders WHERE client_order_id = 'b-1'") == [("cancelled",)]
    [(payload,)] = db.sql("SELECT payload::text FROM agent_messages WHERE topic = 'cycle.outcome' "
                          "AND correlation_id = %s", (corr,))
    outcome = CycleOutcome.model_validate_json(payload)
    assert (outcome.outcome, outcome.by, outcome.symbol) == ("halted", "watchdog", "AAPL")
    assert outcome.detail == "the entry was cancelled by an L3 halt before it filled"
