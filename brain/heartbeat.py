"""Heartbeats in app_state: `heartbeat:<name>` rows whose updated_at the watchdog reads.

Names in use: brain, broker, watchdog, market_data. The age is computed by the database
clock on both sides, so clock skew between processes never fakes a fresh beat.
"""
from __future__ import annotations

import json
from typing import Any

from brain.sql import queries_beside

Q = queries_beside(__file__, "heartbeat.sql")


def _key(name: str) -> str:
    return f"heartbeat:{name}"


async def beat(conn_or_pool: Any, name: str, info: dict | None = None) -> None:
    """Record that `name` is alive now (asyncpg connection or pool)."""
    await conn_or_pool.execute(Q["beat"], _key(name), json.dumps(info or {}))


def beat_sync(conn: Any, name: str, info: dict | None = None) -> None:
    """The same for a psycopg connection."""
    conn.execute(Q["beat_sync"], (_key(name), json.dumps(info or {})))


async def ages(conn_or_pool: Any) -> dict[str, float]:
    """Seconds since each heartbeat, by name."""
    return {r["name"]: float(r["age_s"]) for r in await conn_or_pool.fetch(Q["ages"])}


def ages_sync(conn: Any) -> dict[str, float]:
    return {name: float(age) for name, age, _value in conn.execute(Q["ages"]).fetchall()}
