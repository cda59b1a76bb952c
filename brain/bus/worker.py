"""A consumer's worker: what it holds under its lease, the handler's run over one delivery,
and the task that renews its leases. The loops are SerialWorker and ConcurrentWorker."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from brain import messages
from brain.bus.deliveries import STOP_GRACE_S, Deliveries
from brain.bus.errors import Reject
from brain.bus.types import Delivery, Handler, HandlerResult, Row, encode
from brain.bus.windows import Wake
from brain.config import Settings
from brain.errors import BrainError, one_line

log = logging.getLogger("brain.bus")


@dataclass(frozen=True)
class Consumer:
    """A consumer as registered: its durable name, topics, handler and how it takes work."""

    name: str
    topics: tuple[str, ...]
    handler: Handler
    batch: int
    lease_s: float
    concurrency: int


@dataclass
class Held:
    """What one worker holds under its lease while handlers run, renewed by one task per
    worker (Worker.keep_leases): groups of messages, each waiting on one running handler, with
    when that handler began. Plain data on purpose: nothing per claim on the hot path but two
    dict operations (a task per claim made reference cycles, and the collector's full passes
    then stalled the event loop for tens of milliseconds)."""

    groups: dict[int, tuple[list[int], float]] = field(default_factory=dict)

    def waiting(self, key: int, message_ids: list[int]) -> None:
        """These messages now wait on a handler that starts now."""
        self.groups[key] = (message_ids, time.monotonic())

    def done(self, key: int) -> None:
        self.groups.pop(key, None)


async def finish(work: Awaitable[Any]) -> None:
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
        elif not task.cancelled() and (failed := task.exception()) is not None:
            log.warning("bus: work in flight at stop failed (%s)", one_line(failed))
        raise


class Worker:
    """One consumer's loop in this process, under one lease owner."""

    def __init__(self, consumer: Consumer, pool: asyncpg.Pool, settings: Settings, stopping: asyncio.Event) -> None:
        self.c = consumer
        self.settings = settings
        self.stopping = stopping
        self.wake = Wake()
        self.deliveries = Deliveries(pool, settings, consumer.name, consumer.lease_s)
        self.held = Held()

    async def run(self) -> None:
        """Take and handle work until stopped or cancelled."""
        raise NotImplementedError

    async def keep_leases(self) -> None:
        """A worker's companion task: every third of a lease, renew the leases on what it holds
        while handlers run. A model call may outlast a lease, and work whose lease runs out is
        taken back and redone, paid for twice. A handler still running after
        bus_handler_max_s (counted from its own start) is taken for hung: the leases of what
        waits on it are left to run out, and that work is redone."""
        warned: set[tuple[int, float]] = set()
        while True:
            await asyncio.sleep(self.c.lease_s / 3)
            now, renew = time.monotonic(), []
            for key, (message_ids, started) in list(self.held.groups.items()):
                if now - started < self.settings.bus_handler_max_s:
                    renew += message_ids
                elif (key, started) not in warned:
                    warned.add((key, started))
                    log.warning("consumer %s: a handler has run for more than %.0fs; the leases of messages %s are "
                                "no longer renewed, and the work is redone", self.c.name,
                                self.settings.bus_handler_max_s, message_ids)
            if not renew:
                continue
            try:
                await self.deliveries.renew(renew)
            except Exception as exc:  # whatever it was, the next renewal tries again (two thirds of the lease left)
                log.warning("consumer %s: could not renew leases (%s)", self.c.name, one_line(exc))

    async def back_off(self, exc: BaseException, delay: float) -> float:
        """Wait after a database error (the server restarting, a dropped connection) and
        return the next, longer, delay."""
        log.warning("consumer %s: database error (%s); retrying in %.2fs", self.c.name, one_line(exc), delay)
        await asyncio.sleep(delay)
        return min(delay * 2, 2.0)

    async def handle(self, row: asyncpg.Record) -> tuple[Delivery, HandlerResult, list[Row]] | None:
        """Run the handler; returns the delivery, its result and its outputs encoded, or None
        when the message failed (it is then retried or dead-lettered)."""
        message_id, attempts = row["message_id"], row["attempts"]
        fail = self.deliveries.fail
        try:
            payload = messages.validate_json(row["topic"], row["payload"])
        except BrainError as exc:
            await fail(message_id, attempts, f"invalid payload: {exc}", dead=True)
            return None
        delivery = Delivery(self.c.name, message_id, row["topic"], payload, row["from_agent"],
                            row["to_agent"], row["correlation_id"], row["causation_id"], attempts,
                            row["created_at"])
        try:
            try:
                result = await self.c.handler(delivery)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # stopping
                    raise
                # Raised by something the handler awaited, not by a stop: the handler's failure.
                raise RuntimeError("the handler was cancelled from within") from None
        except Reject as exc:
            await fail(message_id, attempts, f"rejected: {exc}", dead=True)
            return None
        except Exception as exc:
            log.exception("consumer %s failed on message %s", self.c.name, message_id)
            await fail(message_id, attempts, f"{type(exc).__name__}: {exc}", dead=False)
            return None
        if result is None:
            result = HandlerResult()
        elif isinstance(result, list):
            result = HandlerResult(outputs=result)
        try:
            # Checked now, while the failure is this message's alone: found at the ack, it
            # would sink every message acked with it.
            out = [encode(o) for o in result.outputs]
        except Exception as exc:
            log.error("consumer %s: message %s gave an invalid output: %s", self.c.name, message_id, one_line(exc))
            await fail(message_id, attempts, f"invalid output: {one_line(exc)}", dead=False)
            return None
        return delivery, result, out
