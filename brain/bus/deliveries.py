"""One worker's deliveries in the database: ack (with outputs, exactly once), retry with
backoff, dead-letter, hand back at a stop, renew leases, and reclaim what a dead worker left.

Every statement holds only while this worker (its lease owner) still holds the lease, so a
worker that lost its lease can never mark done, retry or publish for work another has taken.
"""
from __future__ import annotations

import asyncio
import logging
import random
import uuid

import asyncpg

from brain.bus.errors import DB_ERRORS, REFUSED_DATA, SERVER_TROUBLE, UNAVAILABLE, OwnWritesFailed
from brain.bus.publisher import publish_rows_in
from brain.bus.queries import Q
from brain.bus.types import Handled, InTx, columns, encode
from brain.config import Settings
from brain.errors import one_line

log = logging.getLogger("brain.bus")
# How long a stop waits for an ack in flight, or for a last ack of finished work.
STOP_GRACE_S = 2.0


class Deliveries:
    """The deliveries one worker holds under its lease (`owner`) for consumer `name`."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, name: str, lease_s: float) -> None:
        self.pool = pool
        self.settings = settings
        self.name = name
        self.lease_s = lease_s
        # One lease owner per worker loop: an ack only lands while this worker still holds
        # the lease it claimed under.
        self.owner = uuid.uuid4()

    async def claim(self, limit: int) -> list[asyncpg.Record]:
        """Take in newly committed messages, then claim up to `limit` under this lease."""
        return await self.pool.fetch(Q["claim"], self.name, limit, self.owner, self.lease_s)

    async def ack_or_fail(self, done: list[Handled], in_tx: InTx | None = None, durable: bool = False) -> None:
        """Ack; when the ack fails by a message's own doing (its handler's writes raised, or
        the database refused its outputs), ack the messages one by one and retry the one that
        fails like a failed handler: one bad message never holds up the rest, nor stops the
        bus. Anything else (the database gone or in trouble) raises, and the work waits for
        its lease as before."""
        try:
            await self._ack(done, in_tx, durable)
        except (OwnWritesFailed, *REFUSED_DATA) as exc:
            if len(done) > 1:
                for one in done:
                    await self.ack_or_fail([one], in_tx, durable)
                return
            [(d, _)] = done
            cause = (exc.__cause__ or exc) if isinstance(exc, OwnWritesFailed) else exc
            what = "its writes" if isinstance(exc, OwnWritesFailed) else "its outputs"
            log.error("consumer %s: the ack of message %s failed on %s: %s", self.name, d.message_id, what,
                      one_line(cause))
            await self.fail(d.message_id, d.attempts, f"ack failed on {what}: {type(cause).__name__}: {cause}",
                            dead=False)

    async def _ack(self, done: list[Handled], in_tx: InTx | None = None, durable: bool = False) -> None:
        """Ack, retrying through a lost connection while the lease can still be held:
        the work is done, and redoing it after the lease would waste a model call."""
        deadline = asyncio.get_running_loop().time() + self.lease_s
        delay = 0.05
        while True:
            try:
                return await self.ack_once(done, in_tx, durable)
            except UNAVAILABLE:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def ack_once(self, done: list[Handled], in_tx: InTx | None, durable: bool = False) -> None:
        # A message re-claimed by this same worker after its lease ran out would appear twice;
        # its outputs must still be written once.
        done = list({d.message_id: (d, out) for d, out in done}.values())
        if in_tx is None and not durable:
            sources, rows = [], []
            for d, out in done:
                sources += [d.message_id] * len(out)
                rows += out
            record = await self.pool.fetchrow(Q["ack_and_publish"], [d.message_id for d, _ in done], self.owner,
                                              self.name, sources, *columns(rows))
            assert record is not None  # an aggregate: always one row
            self._warn_lost(done, set(record["held"]))
            return
        async with self.pool.acquire() as conn, conn.transaction():
            if durable:
                await conn.execute(Q["durable_commit"])
            held = {r["message_id"] for r in await conn.fetch(Q["ack"], [d.message_id for d, _ in done],
                                                               self.owner, self.name)}
            self._warn_lost(done, held)
            rows = [r for d, out in done if d.message_id in held for r in out]
            if in_tx is not None and held:
                try:
                    rows += [encode(o) for o in await in_tx(conn) or []]
                except SERVER_TROUBLE:
                    raise  # the database's doing, not theirs
                except Exception as exc:
                    raise OwnWritesFailed(one_line(exc)) from exc
            await publish_rows_in(conn, rows)

    async def ack_left_over(self, unacked: list[Handled]) -> None:
        """At a stop: ack finished work once, briefly; what does not make it is redone."""
        if not unacked:
            return
        try:
            await asyncio.wait_for(self.ack_once(unacked, None), timeout=STOP_GRACE_S)
        except Exception:
            log.warning("consumer %s: could not ack %d messages at shutdown; they will be redone",
                        self.name, len(unacked))

    @staticmethod
    def _warn_lost(done: list[Handled], held: set[int]) -> None:
        lost = [d.message_id for d, _ in done if d.message_id not in held]
        if lost:
            log.warning("lease lost before ack for messages %s; their work will be redone", lost)

    async def fail(self, message_id: int, attempts: int, error: str, dead: bool) -> None:
        """A failed attempt: back off (with jitter), or dead-letter once attempts are used up
        (or at once, when `dead`)."""
        delay = min(self.settings.bus_backoff_base_s * 2 ** (attempts - 1), self.settings.bus_backoff_max_s)
        delay *= random.uniform(0.8, 1.2)  # jitter: retries of a burst do not land together
        state = await self.pool.fetchval(Q["retry"], message_id, self.owner, self.settings.bus_max_attempts,
                                         delay, dead, error[:2000], self.name)
        if state == "dead":
            log.error("consumer %s dead-lettered message %s: %s", self.name, message_id, error)

    async def release(self, message_ids: list[int], *, started: bool) -> None:
        """Hand claimed messages back as pending: one whose handler a stop cut off keeps its
        attempt counted (a handler that never finishes must still run out of attempts)."""
        if not message_ids:
            return
        try:
            await asyncio.wait_for(self.pool.execute(Q["release"], message_ids, self.owner, self.name, not started),
                                   timeout=STOP_GRACE_S)
        except DB_ERRORS as exc:
            log.warning("consumer %s: could not hand back messages %s (%s); they are redone after their lease",
                        self.name, message_ids, one_line(exc))

    async def renew(self, message_ids: list[int]) -> None:
        await self.pool.execute(Q["renew"], message_ids, self.owner, self.name, self.lease_s)

    async def reclaim_if_due(self, due: float) -> float:
        """On the slow poll: put work whose lease ran out back to pending (a claim does not
        look for it; see bus_claim in migrations/schema.sql). Returns when to look next."""
        now = asyncio.get_running_loop().time()
        if now < due:
            return due
        rows = await self.pool.fetch(Q["reclaim_expired"], self.name, self.settings.bus_max_attempts)
        for r in rows:
            if r["state"] == "dead":
                log.error("consumer %s dead-lettered message %s: its lease expired on every attempt",
                          self.name, r["message_id"])
        if rows:
            log.warning("consumer %s: %d leases ran out; that work is redone", self.name, len(rows))
        return now + min(self.settings.bus_poll_interval_s, self.lease_s / 4)
