"""Migrations: upgrade-from-empty equals downgrade-then-upgrade; roles hold their limits."""
from __future__ import annotations

import psycopg
import pytest

from brain.db import migrate
from tests.integration.schema_signature import schema_signature, signature_difference


def test_downgrade_then_upgrade_matches_fresh_upgrade(empty_db):
    migrate.upgrade(empty_db.admin_url)
    fresh = schema_signature(empty_db)
    assert len(fresh["columns"]) > 50 and fresh["triggers"], "the schema should exist after upgrade"

    migrate.downgrade(empty_db.admin_url)
    leftover = schema_signature(empty_db)
    assert leftover["relations"] == [] and leftover["functions"] == [], "downgrade to base should drop it all"
    assert migrate.current(empty_db.admin_url) is None

    migrate.upgrade(empty_db.admin_url)
    again = schema_signature(empty_db)
    assert again == fresh, signature_difference(fresh, again, "fresh upgrade", "downgrade then upgrade")


REQUIRED_TABLES = {
    "agent_messages", "agent_deliveries", "bus_subscriptions", "agent_journal", "llm_cost_ledger",
    "app_state", "halts", "bars", "orders", "fills", "positions", "skill_versions",
}


def test_every_required_table_exists(db):
    tables = {r[0] for r in db.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert REQUIRED_TABLES <= tables
    unique = db.sql("""SELECT 1 FROM pg_indexes WHERE tablename = 'orders'
                       AND indexdef LIKE '%UNIQUE%client_order_id%'""")
    assert unique, "orders.client_order_id must be unique"


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO halts (level, invariant, reason, raised_by) VALUES (1, 'x', 'y', 'brain')",
        "UPDATE halts SET resumed_at = now(), resumed_by = 'brain'",
        "DELETE FROM halts",
    ],
)
def test_brain_app_cannot_write_halts(db, statement):
    db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (3, 'test', 'seed', 'watchdog')",
           role="watchdog")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.sql(statement, role="app")
    assert db.sql("SELECT count(*), bool_and(resumed_at IS NULL) FROM halts") == [(1, True)]


def test_watchdog_cannot_resume_but_operator_can(db):
    db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (2, 't', 'r', 'watchdog')",
           role="watchdog")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.sql("UPDATE halts SET resumed_at = now(), resumed_by = 'w'", role="watchdog")
    db.sql("UPDATE halts SET resumed_at = now(), resumed_by = 'ops', resume_reason = 'checked'",
           role="operator")
    assert db.sql("SELECT resumed_by FROM halts") == [("ops",)]


def test_role_passwords_from_the_environment(db, monkeypatch):
    from brain.errors import ConfigError

    monkeypatch.delenv("BRAIN_OPERATOR_DB_PASSWORD", raising=False)
    monkeypatch.setenv("BRAIN_APP_DB_PASSWORD", "a-secret")
    monkeypatch.setenv("BRAIN_WATCHDOG_DB_PASSWORD", "w-secret")
    with pytest.raises(ConfigError, match="BRAIN_OPERATOR_DB_PASSWORD is not set"):
        migrate.set_role_passwords(db.admin_url)
    monkeypatch.setenv("BRAIN_OPERATOR_DB_PASSWORD", "o-secret")
    assert migrate.set_role_passwords(db.admin_url) == ["brain_app", "brain_watchdog", "brain_operator"]
    rows = db.sql("SELECT rolname, rolpassword IS NOT NULL FROM pg_authid WHERE rolname LIKE 'brain_%' ORDER BY 1")
    assert rows == [("brain_app", True), ("brain_operator", True), ("brain_watchdog", True)]


OPEN_ORDER = """INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty)
                VALUES ('o-1', 'IBM', 'buy', 'open', 'market', 1)"""


@pytest.mark.parametrize(
    "statement",
    [
        OPEN_ORDER,
        # a temporary table named halts in the brain's own session must not stand in for the real one
        "CREATE TEMP TABLE halts (LIKE public.halts); " + OPEN_ORDER,
        # an order written as a close and turned into an opening one
        OPEN_ORDER.replace("'open'", "'close'") + "; UPDATE orders SET intent = 'open'",
        # an opening order the watchdog cancelled, made live again
        "UPDATE orders SET status = 'working' WHERE client_order_id = 'cancelled-entry'",
    ],
    ids=["insert", "temp-table-named-halts", "intent-changed", "cancelled-entry-revived"],
)
def test_brain_app_cannot_open_an_order_while_halted(db, statement):
    db.sql(OPEN_ORDER.replace("'o-1'", "'cancelled-entry'"))
    db.sql("UPDATE orders SET status = 'cancelled'")
    db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (3, 'test', 'seed', 'watchdog')",
           role="watchdog")
    with pytest.raises((psycopg.errors.RaiseException, psycopg.errors.InsufficientPrivilege)):
        db.sql(statement, role="app")
    assert db.sql("SELECT count(*) FROM orders WHERE intent = 'open' AND status <> 'cancelled'") == [(0,)]


def test_an_order_opened_by_a_role_that_may_change_intent_still_meets_the_halt(db):
    """The gate itself, not only brain_app's grants: the watchdog may update orders."""
    db.sql(OPEN_ORDER.replace("'open'", "'close'"), role="app")
    db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (3, 'test', 'seed', 'watchdog')",
           role="watchdog")
    with pytest.raises(psycopg.errors.RaiseException, match="trading halted"):
        db.sql("UPDATE orders SET intent = 'open'", role="watchdog")


@pytest.mark.parametrize("statement", ["UPDATE accounts SET locked = false", "DELETE FROM accounts",
                                       "UPDATE orders SET qty = 100"])
def test_brain_app_cannot_lift_the_l4_lock_or_rewrite_an_order(db, statement):
    db.sql("""INSERT INTO accounts (account, cash, equity, high_water_mark, day_start_equity, day, locked)
              VALUES ('paper', 1, 1, 1, 1, current_date, true)""")
    db.sql(OPEN_ORDER)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.sql(statement, role="app")
    assert db.sql("SELECT locked FROM accounts") == [(True,)]
    assert db.sql("SELECT qty FROM orders") == [(1.0,)]


def test_only_the_watchdog_writes_its_heartbeat(db):
    beat = """INSERT INTO app_state (key, updated_at) VALUES (%s, clock_timestamp())
              ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at"""
    db.sql(beat, ("heartbeat:watchdog",), role="watchdog")
    db.sql(beat, ("heartbeat:brain",), role="app")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.sql(beat, ("heartbeat:watchdog",), role="app")
    watchdog_beat = "SELECT updated_at FROM app_state WHERE key = 'heartbeat:watchdog'"
    before = db.sql(watchdog_beat)
    db.sql("UPDATE app_state SET updated_at = clock_timestamp() WHERE key = 'heartbeat:watchdog'", role="app")
    assert db.sql(watchdog_beat) == before, "the brain's update of the watchdog's heartbeat touched nothing"
    assert db.sql("SELECT count(*) FROM app_state WHERE key LIKE 'heartbeat:%'", role="app") == [(2,)]


def test_only_the_watchdog_writes_its_lease(db):
    take = """INSERT INTO app_state (key, value, updated_at) VALUES ('watchdog:lease', %s, clock_timestamp())
              ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"""
    db.sql(take, ('{"instance": "w"}',), role="watchdog")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.sql(take, ('{"instance": "brain"}',), role="app")
    db.sql("UPDATE app_state SET value = '{\"instance\": \"brain\"}' WHERE key = 'watchdog:lease'", role="app")
    assert db.sql("SELECT value->>'instance' FROM app_state WHERE key = 'watchdog:lease'") == [("w",)]
