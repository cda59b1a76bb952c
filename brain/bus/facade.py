"""The bus as its users see it: publish, register consumers, start, stop, read back."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from brain import messages
from brain.aio import Tasks
from brain.bus.concurrent_worker import ConcurrentWorker
from brain.bus.listener import Listener
from brain.bus.publisher import Publisher
from brain.bus.queries import Q, keep_session
from brain.bus.serial_worker import SerialWorker
from brain.bus.types import Handler, Outgoing
from brain.bus.windows import WINDOW_GRACE_S
from brain.bus.worker import Consumer, Worker
from brain.config import BUS_NOTIFY_WINDOW_MAX_MS, Settings
from brain.db.types import Conn
from brain.db.urls import psycopg_conninfo

log = logging.getLogger("brain.bus")


class Bus:
    """One per process: publishing, the consumers registered on it, and its LISTEN connection."""

    def __init__(self, pool: asyncpg.Pool, *, settings: Settings, listen_url: str) -> None:
        self._pool = pool
        self.settings = settings
        self._url = listen_url
        self._consumers: dict[str, Consumer] = {}
        self._workers: list[Worker] = []
        self._consumer_pool: asyncpg.Pool | None = None
        self._stopping = asyncio.Event()
        self._tasks = Tasks("bus", self._task_ended)
        self._publisher = Publisher(listen_url, settings.bus_notify_window_ms)
        self.listener: Listener | None = None
        self.failed: BaseException | None = None

    # ------------------------------------------------------------------ publishing
    async def publish(self, topic: str, payload: BaseModel | dict[str, Any], *, from_agent: str,
                      correlation_id: str | None = None, causation_id: int | None = None,
                      to_agent: str | None = None, conn: Conn | None = None) -> int:
        """Publish one message and return its id: in `conn`'s transaction when given (it
        commits with it), otherwise as a durable commit of its own. The payload must fit its
        topic's model (PayloadInvalid otherwise, and nothing is stored)."""
        return await self._publisher.publish(topic, payload, from_agent=from_agent, correlation_id=correlation_id,
                                             causation_id=causation_id, to_agent=to_agent, conn=conn)

    async def publish_many(self, outgoing: Sequence[Outgoing], conn: Conn | None = None) -> list[int]:
        """Publish a batch in one statement (in `conn`'s transaction when given); their ids."""
        return await self._publisher.publish_many(outgoing, conn)

    # ------------------------------------------------------------------ consuming
    def consumer(self, name: str, topics: Iterable[str], handler: Handler, *, batch: int | None = None,
                 lease_s: float | None = None, concurrency: int = 1) -> None:
        """Register a consumer; call before start(). Its subscriptions are durable: what is
        published on its topics while it is down is taken in when it starts again."""
        if name in self._consumers:
            raise ValueError(f"consumer {name!r} registered twice")
        topics = tuple(topics)
        for t in topics:
            messages.model_for(t)  # fail fast on a typo'd topic
        self._consumers[name] = Consumer(name, topics, handler, batch or self.settings.bus_claim_batch,
                                         lease_s or self.settings.bus_lease_s, concurrency)

    async def start(self) -> None:
        """Subscribe every registered consumer, start listening, and start their workers."""
        # Consumer bookkeeping (claims, acks, retries) skips the WAL flush: see the package doc.
        self._consumer_pool = await asyncpg.create_pool(
            psycopg_conninfo(self._url), min_size=1,
            max_size=max(2, sum(c.concurrency for c in self._consumers.values()) + 1),
            server_settings={"synchronous_commit": "off"}, reset=keep_session)
        for c in self._consumers.values():
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(Q["register_consumer"], c.name)
                await conn.execute(Q["subscribe"], list(c.topics), c.name)
                await conn.execute(Q["unsubscribe_others"], c.name, list(c.topics))
        self._workers = [(SerialWorker if c.concurrency == 1 else ConcurrentWorker)(
            c, self._consumer_pool, self.settings, self._stopping) for c in self._consumers.values()]
        self.listener = Listener(self._url, self._wake_topic, self._rewake,
                                 ping_interval_s=self.settings.bus_poll_interval_s)
        self._tasks.spawn(self.listener.run(), "listener")
        for w in self._workers:
            self._tasks.spawn(w.run(), f"consumer {w.c.name}")

    async def stop(self) -> None:
        """Stop: an ack in flight finishes, finished work is acked, and claimed work not
        finished is handed back for the next start."""
        self._stopping.set()
        self._wake_all()
        await self._tasks.stop()
        if self._consumer_pool is not None:
            try:
                await asyncio.wait_for(self._consumer_pool.close(), 10)
            except asyncio.TimeoutError:
                log.error("bus: consumer connections still busy after 10s; closing them hard")
                self._consumer_pool.terminate()
        await self._publisher.close()

    async def wait_stopped(self) -> None:
        """Return once the bus stops: by stop(), or because one of its tasks died (`failed`)."""
        await self._stopping.wait()

    def _task_ended(self, what: str, exc: BaseException | None) -> None:
        # A bus task that dies unexpectedly stops the bus: better down than silently deaf.
        if exc is not None and not self._stopping.is_set():
            log.error("bus task %s died: %r", what, exc)
            self.failed = exc
            self._stopping.set()

    # ------------------------------------------------------------------ waking consumers
    def _wake_topic(self, topic: str, window_s: float) -> None:
        now = time.monotonic()
        for w in self._workers:
            if topic not in w.c.topics:
                continue
            if window_s <= 0:
                w.wake.event.set()
            else:
                # A stream announced a window: what it publishes until the window closes
                # comes without a notification, so take it all in one claim when the window
                # (and its grace) has passed, rather than one now and another then.
                w.wake.look_at(now + window_s + WINDOW_GRACE_S)

    def _rewake(self) -> None:
        """After a (re)connect: notifications sent meanwhile are lost, including window
        announcements, so look now and once more when any window announced before is over."""
        now = time.monotonic()
        for w in self._workers:
            w.wake.look_at(now + BUS_NOTIFY_WINDOW_MAX_MS / 1000 + WINDOW_GRACE_S)
        self._wake_all()

    def _wake_all(self) -> None:
        for w in self._workers:
            w.wake.event.set()

    # ------------------------------------------------------------------ reading back
    async def replay(self, start: datetime, end: datetime, topics: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every message created in [start, end), on `topics` if given, in publish order."""
        rows = await self._pool.fetch(Q["replay"], start, end, list(topics) if topics else None)
        return [dict(r, payload=json.loads(r["payload"])) for r in rows]

    async def backlog(self) -> list[dict[str, Any]]:
        """Per consumer: pending, working, dead and untaken deliveries, and the oldest wait."""
        return [dict(r) for r in await self._pool.fetch(Q["backlog"])]
