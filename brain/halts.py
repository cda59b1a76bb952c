"""Halts as the operator sees them (psycopg, role brain_operator)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from brain.errors import BrainError
from brain.sql import load_queries

if TYPE_CHECKING:
    import psycopg

Q = load_queries(Path(__file__).with_name("halts.sql"))
COLUMNS = ("id", "raised_at", "level", "invariant", "reason", "evidence", "raised_by", "resumed_at", "resumed_by",
           "resume_reason", "forced")


class UnknownHalt(BrainError):
    """No halt with this id."""


def _rows(cur: psycopg.Cursor[Any]) -> list[dict]:
    return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]


def active(conn: psycopg.Connection[Any]) -> list[dict]:
    return _rows(conn.execute(Q["list_active"]))


def all_halts(conn: psycopg.Connection[Any]) -> list[dict]:
    return _rows(conn.execute(Q["list_all"]))


def get(conn: psycopg.Connection[Any], halt_id: int) -> dict:
    rows = _rows(conn.execute(Q["get"], (halt_id,)))
    if not rows:
        raise UnknownHalt(f"no halt with id {halt_id}")
    return rows[0]


def journal_for(conn: psycopg.Connection[Any], halt_id: int) -> tuple[int, str, str] | None:
    return conn.execute(Q["journal_for_halt"], (halt_id,)).fetchone()
