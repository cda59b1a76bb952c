"""Publishing on the bus from a synchronous psycopg connection, for the watchdog, which
shares the database with the brain but not its bus.

It runs the bus's own publish statement (`publish` in brain/bus/queries.sql: insert, and
wake listeners only when someone subscribes), unchanged: psycopg's RawCursor takes
PostgreSQL's own $n placeholders. So the protocol is written once, and the watchdog is not
a second writer of it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel

from brain import messages
from brain.sql import load_queries

PUBLISH = load_queries(Path(__file__).parent.parent / "bus" / "queries.sql")["publish"]


def publish_sync(conn: psycopg.Connection[Any], topic: str, payload: BaseModel | dict[str, Any], *, from_agent: str,
                 correlation_id: str | None = None, causation_id: int | None = None,
                 to_agent: str | None = None) -> int:
    """Publish one message in `conn`'s transaction (it is stored and heard when that
    commits); its id. The payload must fit its topic's model (PayloadInvalid otherwise)."""
    body = messages.to_json(topic, payload)
    with psycopg.RawCursor(conn) as cur:
        # The statement's columns in its order; 0: a notification of its own, no window.
        cur.execute(PUBLISH, (topic, from_agent, to_agent, correlation_id, causation_id, body, 0))
        row = cur.fetchone()
    assert row is not None  # an INSERT ... RETURNING of one row
    return int(row[0])
