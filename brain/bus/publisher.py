"""Publishing: one statement (insert + notify), inside the caller's transaction when one is
given, otherwise a durable commit of its own on the publisher's connection."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from pydantic import BaseModel

from brain.bus.errors import CONNECTION_LOST, DB_ERRORS, STALE_STATEMENT
from brain.bus.queries import PUBLISH, PUBLISH_QUIET, Q
from brain.bus.types import Outgoing, Row, encode, row
from brain.bus.windows import WINDOW_GRACE_S, NotifyWindow
from brain.db.types import Conn
from brain.db.urls import psycopg_conninfo
from brain.errors import one_line

log = logging.getLogger("brain.bus")


async def publish_rows_in(conn: Conn, rows: Sequence[Row]) -> list[int]:
    """Publish encoded messages in the caller's transaction, one statement for all of them."""
    if not rows:
        return []
    record = await conn.fetchrow(Q["publish_many"], *zip(*rows))
    assert record is not None  # an aggregate: always one row
    return list(record["ids"])


class Publisher:
    """The bus's publishing end: its connection, its prepared statements, and a producer's
    wake-up windows, one per topic."""

    def __init__(self, url: str, notify_window_ms: int) -> None:
        self._url = url
        self._window_ms = notify_window_ms
        self._conn: asyncpg.Connection | None = None
        self._prepared: dict[str, PreparedStatement] = {}  # on _conn
        self._lock = asyncio.Lock()
        self._windows: dict[str, NotifyWindow] = {}

    async def publish(self, topic: str, payload: BaseModel | dict[str, Any], *, from_agent: str,
                      correlation_id: str | None = None, causation_id: int | None = None,
                      to_agent: str | None = None, conn: Conn | None = None) -> int:
        """Publish one message; its id. In `conn`'s transaction when given, else its own commit."""
        # Straight to the row, without an Outgoing: every single publish takes this path, and
        # where commits flush fast its client CPU weighs several times over in the commit
        # rate (`brain bench bus` prints both).
        args = row(topic, payload, from_agent, to_agent, correlation_id, causation_id)
        if conn is not None:
            # Inside the caller's transaction the commit is not ours to time: always wake.
            record = await conn.fetchrow(PUBLISH, *args, 0)
            assert record is not None  # an INSERT ... RETURNING of one row
            return record["id"]
        return await self._publish_alone(topic, args)

    async def _publish_alone(self, topic: str, args: Row) -> int:
        """Publish as its own commit, waking consumers once per window while a stream flows.

        A producer publishing a topic as a stream (more than STREAM_PER_WINDOW publishes per
        window, on average over the last fifty or so; a short catch-up burst is not a stream)
        announces a window in its notification and sends none for what it publishes on that
        topic until the window closes; consumers then take the stream in batches: a consumer
        that receives the announcement claims once the window has passed since it received
        it, and that claim sees every message the producer left silent: the window starts when
        the announcing publish was sent (before its commit, so before any consumer received
        it), and a silent publish whose commit returns later than WINDOW_GRACE_S after the
        window closed notifies late.
        Slower traffic gets a notification per message, so its latency is unchanged.
        """
        w = self._windows.get(topic)
        if w is None:
            w = self._windows[topic] = NotifyWindow()
        async with self._lock:
            sent = time.monotonic()
            wake = w.wake_for(sent, self._window_ms)
            record = await (self._fetch(PUBLISH_QUIET, args) if wake is None
                            else self._fetch(PUBLISH, (*args, wake)))
            returned = time.monotonic()
            w.round_trip += 0.2 * (returned - sent - w.round_trip)
            if wake and record["heard"]:
                w.quiet_until = sent + wake / 1000
            elif wake is None and returned >= w.quiet_until + WINDOW_GRACE_S:
                try:
                    await self._fetch(Q["notify"], (topic,))
                except DB_ERRORS as exc:  # committed: never fail the publish; the slow poll finds it
                    log.warning("bus: late wake-up for %s not sent (%s)", topic, one_line(exc))
            return record["id"]

    async def publish_many(self, outgoing: Sequence[Outgoing], conn: Conn | None = None) -> list[int]:
        """Publish a batch in one statement; their ids, in order."""
        rows = [encode(o) for o in outgoing]
        if not rows:
            return []
        if conn is not None:
            return await publish_rows_in(conn, rows)
        async with self._lock:
            record = await self._fetch(Q["publish_many"], list(zip(*rows)))
        return list(record["ids"])

    # Publishing outside a caller's transaction goes through one dedicated connection, one
    # statement at a time (callers hold _lock): a pool round (acquire, reset, release) costs
    # about as much as the insert itself. Its statements are prepared once: a prepared
    # statement's call skips the per-query lookup of Connection.fetchrow, and on a
    # single-commit publish every microsecond of client CPU counts against the commit rate.
    async def _fetch(self, query: str, args: Sequence[Any]) -> asyncpg.Record:
        pc = await self._connection()
        try:
            stmt = self._prepared.get(query)
            if stmt is None:
                stmt = self._prepared[query] = await pc.prepare(query)
            try:
                record = await stmt.fetchrow(*args)
            except STALE_STATEMENT:
                # The schema changed under it (a migration): refused at bind, so nothing ran.
                del self._prepared[query]
                record = await pc.fetchrow(query, *args)
        except CONNECTION_LOST:
            self._drop(pc)
            raise
        assert record is not None  # every statement published alone returns one row
        return record

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._prepared = {}
            self._conn = await asyncpg.connect(psycopg_conninfo(self._url))
        return self._conn

    def _drop(self, conn: asyncpg.Connection) -> None:
        conn.terminate()
        if self._conn is conn:  # close() may have closed and dropped it meanwhile
            self._conn = None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
