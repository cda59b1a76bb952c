"""The one LISTEN connection of a process.

NOTIFY only wakes consumers; the table is the truth. Notifications are lost while the
connection is down, so after every (re)connect the listener wakes everyone to re-poll, and
it pings on a timer so a silently dead connection is noticed.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from brain.config import BUS_NOTIFY_WINDOW_MAX_MS
from brain.messages import CHANNEL
from brain.db.urls import psycopg_conninfo
from brain.bus.queries import Q
from brain.errors import one_line

log = logging.getLogger("brain.bus")


class Listener:
    def __init__(
        self,
        url: str,
        on_topic: Callable[[str, float], None],
        on_reconnect: Callable[[], None],
        ping_interval_s: float = 2.0,
    ) -> None:
        self._url = psycopg_conninfo(url)
        self._on_topic = on_topic
        self._on_reconnect = on_reconnect
        self._ping_interval_s = ping_interval_s
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self.connected = asyncio.Event()
        self.reconnects = 0

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        # "topic", or "topic window_ms" from a producer announcing a window (Publisher._publish_alone)
        topic, _, window = str(payload).partition(" ")
        window_ms = min(int(window), BUS_NOTIFY_WINDOW_MAX_MS) if window.isdigit() else 0
        self._on_topic(topic, window_ms / 1000)

    async def _connect(self) -> None:
        # Held from the moment it exists: a stop that lands during LISTEN must still close it.
        self._conn = conn = await asyncpg.connect(self._url,
                                                  server_settings={"application_name": "brain-bus-listener"})
        self._lost.clear()
        conn.add_termination_listener(lambda _c: self._lost.set())
        await conn.add_listener(CHANNEL, self._notified)
        self.connected.set()

    async def run(self) -> None:
        """Stay listening until cancelled, reconnecting with backoff."""
        delay = 0.1
        while True:
            try:
                await self._connect()
                delay = 0.1
                # Whatever was notified while we were away is in the table: re-poll now.
                self._on_reconnect()
                await self._watch()
            except asyncio.CancelledError:
                await self._close()
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
                self.connected.clear()
                log.warning("bus listener lost its connection (%s); reconnecting in %.1fs", one_line(exc), delay)
            await self._close()
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _watch(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that lands as its timeout fires, and this loop would then outlive the bus.
        assert self._conn is not None
        while True:
            try:
                async with asyncio.timeout(self._ping_interval_s):
                    await self._lost.wait()
                raise ConnectionError("listen connection terminated")
            except TimeoutError:
                async with asyncio.timeout(self._ping_interval_s):
                    await self._conn.fetchval(Q["ping"])

    async def _close(self) -> None:
        self.connected.clear()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=1.0)
            except Exception:
                conn.terminate()
