"""The usual worker: claims a batch, handles it in order, and acks streams in groups."""
from __future__ import annotations

import asyncio
import time

from brain.bus.errors import DB_ERRORS
from brain.bus.types import Handled
from brain.bus.worker import Worker, finish


class SerialWorker(Worker):
    """One message at a time, in claim order; one commit acks many while a stream flows."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        window = self.settings.bus_ack_window_ms / 1000
        pause = self.settings.bus_claim_pause_ms / 1000
        wake = self.wake
        unacked: list[Handled] = []
        first_unacked_at = 0.0
        backoff = 0.05
        reclaim_due = 0.0
        renewing = asyncio.ensure_future(self.keep_leases())
        try:
            while not self.stopping.is_set():
                wake.event.clear()
                try:
                    reclaim_due = await self.deliveries.reclaim_if_due(reclaim_due)
                    had = len(unacked)
                    began = time.monotonic()
                    claimed = await self._claim_and_handle(unacked)
                    if not had and unacked:
                        first_unacked_at = loop.time()
                    more = claimed >= self.c.batch or wake.event.is_set()
                    # Group acks while a stream is flowing (claims bring several messages):
                    # one commit for many instead of one per notification. Otherwise ack at
                    # once: a pipeline of single messages must not wait at every hop.
                    in_window = wake.linger_until > began
                    streaming = (more or in_window) and claimed > 1
                    if unacked and (not streaming or len(unacked) >= self.c.batch
                                    or loop.time() - first_unacked_at >= window):
                        batch, unacked = unacked, []
                        await finish(self.deliveries.ack_or_fail(batch))
                    backoff = 0.05
                except DB_ERRORS as exc:
                    backoff = await self.back_off(exc, backoff)
                    continue
                if more:
                    if 1 < claimed < self.c.batch and pause:
                        # A stream rather than a backlog: let a few more arrive so the next
                        # claim and ack each cover several messages.
                        await asyncio.sleep(pause)
                    continue
                # Nothing announced since the claim began. Wait for a notification, or for an
                # announced window to close (Wake.look_at); the slow poll means a lost one
                # only delays work by this much.
                try:
                    async with asyncio.timeout(self.settings.bus_poll_interval_s):  # not wait_for: see listener
                        await wake.event.wait()
                except TimeoutError:
                    pass
        finally:
            renewing.cancel()
            # Cancelled, or stopping because another bus task failed: finished work should
            # not be redone just because we are stopping.
            await self.deliveries.ack_left_over(unacked)

    async def _claim_and_handle(self, unacked: list[Handled]) -> int:
        """Claim a batch and run the handler on each; results join `unacked` (or are acked
        at once when they carry writes of their own)."""
        rows = await self.deliveries.claim(self.c.batch)
        if not rows:
            return 0
        unfinished = list(rows)  # a message leaves it once its handler has returned
        running = None  # the message whose handler runs now
        # Work handled earlier but not acked yet (a stream's) waits on these handlers too.
        waiting = [r["message_id"] for r in rows] + [d.message_id for d, _ in unacked]
        try:
            while unfinished and not self.stopping.is_set():
                row = running = unfinished[0]
                self.held.waiting(0, waiting)
                outcome = await self.handle(row)
                running = None
                unfinished.pop(0)
                if outcome is None:
                    continue
                delivery, result, out = outcome
                if result.in_tx is not None or result.durable:
                    await finish(self.deliveries.ack_or_fail([(delivery, out)], result.in_tx, result.durable))
                else:
                    unacked.append((delivery, out))
        finally:
            self.held.done(0)
            # Stopping mid-batch: hand back what was not finished, for the next start to
            # take at once rather than after the lease.
            if running is not None:
                await self.deliveries.release([running["message_id"]], started=True)
            await self.deliveries.release([r["message_id"] for r in unfinished if r is not running], started=False)
        return len(rows)
