"""The worker for slow handlers (model calls): several messages in flight at once."""
from __future__ import annotations

import asyncio
import logging

import asyncpg

from brain.bus.errors import DB_ERRORS
from brain.bus.worker import Worker, finish
from brain.errors import one_line

log = logging.getLogger("brain.bus")


class ConcurrentWorker(Worker):
    """One claimer keeps up to `concurrency` messages in flight, each handled and acked on
    its own, so one long call never holds up the rest and a notification wakes one claim,
    not a herd of idle workers. A freed slot claims only when there may be more: a
    notification came, or the last claim filled every slot."""

    async def run(self) -> None:
        running: set[asyncio.Task[None]] = set()
        backoff = 0.05
        reclaim_due = 0.0
        maybe_more = True
        wake = self.wake.event
        renewing = asyncio.ensure_future(self.keep_leases())
        try:
            while not self.stopping.is_set():
                free = self.c.concurrency - len(running)
                if free > 0 and (maybe_more or wake.is_set()):
                    wake.clear()
                    try:
                        reclaim_due = await self.deliveries.reclaim_if_due(reclaim_due)
                        rows = await self.deliveries.claim(free)
                        backoff = 0.05
                    except DB_ERRORS as exc:
                        backoff = await self.back_off(exc, backoff)
                        continue
                    for row in rows:
                        task = asyncio.ensure_future(self._handle_and_ack(row))
                        running.add(task)
                        task.add_done_callback(running.discard)
                    maybe_more = len(rows) == free
                    continue
                # Wait for a notification or a window's close (when a slot is free), a finished
                # message, or the slow poll, after which we look anyway: a lost notification
                # only delays.
                waker = asyncio.ensure_future(wake.wait()) if free > 0 else None
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

    async def _handle_and_ack(self, row: asyncpg.Record) -> None:
        message_id = row["message_id"]
        try:
            self.held.waiting(message_id, [message_id])
            try:
                outcome = await self.handle(row)
            except asyncio.CancelledError:
                await self.deliveries.release([message_id], started=True)
                raise
            finally:
                self.held.done(message_id)
            if outcome is not None:
                delivery, result, rows = outcome
                await finish(self.deliveries.ack_or_fail([(delivery, rows)], result.in_tx, result.durable))
        except DB_ERRORS as exc:
            log.warning("consumer %s: could not finish message %s (%s); it is redone after its lease",
                        self.c.name, message_id, one_line(exc))
