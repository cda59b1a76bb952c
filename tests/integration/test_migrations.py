"""Migrations: upgrade-from-empty equals downgrade-then-upgrade; roles hold their limits."""
from __future__ import annotations

import psycopg
import pytest

from brain.db import migrate

SCHEMA_QUERIES = {
    "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default
                  FROM information_schema.columns WHERE table_schema = 'public'""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                      FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "triggers": """SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
                   FROM pg_trigger WHERE NOT tgisinternal""",
    "functions": """SELECT proname, md5(prosrc) FROM pg_proc
                    WHERE pronamespace = 'public'::regnamespace""",
    "grants": """SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants
                 WHERE table_schema = 'public' AND grantee LIKE 'brain_%'""",
    "column_grants": """SELECT grantee, table_name, column_name, privilege_type
                        FROM information_schema.column_privileges
                        WHERE table_schema = 'public' AND grantee LIKE 'brain_%'""",
}


def schema_signature(db) -> dict[str, list]:
    return {name: sorted(map(tuple, db.sql(q))) for name, q in SCHEMA_QUERIES.items()}


def test_downgrade_then_upgrade_matches_fresh_upgrade(empty_db):
    migrate.upgrade(empty_db.admin_url)
    fresh = schema_signature(empty_db)
    assert len(fresh["columns"]) > 50 and fresh["triggers"], "the schema should exist after upgrade"

    migrate.downgrade(empty_db.admin_url)
    leftover = [c for c in schema_signature(empty_db)["columns"] if c[0] != "alembic_version"]
    assert leftover == []
    assert migrate.current(empty_db.admin_url) is None

    migrate.upgrade(empty_db.admin_url)
    assert schema_signature(empty_db) == fresh


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
