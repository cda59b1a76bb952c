"""Assemble the running brain: pool, bus, skills, router, broker, agents, heartbeats."""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from brain.agents import graph
from brain.agents.context import AgentContext
from brain.agents.executor import expire_stale_proposals
from brain.agents.offline_rules import register_all as register_offline_rules
from brain.aio import Tasks
from brain.broker.base import Broker
from brain.broker.paper import PaperBroker, PaperCosts
from brain.bus import Bus, Outgoing
from brain.config import Settings, doctrine_path
from brain.db.connect import create_pool
from brain.db.types import Conn
from brain.errors import BrainError
from brain.heartbeat import beat
from brain.router.factory import build_router, checked_prices
from brain.skills.registry import SkillRegistry

if TYPE_CHECKING:
    import ib_async
    import uvicorn

    from brain.broker.ib import IBBroker
    from brain.market.ib_feed import IBBarFeed

log = logging.getLogger("brain")


@dataclass
class Brain:
    settings: Settings
    pool: asyncpg.Pool
    bus: Bus
    ctx: AgentContext
    skills: SkillRegistry
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    failure: BaseException | None = None
    http: uvicorn.Server | None = None
    http_task: asyncio.Task[Any] | None = None
    ib_feed: IBBarFeed | None = None      # live bars when the broker is IB
    # What runs for good (a death stops the brain), and what runs once on an event (a
    # failure is logged): the second is stopped first, and both before the bus.
    tasks: Tasks = field(init=False)
    side_tasks: Tasks = field(init=False)
    _may_finish: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.tasks = Tasks("brain", self._task_ended)
        self.side_tasks = Tasks("brain")

    async def _repair_journal(self) -> None:
        """Before new entries: rewrite recent journal files a crash left short or missing."""
        from brain.journal.repair import RECENT, repair_recent_files

        rows = [(r["file_path"], r["body_md"]) for r in await self.pool.fetch(RECENT)]
        rewritten = await asyncio.to_thread(repair_recent_files, rows)
        if rewritten:
            log.warning("journal: rewrote %d entry files from their rows (short or missing after a crash)",
                        len(rewritten))

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, may_finish: bool = False) -> asyncio.Task[Any]:
        """A registered background task; one that dies stops the brain (better down and
        noticed by the watchdog than up and silently deaf). A task that may_finish (a replay
        that runs out of bars) stops the brain only when it fails."""
        if may_finish:
            self._may_finish.add(name)
        return self.tasks.spawn(coro, name)

    def _task_ended(self, name: str, exc: BaseException | None) -> None:
        if self.stopping.is_set():
            return
        if exc is not None:
            log.error("%s died: %r; stopping the brain", name, exc)
            self.failure = exc
        elif name in self._may_finish:
            return
        self.stopping.set()

    async def start(self) -> None:
        await self._repair_journal()
        await self.bus.start()
        await self.ctx.router.publish_breakers()
        self.spawn(self._heartbeats(), "heartbeat")
        self.spawn(self._persist_skills(), "skill recorder")
        self.spawn(expire_stale_proposals(self.pool, self.bus, self.settings.signature_timeout_s), "proposal expiry")
        self.spawn(self._watch_bus(), "bus")
        self.spawn(self.ctx.router.flush_forever(), "ledger writer")
        from brain.optimizer.consumer import nightly

        self.spawn(nightly(self.pool, self.bus, self.settings.optimizer_hour_utc), "nightly optimizer")
        if self.ib_feed is not None:
            await self._start_ib()
        if self.settings.ingress_port:
            from brain.ingress.serve import make_server

            # The paper broker fills on the bars posted to the ingress; IB fills at IB.
            paper = self.ctx.broker if self.ctx.broker.name == "paper" else None
            self.http = make_server(self.settings, self.pool, self.bus, paper)
            self.http_task = self.spawn(self.http.serve(), "ingress")

    async def _start_ib(self) -> None:
        broker, feed = cast("IBBroker", self.ctx.broker), self.ib_feed  # only with the IB broker
        assert feed is not None
        def resubscribe() -> None:
            # Streams do not survive a gateway restart: subscribe again on every reconnect.
            self.side_tasks.spawn(feed.subscribe(), "IB bars: subscribing again after a reconnect", critical=False)

        broker.ib.connectedEvent += resubscribe
        await feed.subscribe()
        self.spawn(broker.run(), "IB broker")

    async def _heartbeats(self) -> None:
        info = {"pid": os.getpid()}
        paper = self.ctx.broker.name == "paper"
        while True:
            await beat(self.pool, "brain", info)
            if paper:
                # The paper broker lives in this process: its heartbeat is this process being
                # able to reach its book. The IB adapter beats from its own loop, and only while
                # the gateway answers.
                await beat(self.pool, "broker", {"broker": "paper", "pid": os.getpid()})
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    async def _persist_skills(self) -> None:
        while True:
            async with self.pool.acquire() as conn:
                await self.skills.persist(conn)
            await asyncio.sleep(0.5)

    async def _watch_bus(self) -> None:
        await self.bus.wait_stopped()
        if self.bus.failed is not None:
            raise self.bus.failed

    async def close(self) -> None:
        self.stopping.set()
        if self.http is not None:
            self.http.should_exit = True  # let it close its socket before the rest is cancelled
            assert self.http_task is not None  # set together with http
            await asyncio.wait({self.http_task}, timeout=5)
        # Every step is bounded: a stop that hangs is worse than one that says what it left.
        await bounded(self.side_tasks.stop(), "tasks started on events")
        await bounded(self.tasks.stop(), "background tasks")
        await bounded(self.bus.stop(), "the bus")
        if self.ib_feed is not None:
            cast("IBBroker", self.ctx.broker).ib.disconnect()  # ib_feed is only there with the IB broker
        await bounded(self.ctx.router.flush_ledger(), "the ledger flush")
        await bounded(self._persist_skills_once(), "the skill recorder")
        if self.failure is None:
            # Shut down on purpose: the watchdog stops timing this brain until it beats again.
            await bounded(beat(self.pool, "brain", {"pid": os.getpid(), "stopped": True}), "the last heartbeat")
        self.skills.stop()
        if not await bounded(self.pool.close(), "closing the database pool"):
            self.pool.terminate()

    async def _persist_skills_once(self) -> None:
        async with self.pool.acquire() as conn:
            await self.skills.persist(conn)


async def bounded(awaitable: Awaitable[Any], what: str, timeout_s: float = 15.0) -> bool:
    """Await a shutdown step for at most timeout_s; False (and a log line) when it did not end."""
    try:
        async with asyncio.timeout(timeout_s):
            await awaitable
        return True
    except TimeoutError:
        log.error("shutdown: %s did not finish within %.0fs; going on without it", what, timeout_s)
        return False


async def open_brain(settings: Settings, app_url: str, require_watchdog: bool = True,
                     watch_skills: bool = True, ib: ib_async.IB | None = None) -> Brain:
    """ib: an ib_async IB object to use instead of a new one (tests hand in a fake)."""
    philosophy_path = doctrine_path(settings)
    skills = SkillRegistry(settings.skills_dir)
    skills.load_all()
    missing = {"regime", "strategist", "risk-gate", "fact-checker", "double-checker"} - set(skills.names())
    if missing:
        raise BrainError(f"skills missing or invalid under {settings.skills_dir}: {', '.join(sorted(missing))}")
    if settings.ingress_port:
        from brain.ingress.serve import check_binding

        check_binding(settings)  # before anything starts: a misconfiguration stops here
    prices = checked_prices(settings)  # the same for the routes: their keys, their models' prices
    if watch_skills:
        skills.start()
    register_offline_rules()
    pool = await create_pool(app_url, min_size=2, max_size=12)
    bus = Bus(pool, settings=settings, listen_url=app_url)
    ib_feed = None
    broker: Broker
    if settings.broker == "ib":
        broker, ib_feed = await _connect_ib(settings, pool, bus, ib)
    else:
        broker = PaperBroker(starting_cash=settings.paper_starting_cash,
                             costs=PaperCosts(settings.paper_slippage_bps, settings.paper_commission_per_share,
                                              settings.paper_commission_min))
        async with pool.acquire() as conn:
            await broker.ensure_account(conn)
            for problem in await broker.reconcile(conn):
                log.warning("reconcile: %s", problem)
    router = build_router(settings, pool, philosophy_path.read_text(), prices)
    ctx = AgentContext(pool, router, skills, broker, settings, Path(settings.context_dir))
    graph.register(bus, ctx, require_watchdog=require_watchdog)
    return Brain(settings, pool, bus, ctx, skills, ib_feed=ib_feed)


async def _connect_ib(settings: Settings, pool: asyncpg.Pool, bus: Bus,
                      ib: ib_async.IB | None = None) -> tuple[IBBroker, IBBarFeed]:
    """The IB adapter and its bar feed, connected and reconciled; a gateway that does not
    answer stops the start with one line (the service manager retries)."""
    from brain.broker.ib import IBBroker, IBConfig
    from brain.market.ib_feed import IBBarFeed

    if ib is None:
        from ib_async import IB

        ib = IB()

    async def publish(out: list[Outgoing], conn: Conn) -> None:
        await bus.publish_many(out, conn=conn)

    broker = IBBroker(ib, IBConfig(settings.ib_host, settings.ib_port, settings.ib_client_id, settings.ib_account,
                                   heartbeat_s=settings.heartbeat_interval_s), pool, publish)
    await broker.connect()
    feed = IBBarFeed(ib, pool, bus, settings.ib_symbols, settings.ib_bar_seconds, settings.ib_history)
    return broker, feed
