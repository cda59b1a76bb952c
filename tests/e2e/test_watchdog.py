"""The watchdog as a real process: halts on stale heartbeats, drawdown, naked positions and
spend; flattens at L4; only `brainctl resume` lifts a halt; brain_app cannot, even with SQL."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg
import pytest

from tests.support.paths import REPO
from tests.support.waiting import wait_for
from tests.support.watchdog import active_halts, beat, seed_account, start_watchdog, stop


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def keep_beating(db, names, stop_event, interval=0.2):
    while not stop_event.is_set():
        for n in names:
            beat(db, n)
        time.sleep(interval)


def brainctl(db, home, *args, stdin=None):
    env = db.env(home)
    env["BRAIN_CONTEXT_DIR"] = str(home / "context")
    return subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_stale_broker_heartbeat_halts_at_l3_within_3s(db, home):
    seed_account(db)
    stop_beats = threading.Event()
    beater = threading.Thread(target=keep_beating, args=(db, ["brain", "broker"], stop_beats), daemon=True)
    beater.start()
    proc = start_watchdog(db, home, broker_stale_s=1.0, heartbeat_stale_s=30)
    try:
        wait_for(lambda: db.sql("SELECT 1 FROM app_state WHERE key = 'heartbeat:watchdog'"))
        time.sleep(1.0)
        assert active_halts(db) == []
        stop_beats.set()
        beater.join()
        stopped = time.monotonic()
        # Keep the brain alive by hand: only the broker falls silent.
        halt = wait_for(lambda: [h for h in active_halts(db) if h[2] == "broker_heartbeat"] or beat(db, "brain"),
                        timeout=6)
        assert halt[0][1] == 3
        assert time.monotonic() - stopped <= 1.0 + 3.0, "L3 within 3 s of the staleness threshold"
        # The halt commits on its own before the watchdog acts on it and journals it.
        entry = wait_for(lambda: db.sql("SELECT body_md, file_path FROM agent_journal WHERE kind = 'halt'"),
                         timeout=5)[0]
        assert "no broker heartbeat" in entry[0] and "brainctl resume" in entry[0]
    finally:
        stop(proc)


def test_drawdown_breach_flattens_every_position_and_locks(db, home):
    seed_account(db, equity=80_000, hwm=100_000)
    for sym, qty, close in (("AAPL", 10, 450.0), ("MSFT", -100, 28.0)):
        db.sql("INSERT INTO bars (symbol, ts, open, high, low, close, volume) VALUES (%s, now(), %s, %s, %s, %s, 1)",
               (sym, close, close, close, close), role="app")
        db.sql("INSERT INTO positions (symbol, qty, avg_price, stop_price, take_profit, opened_at) "
               "VALUES (%s, %s, %s, 1, 1000, now())", (sym, qty, close), role="app")
        db.sql("INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty, stop_price, status) "
               "VALUES (%s, %s, 'sell', 'close', 'stop', 1, 1, 'working')", (f"{sym}-stop", sym), role="app")
    proc = start_watchdog(db, home, heartbeat_stale_s=30)
    try:
        wait_for(lambda: db.sql("SELECT 1 FROM halts WHERE level = 4"), timeout=8)
        wait_for(lambda: db.sql("SELECT count(*) FROM positions") == [(0,)], timeout=8)
        assert db.sql("SELECT locked FROM accounts") == [(True,)]
        assert db.sql("SELECT count(*) FROM orders WHERE status = 'working'") == [(0,)]
        flats = dict(db.sql("SELECT symbol, side FROM fills"))
        assert flats == {"AAPL": "sell", "MSFT": "buy"}
    finally:
        stop(proc)


def test_position_without_a_stop_and_budget_breach_halt(db, home):
    seed_account(db)
    db.sql("INSERT INTO positions (symbol, qty, avg_price, opened_at) VALUES ('IBM', 5, 200, now())", role="app")
    db.sql("INSERT INTO llm_cost_ledger (agent, skill, skill_hash, route, model, cost_usd, outcome) "
           "VALUES ('strategist', 'strategist', 'x', 'anthropic', 'claude-sonnet-5-5', 3.5, 'ok')", role="app")
    proc = start_watchdog(db, home, heartbeat_stale_s=30, router_daily_budget_usd=2.0)
    try:
        wait_for(lambda: {"position_without_stop", "model_budget"} <= {h[2] for h in active_halts(db)}, timeout=8)
        levels = {h[2]: h[1] for h in active_halts(db)}
        assert levels["position_without_stop"] == 3 and levels["model_budget"] == 2
        time.sleep(1.0)
        assert len(active_halts(db)) == 2, "one halt per invariant while it is active"
    finally:
        stop(proc)


def test_only_the_operator_can_lift_a_halt(db, home):
    seed_account(db)
    [(halt_id,)] = db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES "
                          "(3, 'brain_heartbeat', 'no brain heartbeat for 9s', 'watchdog') RETURNING id",
                          role="watchdog")
    # The brain's role: no write on halts, and the orders trigger refuses opening orders.
    for sql in ("UPDATE halts SET resumed_at = now(), resumed_by = 'brain'", "DELETE FROM halts"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.sql(sql, role="app")
    with pytest.raises(psycopg.errors.RaiseException, match="trading halted"):
        db.sql("INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty) "
               "VALUES ('x1', 'AAPL', 'buy', 'open', 'market', 1)", role="app")
    db.sql("INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty) "
           "VALUES ('x2', 'AAPL', 'sell', 'close', 'market', 1)", role="app")  # exits stay allowed

    missing = brainctl(db, home, "resume", "999", "--reason", "x", "--yes")
    assert missing.returncode == 1 and missing.stderr.strip() == "brainctl: no halt with id 999"
    no_confirm = brainctl(db, home, "resume", str(halt_id), "--reason", "checked")
    assert no_confirm.returncode == 1 and "confirmation needed" in no_confirm.stderr
    ok = brainctl(db, home, "resume", str(halt_id), "--reason", "brain restarted and healthy", "--operator", "ana",
                  "--yes")
    assert ok.returncode == 0, ok.stderr
    assert f"halt {halt_id} resumed by ana" in ok.stdout
    again = brainctl(db, home, "resume", str(halt_id), "--reason", "again", "--yes")
    assert again.returncode == 1 and "already resumed" in again.stderr
    assert db.sql("SELECT resumed_by, resume_reason FROM halts") == [("ana", "brain restarted and healthy")]
    assert db.sql("SELECT count(*) FROM agent_journal WHERE kind = 'resume'") == [(1,)]
    db.sql("INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty) "
           "VALUES ('x3', 'AAPL', 'buy', 'open', 'market', 1)", role="app")


def test_resume_refuses_while_the_invariant_still_breaks(db, home):
    seed_account(db)
    db.sql("INSERT INTO positions (symbol, qty, avg_price, opened_at) VALUES ('IBM', 5, 200, now())", role="app")
    [(halt_id,)] = db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES "
                          "(3, 'position_without_stop', 'IBM has no stop', 'watchdog') RETURNING id", role="watchdog")
    refused = brainctl(db, home, "resume", str(halt_id), "--reason", "looked", "--yes")
    assert refused.returncode == 1 and "still breaks" in refused.stderr
    forced = brainctl(db, home, "resume", str(halt_id), "--reason", "manual stop at the broker", "--yes", "--force")
    assert forced.returncode == 0 and "(forced)" in forced.stdout
    assert db.sql("SELECT forced FROM halts") == [(True,)]
    no_tty = brainctl(db, home, "halt", "--level", "2", "--reason", "")
    assert no_tty.returncode == 1 and "--reason must say why" in no_tty.stderr


def test_a_journal_that_cannot_be_written_stops_a_resume_but_not_a_halt(db, home):
    seed_account(db)
    env = db.env(home)
    env["BRAIN_CONTEXT_DIR"] = str(home / "not-a-folder")
    (home / "not-a-folder").write_text("a file where the journal folder should be")

    def ctl(*args):
        return subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)

    halted = ctl("halt", "--level", "2", "--reason", "drill")
    assert halted.returncode == 0 and "raised at L2" in halted.stdout, halted.stderr
    assert "the halt is in force, but its journal entry could not be written" in halted.stderr
    assert halted.stderr.count("\n") == 1
    [(halt_id,)] = db.sql("SELECT id FROM halts WHERE resumed_at IS NULL")
    resumed = ctl("resume", str(halt_id), "--reason", "drill over", "--yes")
    assert resumed.returncode == 1 and resumed.stderr.startswith("brainctl: [Errno"), resumed.stderr
    assert resumed.stderr.count("\n") == 1
    assert db.sql("SELECT count(*) FROM halts WHERE resumed_at IS NULL") == [(1,)], "still in force"


def watchdog_pid(db):
    rows = db.sql("SELECT (value->>'pid')::int FROM app_state WHERE key = 'heartbeat:watchdog' "
                  "AND updated_at > clock_timestamp() - interval '1 second'")
    return rows[0][0] if rows else None


def test_a_second_watchdog_stands_by_and_takes_the_watch_when_the_first_dies(db, home, tmp_path):
    seed_account(db)
    db.sql("INSERT INTO positions (symbol, qty, avg_price, opened_at) VALUES ('IBM', 5, 200, now())", role="app")
    first = start_watchdog(db, home, heartbeat_stale_s=30, watchdog_lease_s=3)
    second_home = tmp_path / "second"
    second = None
    try:
        wait_for(lambda: watchdog_pid(db) == first.pid, timeout=10)
        second = start_watchdog(db, second_home, heartbeat_stale_s=30, watchdog_lease_s=3)
        wait_for(lambda: b"standing by: the watchdog pid %d" % first.pid in (second_home / "watchdog.log").read_bytes(),
                 timeout=10)
        for _ in range(10):  # the second neither beats nor acts
            assert watchdog_pid(db) == first.pid
            time.sleep(0.2)
        assert [h[2] for h in active_halts(db)] == ["position_without_stop"]
        first.kill()  # no clean stop: the lease has to run out
        first.wait()
        died = time.monotonic()
        wait_for(lambda: watchdog_pid(db) == second.pid, timeout=20)
        assert time.monotonic() - died < 3 + 2, "taken over within the lease (3 s) and a pass"
        assert b"taking over the watch" in (second_home / "watchdog.log").read_bytes()
        assert [h[2] for h in active_halts(db)] == ["position_without_stop"], "the halt is not raised again"
    finally:
        stop(first)
        if second is not None:
            stop(second)


def test_a_watchdog_that_stops_cleanly_hands_the_watch_over_at_once(db, home, tmp_path):
    seed_account(db)
    first = start_watchdog(db, home, heartbeat_stale_s=30)
    second = None
    try:
        wait_for(lambda: watchdog_pid(db) == first.pid, timeout=10)
        second = start_watchdog(db, tmp_path / "second", heartbeat_stale_s=30)
        wait_for(lambda: b"standing by" in (tmp_path / "second" / "watchdog.log").read_bytes(), timeout=10)
        stop(first)
        stopped = time.monotonic()
        wait_for(lambda: watchdog_pid(db) == second.pid, timeout=10)
        assert time.monotonic() - stopped < 3, "a lease given up is taken at the next pass"
    finally:
        stop(first)
        if second is not None:
            stop(second)


def test_a_brain_that_locks_app_state_does_not_stop_the_watch(db, home):
    seed_account(db)
    proc = start_watchdog(db, home, heartbeat_stale_s=30)
    try:
        wait_for(lambda: watchdog_pid(db) == proc.pid, timeout=10)
        with psycopg.connect(db.url("app")) as brain:
            brain.execute("LOCK TABLE app_state IN SHARE MODE")  # held until this block ends
            db.sql("INSERT INTO positions (symbol, qty, avg_price, opened_at) VALUES ('IBM', 5, 200, now())",
                   role="app")
            halt = wait_for(lambda: [h for h in active_halts(db) if h[2] == "position_without_stop"], timeout=10)
            assert halt[0][1] == 3
            time.sleep(2.5)  # its heartbeat waits on the lock past the 2 s lock timeout
        wait_for(lambda: watchdog_pid(db) == proc.pid, timeout=10)  # it beats again once the lock is gone
        log = (home / "watchdog.log").read_text()
        assert "waited too long for a lock" in log and "database unreachable" not in log
    finally:
        stop(proc)
