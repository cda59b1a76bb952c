"""The durable message bus: a Postgres table of messages, leased per-consumer deliveries,
and LISTEN/NOTIFY as a wake-up only.

Publishing is one statement (insert + notify), inside the caller's transaction when one is
given, and is a durable commit. A producer publishing a stream of single commits wakes
consumers once per window rather than once per message (see Bus._publish_alone).

A consumer's claim takes a batch under a lease: first deliveries that already wait (FOR
UPDATE SKIP LOCKED), then every message on its topics that committed since its last look (by
snapshot visibility, so late commits are never skipped), leased as their deliveries are
inserted. It runs its handler outside any transaction, renewing the lease while the handler
runs (up to bus_handler_max_s), then in ONE transaction marks the deliveries it still holds
done and writes their output messages.
A crash or a hang lets the lease run out; the next reclaim (on each worker's slow poll) puts
the work back and it is redone; outputs are written only by the ack, so they exist exactly
once.
A handler's outputs are checked against their topics when it returns, and an ack whose own
writes fail is the message's failure, retried like a handler's error: one bad message never
sinks the batch it would be acked with, nor stops the bus. Stopping lets an ack in flight
finish, acks finished work, and hands back claimed work that was not finished.

Claims and acks commit without waiting for the WAL flush (synchronous_commit off). Losing
one in a server crash loses it whole, claim or ack together with its outputs, and the lease
brings the work back, so exactly-once outputs still hold; what it buys is that consumers
stop competing with producers for flushes. WAL is sequential, so any later durable commit
(a publish, or an ack a handler marks `durable`) also makes everything it read durable: a
handler with an effect outside the database makes its own durable write first (the executor
records the order row in a durable ack before the broker acts on it).
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from brain import messages
from brain.bus_listener import Listener
from brain.config import BUS_NOTIFY_WINDOW_MAX_MS, Settings
from brain.db.urls import psycopg_conninfo
from brain.errors import BrainError, one_line
from brain.sql import queries_beside

log = logging.getLogger("brain.bus")
Q = queries_beside(__file__, "bus.sql")
PUBLISH, PUBLISH_QUIET = Q["publish"], Q["publish_quiet"]
# How fast a producer's average gap between publishes follows each new gap (Bus._publish_alone):
# one slow publish does not end a stream, and a short burst does not start one.
STREAM_GAP_WEIGHT = 0.05
# A stream publishes on average more than this many messages per window: below it a message's
# own notification is worth its cost, and a window's wait is too long for so few messages.
STREAM_PER_WINDOW = 7
# Consumers look this long after an announced window has closed, so a silent publish whose
# commit returns within it needs no wake-up of its own (Bus._publish_alone).
WINDOW_GRACE_S = 0.003
# What the publishing connection raises when it is lost (it is then opened anew).
CONNECTION_LOST = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
# A prepared statement the server no longer accepts as prepared (its tables changed).
STALE_STATEMENT = (asyncpg.exceptions.InvalidCachedStatementError, asyncpg.exceptions.OutdatedSchemaCacheError)
# What a lost connection or a restarting server raises; consumers wait and carry on.
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)
# What the database raises when it goes away or is in trouble for a while (a lost connection,
# a server shutting down, disk or memory full, too many connections): never a message's fault.
SERVER_TROUBLE = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                  asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError)
# The same seen from the client (no route to the server, no answer in time): an ack is retried
# through these while its lease may still hold, rather than leaving finished work to be redone.
UNAVAILABLE = (OSError, asyncio.TimeoutError, *SERVER_TROUBLE)
# What an ack's statements raise for one message's outputs: data the database refuses.
REFUSED_DATA = (asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError)
# How long a stop waits for an ack in flight, or for a last ack of finished work.
STOP_GRACE_S = 2.0


class Reject(BrainError):
    """The handler refuses this message for good: dead-letter it now, do not retry."""


class _OwnWritesFailed(BrainError):
    """A handler's own writes in its ack's transaction (HandlerResult.in_tx) raised: its
    message's failure, whatever they raised, short of SERVER_TROUBLE."""


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: BaseModel | dict[str, Any]
    from_agent: str
    correlation_id: str | None = None
    causation_id: int | None = None
    to_agent: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One message as handed to one consumer (deliveries are keyed by message and consumer)."""

    consumer: str
    message_id: int
    topic: str
    payload: BaseModel
    from_agent: str
    to_agent: str | None
    correlation_id: str | None
    causation_id: int | None
    attempts: int
    created_at: datetime

    def reply(self, topic: str, payload: BaseModel | dict[str, Any], *, from_agent: str,
              to_agent: str | None = None) -> Outgoing:
        """An output message in the same cycle, caused by this one."""
        return Outgoing(topic, payload, from_agent, self.correlation_id, self.message_id, to_agent)


InTx = Callable[[asyncpg.Connection], Awaitable["list[Outgoing] | None"]]
# A handled delivery and its output messages, already encoded (so already valid).
Handled = tuple[Delivery, list[tuple]]


@dataclass
class HandlerResult:
    outputs: list[Outgoing] = field(default_factory=list)
    # Extra writes that commit together with the ack (e.g. an order row); the messages it
    # returns are published in the same transaction.
    in_tx: InTx | None = None
    # Wait for the WAL flush before the ack returns: for work that an effect outside the
    # database (a broker) will follow.
    durable: bool = False


Handler = Callable[[Delivery], Awaitable["list[Outgoing] | HandlerResult | None"]]


@dataclass
class _Held:
    """What one worker holds under its lease while handlers run, renewed by one task per
    worker (Bus._keep_leases): groups of messages, each waiting on one running handler, with
    when that handler began. Plain data on purpose: nothing per claim on the hot path but two
    dict operations (a task per claim made reference cycles, and the collector's full passes
    then stalled the event loop for tens of milliseconds)."""

    groups: dict[int, tuple[list[int], float]] = field(default_factory=dict)

    def waiting(self, key: int, message_ids: list[int]) -> None:
        """These messages now wait on a handler that starts now."""
        self.groups[key] = (message_ids, time.monotonic())

    def done(self, key: int) -> None:
        self.groups.pop(key, None)


@dataclass
class _Consumer:
    name: str
    topics: tuple[str, ...]
    handler: Handler
    batch: int
    lease_s: float
    concurrency: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # When the last window a producer announced closes (time.monotonic, not the event
    # loop's clock, which uvloop keeps in whole milliseconds); the consumer is woken to look
    # again then (Bus._look_at). A claim that began before it is part of a stream.
    linger_until: float = float("-inf")


@dataclass
class _NotifyWindow:
    """A producer's wake-up state for one topic (time.monotonic)."""

    last_sent: float = float("-inf")
    quiet_until: float = float("-inf")
    # Moving average of the gap between publishes, each gap counted as at most the window
    # (so it starts at the window, whatever this default).
    gap: float = 1.0
    # Recent publish round trip: a publish is left silent only when it should commit well
    # inside the window, so that a late wake-up of its own stays rare.
    round_trip: float = 0.0

    def wake_for(self, sent: float, window_ms: int) -> int | None:
        """How a publish sent now wakes consumers: None, not at all (it is inside the window
        this producer announced); 0, with a notification of its own; more, with one that
        announces a window of that many milliseconds (see Bus._publish_alone)."""
        window_s = window_ms / 1000
        self.gap = min(self.gap + STREAM_GAP_WEIGHT * (min(sent - self.last_sent, window_s) - self.gap), window_s)
        self.last_sent = sent
        if sent + 2 * self.round_trip < self.quiet_until:
            return None
        return window_ms if self.gap < window_s / STREAM_PER_WINDOW else 0


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without the default reset round trip: nothing here leaves session state
    behind (settings are SET LOCAL, listening has its own connection)."""


def _row(topic: str, payload: BaseModel | dict[str, Any], from_agent: str, to_agent: str | None,
         correlation_id: str | None, causation_id: int | None) -> tuple:
    """A message's column values, in the order of every insert in bus.sql."""
    return (topic, from_agent, to_agent, correlation_id, causation_id, messages.to_json(topic, payload))


def _encode(out: Outgoing) -> tuple:
    return _row(out.topic, out.payload, out.from_agent, out.to_agent, out.correlation_id, out.causation_id)


def _wake_when_due(c: _Consumer, when: float) -> None:
    """Bus._look_at's timer. A plain function with its arguments, not a closure that re-arms
    itself: that closure referred to itself, a cycle per announced window for the collector."""
    left = when - time.monotonic()
    if left > 0:  # the loop's clock is in whole milliseconds: a timer can fire early
        asyncio.get_running_loop().call_later(left + 0.001, _wake_when_due, c, when)
    else:
        c.wake.set()


async def _finish(work: Awaitable[Any]) -> None:
    """Await work that a stop must not cut off halfway (an ack in flight): when the caller
    is cancelled meanwhile, the work gets STOP_GRACE_S to complete, then the cancellation
    goes on."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is not None:
            log.warning("bus: work in flight at stop failed (%s)", one_line(task.exception()))
        raise


class Bus:
    """One per process: publishing, the consumers registered on it, and its LISTEN connection."""

    def __init__(self, pool: asyncpg.Pool, *, settings: Settings, listen_url: str) -> None:
        self.pool = pool
        self.settings = settings
        self._url = listen_url
        self._consumers: dict[str, _Consumer] = {}
        self._tasks: list[asyncio.Task] = []
        self._consumer_pool: asyncpg.Pool | None = None
        self._stopping = asyncio.Event()
        self.listener: Listener | None = None
        self.failed: BaseException | None = None
        self._publish_conn: asyncpg.Connection | None = None
        self._prepared: dict[str, asyncpg.prepared_stmt.PreparedStatement] = {}  # on _publish_conn
        self._publish_lock = asyncio.Lock()
        self._windows: dict[str, _NotifyWindow] = {}

    # ------------------------------------------------------------------ publishing
    async def publish(self, topic: str, payload: BaseModel | dict[str, Any], *, from_agent: str,
                      correlation_id: str | None = None, causation_id: int | None = None,
                      to_agent: str | None = None, conn: asyncpg.Connection | None = None) -> int:
        # Straight to the row, without an Outgoing: every single publish takes this path, and
        # where commits flush fast its client CPU weighs several times over in the commit
        # rate (`brain bench bus` prints both).
        args = _row(topic, payload, from_agent, to_agent, correlation_id, causation_id)
        if conn is not None:
            # Inside the caller's transaction the commit is not ours to time: always wake.
            return (await conn.fetchrow(PUBLISH, *args, 0))["id"]
        return await self._publish_alone(topic, args)

    async def _publish_alone(self, topic: str, args: tuple) -> int:
        """Publish as its own commit, waking consumers once per window while a stream flows.

        A notification costs the producer a database-wide lock at commit and every listening
        process a wake-up and usually a claim, per message. So a producer publishing a topic
        as a stream (more than STREAM_PER_WINDOW publishes per window, on average over the
        last fifty or so; a short catch-up burst is not a stream) announces a window in its
        notification and sends none for what it publishes on that topic until the window
        closes; consumers then take the stream in batches: a consumer that receives the
        announcement claims once the window has passed since it received it, and that
        claim sees every message the producer left silent: the window starts when the
        announcing publish was sent (before its commit, so before any consumer received it),
        and a silent publish whose commit returns later than WINDOW_GRACE_S after the window
        closed notifies late.
        Slower traffic gets a notification per message, so its latency is unchanged.
        """
        w = self._windows.get(topic)
        if w is None:
            w = self._windows[topic] = _NotifyWindow()
        async with self._publish_lock:
            sent = time.monotonic()
            wake = w.wake_for(sent, self.settings.bus_notify_window_ms)
            row = await (self._fetch_alone(PUBLISH_QUIET, args) if wake is None
                         else self._fetch_alone(PUBLISH, (*args, wake)))
            returned = time.monotonic()
            w.round_trip += 0.2 * (returned - sent - w.round_trip)
            if wake and row["heard"]:
                w.quiet_until = sent + wake / 1000
            elif wake is None and returned >= w.quiet_until + WINDOW_GRACE_S:
                try:
                    await self._fetch_alone(Q["notify"], (topic,))
                except DB_ERRORS as exc:  # committed: never fail the publish; the slow poll finds it
                    log.warning("bus: late wake-up for %s not sent (%s)", topic, one_line(exc))
            return row["id"]

    async def publish_many(self, outgoing: Sequence[Outgoing],
                           conn: asyncpg.Connection | None = None) -> list[int]:
        return await self._publish_rows([_encode(o) for o in outgoing], conn)

    async def _publish_rows(self, rows: Sequence[tuple], conn: asyncpg.Connection | None = None) -> list[int]:
        if not rows:
            return []
        columns = list(zip(*rows))
        if conn is not None:
            row = await conn.fetchrow(Q["publish_many"], *columns)
        else:
            async with self._publish_lock:
                row = await self._fetch_alone(Q["publish_many"], columns)
        return list(row["ids"])

    # Publishing outside a caller's transaction goes through one dedicated connection, one
    # statement at a time (callers hold _publish_lock): a pool round (acquire, reset,
    # release) costs about as much as the insert itself. Its statements are prepared once:
    # a prepared statement's call skips the per-query lookup of Connection.fetchrow, and on
    # a single-commit publish every microsecond of client CPU counts against the commit rate.
    async def _fetch_alone(self, query: str, args: Sequence[Any]) -> asyncpg.Record:
        pc = await self._publisher()
        try:
            stmt = self._prepared.get(query)
            if stmt is None:
                stmt = self._prepared[query] = await pc.prepare(query)
            try:
                return await stmt.fetchrow(*args)
            except STALE_STATEMENT:
                # The schema changed under it (a migration): refused at bind, so nothing ran.
                del self._prepared[query]
                return await pc.fetchrow(query, *args)
        except CONNECTION_LOST:
            self._drop_publisher(pc)
            raise

    async def _publisher(self) -> asyncpg.Connection:
        if self._publish_conn is None or self._publish_conn.is_closed():
            self._prepared = {}
            self._publish_conn = await asyncpg.connect(psycopg_conninfo(self._url))
        return self._publish_conn

    def _drop_publisher(self, conn: asyncpg.Connection) -> None:
        conn.terminate()
        if self._publish_conn is conn:  # stop() may have closed and dropped it meanwhile
            self._publish_conn = None

    # ------------------------------------------------------------------ consuming
    def consumer(self, name: str, topics: Iterable[str], handler: Handler, *, batch: int | None = None,
                 lease_s: float | None = None, concurrency: int = 1) -> None:
        """Register a consumer; call before start(). Its subscriptions are durable."""
        if name in self._consumers:
            raise ValueError(f"consumer {name!r} registered twice")
        topics = tuple(topics)
        for t in topics:
            messages.model_for(t)  # fail fast on a typo'd topic
        self._consumers[name] = _Consumer(name, topics, handler, batch or self.settings.bus_claim_batch,
                                          lease_s or self.settings.bus_lease_s, concurrency)

    async def start(self) -> None:
        # Consumer bookkeeping (claims, acks, retries) skips the WAL flush: see the module doc.
        self._consumer_pool = await asyncpg.create_pool(
            psycopg_conninfo(self._url), min_size=1,
            max_size=max(2, sum(c.concurrency for c in self._consumers.values()) + 1),
            server_settings={"synchronous_commit": "off"}, reset=keep_session)
        for c in self._consumers.values():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(Q["register_consumer"], c.name)
                await conn.execute(Q["subscribe"], list(c.topics), c.name)
                await conn.execute(Q["unsubscribe_others"], c.name, list(c.topics))
        self.listener = Listener(self._url, self._wake_topic, self._rewake,
                                 ping_interval_s=self.settings.bus_poll_interval_s)
        self._spawn(self.listener.run(), "listener")
        for c in self._consumers.values():
            if c.concurrency == 1:
                self._spawn(self._consume(c), f"consumer {c.name}")
            else:
                self._spawn(self._consume_concurrently(c), f"consumer {c.name}")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake_all()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._consumer_pool is not None:
            try:
                await asyncio.wait_for(self._consumer_pool.close(), 10)
            except asyncio.TimeoutError:
                log.error("bus: consumer connections still busy after 10s; closing them hard")
                self._consumer_pool.terminate()
        if self._publish_conn is not None:
            await self._publish_conn.close()
            self._publish_conn = None

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    def _spawn(self, coro: Awaitable[None], what: str) -> None:
        task = asyncio.ensure_future(coro)

        def done(t: asyncio.Task) -> None:
            # A bus task that dies unexpectedly stops the bus: better down than silently deaf.
            if not t.cancelled() and t.exception() is not None and not self._stopping.is_set():
                log.error("bus task %s died: %r", what, t.exception())
                self.failed = t.exception()
                self._stopping.set()

        task.add_done_callback(done)
        self._tasks.append(task)

    def _wake_topic(self, topic: str, window_s: float) -> None:
        now = time.monotonic()
        for c in self._consumers.values():
            if topic not in c.topics:
                continue
            if window_s <= 0:
                c.wake.set()
            else:
                # A stream announced a window: what it publishes until the window closes
                # comes without a notification, so take it all in one claim when the window
                # (and its grace) has passed, rather than one now and another then.
                self._look_at(c, now + window_s + WINDOW_GRACE_S)

    def _rewake(self) -> None:
        """After a (re)connect: notifications sent meanwhile are lost, including window
        announcements, so look now and once more when any window announced before is over."""
        now = time.monotonic()
        for c in self._consumers.values():
            self._look_at(c, now + BUS_NOTIFY_WINDOW_MAX_MS / 1000 + WINDOW_GRACE_S)
        self._wake_all()

    @staticmethod
    def _look_at(c: _Consumer, when: float) -> None:
        """Wake c once time.monotonic() has reached `when`: a claim begun then sees every
        message a window announced before has left silent (see Bus._publish_alone)."""
        c.linger_until = max(c.linger_until, when)
        asyncio.get_running_loop().call_later(when - time.monotonic(), _wake_when_due, c, when)

    def _wake_all(self) -> None:
        for c in self._consumers.values():
            c.wake.set()

    async def _consume(self, c: _Consumer) -> None:
        # One lease owner per worker loop: an ack only lands while this worker still holds
        # the lease it claimed under.
        owner = uuid.uuid4()
        loop = asyncio.get_running_loop()
        window = self.settings.bus_ack_window_ms / 1000
        pause = self.settings.bus_claim_pause_ms / 1000
        unacked: list[Handled] = []
        first_unacked_at = 0.0
        backoff = 0.05
        reclaim_due = 0.0
        held = _Held()
        renewing = asyncio.ensure_future(self._keep_leases(c, owner, held))
        try:
            while not self._stopping.is_set():
                c.wake.clear()
                try:
                    reclaim_due = await self._reclaim_if_due(c, reclaim_due)
                    had = len(unacked)
                    began = time.monotonic()
                    claimed = await self._claim_and_handle(c, owner, unacked, held)
                    if not had and unacked:
                        first_unacked_at = loop.time()
                    more = claimed >= c.batch or c.wake.is_set()
                    # Group acks while a stream is flowing (claims bring several messages):
                    # one commit for many instead of one per notification. Otherwise ack at
                    # once: a pipeline of single messages must not wait at every hop.
                    in_window = c.linger_until > began
                    streaming = (more or in_window) and claimed > 1
                    if unacked and (not streaming or len(unacked) >= c.batch
                                    or loop.time() - first_unacked_at >= window):
                        batch, unacked = unacked, []
                        await _finish(self._ack_or_fail(c, owner, batch))
                    backoff = 0.05
                except DB_ERRORS as exc:
                    backoff = await self._back_off(c, exc, backoff)
                    continue
                if more:
                    if 1 < claimed < c.batch and pause:
                        # A stream rather than a backlog: let a few more arrive so the next
                        # claim and ack each cover several messages.
                        await asyncio.sleep(pause)
                    continue
                # Nothing announced since the claim began. Wait for a notification, or for an
                # announced window to close (Bus._look_at); the slow poll means a lost one
                # only delays work by this much.
                try:
                    async with asyncio.timeout(self.settings.bus_poll_interval_s):  # not wait_for: see bus_listener
                        await c.wake.wait()
                except TimeoutError:
                    pass
        finally:
            renewing.cancel()
            # Cancelled, or stopping because another bus task failed: finished work should
            # not be redone just because we are stopping.
            await self._ack_left_over(c, owner, unacked)

    async def _ack_left_over(self, c: _Consumer, owner: uuid.UUID, unacked: list[Handled]) -> None:
        if not unacked:
            return
        try:
            await asyncio.wait_for(self._ack_once(c, owner, unacked, None), timeout=STOP_GRACE_S)
        except Exception:
            log.warning("consumer %s: could not ack %d messages at shutdown; they will be redone",
                        c.name, len(unacked))

    async def _consume_concurrently(self, c: _Consumer) -> None:
        """For slow handlers (model calls): one claimer keeps up to `concurrency` messages in
        flight, each handled and acked on its own, so one long call never holds up the rest
        and a notification wakes one claim, not a herd of idle workers. A freed slot claims
        only when there may be more: a notification came, or the last claim filled every slot."""
        owner = uuid.uuid4()
        running: set[asyncio.Task] = set()
        backoff = 0.05
        reclaim_due = 0.0
        maybe_more = True
        held = _Held()
        renewing = asyncio.ensure_future(self._keep_leases(c, owner, held))
        try:
            while not self._stopping.is_set():
                free = c.concurrency - len(running)
                if free > 0 and (maybe_more or c.wake.is_set()):
                    c.wake.clear()
                    try:
                        assert self._consumer_pool is not None
                        reclaim_due = await self._reclaim_if_due(c, reclaim_due)
                        rows = await self._consumer_pool.fetch(Q["claim"], c.name, free, owner, c.lease_s)
                        backoff = 0.05
                    except DB_ERRORS as exc:
                        backoff = await self._back_off(c, exc, backoff)
                        continue
                    for row in rows:
                        task = asyncio.ensure_future(self._handle_and_ack(c, row, owner, held))
                        running.add(task)
                        task.add_done_callback(running.discard)
                    maybe_more = len(rows) == free
                    continue
                # Wait for a notification or a window's close (when a slot is free), a finished
                # message, or the slow poll, after which we look anyway: a lost notification
                # only delays.
                waker = asyncio.ensure_future(c.wake.wait()) if free > 0 else None
                done, _ = await asyncio.wait({*running, *([waker] if waker else [])},
                                             timeout=self.settings.bus_poll_interval_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if waker is not None:
                    waker.cancel()
                if not done:
                    maybe_more = True
        finally:
            try:
                # Cancelled, or stopping because another bus task failed: what is still running
                # lets an ack in flight finish and hands its message back otherwise.
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
            finally:  # even when a stop that is itself cut short interrupts the wait above
                renewing.cancel()

    async def _handle_and_ack(self, c: _Consumer, row: asyncpg.Record, owner: uuid.UUID, held: _Held) -> None:
        try:
            held.waiting(row["message_id"], [row["message_id"]])
            try:
                outcome = await self._handle(c, row, owner)
            except asyncio.CancelledError:
                await self._release(c, owner, [row["message_id"]], started=True)
                raise
            finally:
                held.done(row["message_id"])
            if outcome is not None:
                delivery, result, rows = outcome
                await _finish(self._ack_or_fail(c, owner, [(delivery, rows)], result.in_tx, result.durable))
        except DB_ERRORS as exc:
            log.warning("consumer %s: could not finish message %s (%s); it is redone after its lease",
                        c.name, row["message_id"], one_line(exc))

    async def _keep_leases(self, c: _Consumer, owner: uuid.UUID, held: _Held) -> None:
        """A worker's companion task: every third of a lease, renew the leases on what it holds
        while handlers run. A model call may outlast a lease, and work whose lease runs out is
        taken back and redone, paid for twice. A handler still running after
        bus_handler_max_s (counted from its own start) is taken for hung: the leases of what
        waits on it are left to run out, and that work is redone."""
        assert self._consumer_pool is not None
        warned: set[tuple[int, float]] = set()
        while True:
            await asyncio.sleep(c.lease_s / 3)
            now, renew = time.monotonic(), []
            for key, (message_ids, started) in list(held.groups.items()):
                if now - started < self.settings.bus_handler_max_s:
                    renew += message_ids
                elif (key, started) not in warned:
                    warned.add((key, started))
                    log.warning("consumer %s: a handler has run for more than %.0fs; the leases of messages %s are "
                                "no longer renewed, and the work is redone", c.name,
                                self.settings.bus_handler_max_s, message_ids)
            if not renew:
                continue
            try:
                await self._consumer_pool.execute(Q["renew"], renew, owner, c.name, c.lease_s)
            except Exception as exc:  # whatever it was, the next renewal tries again (two thirds of the lease left)
                log.warning("consumer %s: could not renew leases (%s)", c.name, one_line(exc))

    async def _reclaim_if_due(self, c: _Consumer, due: float) -> float:
        """On the slow poll: put work whose lease ran out back to pending (a claim does not
        look for it; see migration 0005). Returns when to look next."""
        now = asyncio.get_running_loop().time()
        if now < due:
            return due
        assert self._consumer_pool is not None
        rows = await self._consumer_pool.fetch(Q["reclaim_expired"], c.name, self.settings.bus_max_attempts)
        for r in rows:
            if r["state"] == "dead":
                log.error("consumer %s dead-lettered message %s: its lease expired on every attempt",
                          c.name, r["message_id"])
        if rows:
            log.warning("consumer %s: %d leases ran out; that work is redone", c.name, len(rows))
        return now + min(self.settings.bus_poll_interval_s, c.lease_s / 4)

    @staticmethod
    async def _back_off(c: _Consumer, exc: BaseException, delay: float) -> float:
        """Wait after a database error (the server restarting, a dropped connection) and
        return the next, longer, delay."""
        log.warning("consumer %s: database error (%s); retrying in %.2fs", c.name, one_line(exc), delay)
        await asyncio.sleep(delay)
        return min(delay * 2, 2.0)

    async def _claim_and_handle(self, c: _Consumer, owner: uuid.UUID, unacked: list[Handled], held: _Held) -> int:
        """Claim a batch and run the handler on each; results join `unacked` (or are acked
        at once when they carry writes of their own)."""
        assert self._consumer_pool is not None
        rows = await self._consumer_pool.fetch(Q["claim"], c.name, c.batch, owner, c.lease_s)
        if not rows:
            return 0
        unfinished = list(rows)  # a message leaves it once its handler has returned
        running = None  # the message whose handler runs now
        # Work handled earlier but not acked yet (a stream's) waits on these handlers too.
        waiting = [r["message_id"] for r in rows] + [d.message_id for d, _ in unacked]
        try:
            while unfinished and not self._stopping.is_set():
                row = running = unfinished[0]
                held.waiting(0, waiting)
                outcome = await self._handle(c, row, owner)
                running = None
                unfinished.pop(0)
                if outcome is None:
                    continue
                delivery, result, out = outcome
                if result.in_tx is not None or result.durable:
                    await _finish(self._ack_or_fail(c, owner, [(delivery, out)], result.in_tx, result.durable))
                else:
                    unacked.append((delivery, out))
        finally:
            held.done(0)
            # Stopping mid-batch: hand back what was not finished, for the next start to
            # take at once rather than after the lease.
            if running is not None:
                await self._release(c, owner, [running["message_id"]], started=True)
            await self._release(c, owner, [r["message_id"] for r in unfinished if r is not running], started=False)
        return len(rows)

    async def _release(self, c: _Consumer, owner: uuid.UUID, message_ids: list[int], *, started: bool) -> None:
        """Hand claimed messages back as pending: one whose handler a stop cut off keeps its
        attempt counted (a handler that never finishes must still run out of attempts)."""
        if not message_ids:
            return
        assert self._consumer_pool is not None
        try:
            await asyncio.wait_for(self._consumer_pool.execute(Q["release"], message_ids, owner, c.name, not started),
                                   timeout=STOP_GRACE_S)
        except DB_ERRORS as exc:
            log.warning("consumer %s: could not hand back messages %s (%s); they are redone after their lease",
                        c.name, message_ids, one_line(exc))

    async def _handle(self, c: _Consumer, row: asyncpg.Record,
                      owner: uuid.UUID) -> tuple[Delivery, HandlerResult, list[tuple]] | None:
        """Run the handler; returns the delivery, its result and its outputs encoded, or None
        when the message failed (it is then retried or dead-lettered)."""
        message_id, attempts = row["message_id"], row["attempts"]
        try:
            payload = messages.validate_json(row["topic"], row["payload"])
        except BrainError as exc:
            await self._fail(c, message_id, attempts, owner, f"invalid payload: {exc}", dead=True)
            return None
        delivery = Delivery(c.name, message_id, row["topic"], payload, row["from_agent"],
                            row["to_agent"], row["correlation_id"], row["causation_id"], attempts,
                            row["created_at"])
        try:
            try:
                result = await c.handler(delivery)
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # stopping
                    raise
                # Raised by something the handler awaited, not by a stop: the handler's failure.
                raise RuntimeError("the handler was cancelled from within") from None
        except Reject as exc:
            await self._fail(c, message_id, attempts, owner, f"rejected: {exc}", dead=True)
            return None
        except Exception as exc:
            log.exception("consumer %s failed on message %s", c.name, message_id)
            await self._fail(c, message_id, attempts, owner, f"{type(exc).__name__}: {exc}", dead=False)
            return None
        if result is None:
            result = HandlerResult()
        elif isinstance(result, list):
            result = HandlerResult(outputs=result)
        try:
            # Checked now, while the failure is this message's alone: found at the ack, it
            # would sink every message acked with it.
            out = [_encode(o) for o in result.outputs]
        except Exception as exc:
            log.error("consumer %s: message %s gave an invalid output: %s", c.name, message_id, one_line(exc))
            await self._fail(c, message_id, attempts, owner, f"invalid output: {one_line(exc)}", dead=False)
            return None
        return delivery, result, out

    async def _ack_or_fail(self, c: _Consumer, owner: uuid.UUID, done: list[Handled],
                           in_tx: InTx | None = None, durable: bool = False) -> None:
        """Ack; when the ack fails by a message's own doing (its handler's writes raised, or
        the database refused its outputs), ack the messages one by one and retry the one that
        fails like a failed handler: one bad message never holds up the rest, nor stops the
        bus. Anything else (the database gone or in trouble) raises, and the work waits for
        its lease as before."""
        try:
            await self._ack(c, owner, done, in_tx, durable)
        except (_OwnWritesFailed, *REFUSED_DATA) as exc:
            if len(done) > 1:
                for one in done:
                    await self._ack_or_fail(c, owner, [one], in_tx, durable)
                return
            [(d, _)] = done
            cause = exc.__cause__ if isinstance(exc, _OwnWritesFailed) else exc
            what = "its writes" if isinstance(exc, _OwnWritesFailed) else "its outputs"
            log.error("consumer %s: the ack of message %s failed on %s: %s", c.name, d.message_id, what,
                      one_line(cause))
            await self._fail(c, d.message_id, d.attempts, owner,
                             f"ack failed on {what}: {type(cause).__name__}: {cause}", dead=False)

    async def _ack(self, c: _Consumer, owner: uuid.UUID, done: list[Handled],
                   in_tx: InTx | None = None, durable: bool = False) -> None:
        """Ack, retrying through a lost connection while the lease can still be held:
        the work is done, and redoing it after the lease would waste a model call."""
        deadline = asyncio.get_running_loop().time() + c.lease_s
        delay = 0.05
        while True:
            try:
                return await self._ack_once(c, owner, done, in_tx, durable)
            except UNAVAILABLE:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _ack_once(self, c: _Consumer, owner: uuid.UUID, done: list[Handled],
                        in_tx: InTx | None, durable: bool = False) -> None:
        # A message re-claimed by this same worker after its lease ran out would appear twice;
        # its outputs must still be written once.
        done = list({d.message_id: (d, out) for d, out in done}.values())
        assert self._consumer_pool is not None
        if in_tx is None and not durable:
            sources, rows = [], []
            for d, out in done:
                sources += [d.message_id] * len(out)
                rows += out
            row = await self._consumer_pool.fetchrow(Q["ack_and_publish"], [d.message_id for d, _ in done], owner,
                                                     c.name, sources, *([list(col) for col in zip(*rows)]
                                                                        if rows else [[]] * 6))
            self._warn_lost(done, set(row["held"]))
            return
        async with self._consumer_pool.acquire() as conn, conn.transaction():
            if durable:
                await conn.execute("SET LOCAL synchronous_commit TO on")
            held = {r["message_id"] for r in await conn.fetch(Q["ack"], [d.message_id for d, _ in done], owner, c.name)}
            self._warn_lost(done, held)
            rows = [r for d, out in done if d.message_id in held for r in out]
            if in_tx is not None and held:
                try:
                    rows += [_encode(o) for o in await in_tx(conn) or []]
                except SERVER_TROUBLE:
                    raise  # the database's doing, not theirs
                except Exception as exc:
                    raise _OwnWritesFailed(one_line(exc)) from exc
            await self._publish_rows(rows, conn=conn)

    @staticmethod
    def _warn_lost(done: list[Handled], held: set[int]) -> None:
        lost = [d.message_id for d, _ in done if d.message_id not in held]
        if lost:
            log.warning("lease lost before ack for messages %s; their work will be redone", lost)

    async def _fail(self, c: _Consumer, message_id: int, attempts: int, owner: uuid.UUID, error: str,
                    dead: bool) -> None:
        delay = min(self.settings.bus_backoff_base_s * 2 ** (attempts - 1), self.settings.bus_backoff_max_s)
        delay *= random.uniform(0.8, 1.2)  # jitter: retries of a burst do not land together
        assert self._consumer_pool is not None
        state = await self._consumer_pool.fetchval(Q["retry"], message_id, owner, self.settings.bus_max_attempts,
                                                   delay, dead, error[:2000], c.name)
        if state == "dead":
            log.error("consumer %s dead-lettered message %s: %s", c.name, message_id, error)

    # ------------------------------------------------------------------ reading back
    async def replay(self, start: datetime, end: datetime, topics: Sequence[str] | None = None) -> list[dict]:
        rows = await self.pool.fetch(Q["replay"], start, end, list(topics) if topics else None)
        return [dict(r, payload=json.loads(r["payload"])) for r in rows]

    async def backlog(self) -> list[dict]:
        return [dict(r) for r in await self.pool.fetch(Q["backlog"])]
