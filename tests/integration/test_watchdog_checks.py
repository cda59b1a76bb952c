"""The heartbeat checks: a brain that said it stopped on purpose is not a breach; one that
went silent without saying so is, and so is its broker."""
from __future__ import annotations

import psycopg

from watchdog_proc.checks import run_checks


def beat(db, name: str, seconds_ago: float, value: str = "{}") -> None:
    db.sql("INSERT INTO app_state (key, value, updated_at) VALUES (%s, %s::jsonb, "
           "clock_timestamp() - make_interval(secs => %s)) ON CONFLICT (key) DO UPDATE "
           "SET value = excluded.value, updated_at = excluded.updated_at", (f"heartbeat:{name}", value, seconds_ago))


def breaches(db, tmp_path) -> set[str]:
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        return {b.invariant for b in run_checks(conn, db.settings(tmp_path))}


def test_a_clean_stop_is_not_a_breach_but_silence_is(db, tmp_path):
    beat(db, "broker", 60)
    beat(db, "market_data", 60)
    beat(db, "brain", 60, '{"pid": 1, "stopped": true}')
    assert not breaches(db, tmp_path) & {"brain_heartbeat", "broker_heartbeat"}
    beat(db, "brain", 60, '{"pid": 1}')          # the same age, but it never said it stopped
    assert {"brain_heartbeat", "broker_heartbeat"} <= breaches(db, tmp_path)
    beat(db, "brain", 0, '{"pid": 2}')           # a brain started again is timed again
    beat(db, "broker", 0)
    assert not breaches(db, tmp_path) & {"brain_heartbeat", "broker_heartbeat"}
