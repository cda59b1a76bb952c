"""The router: try the skill's routes in order, each behind its breaker, book every attempt
in the ledger, validate the answer, repair once, and fail closed."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from brain.errors import one_line
from brain.router.answers import ModelAnswer, ModelFailure, schema_problem
from brain.router.breaker import Breaker
from brain.router.prices import PriceTable, Usage
from brain.router.routes import Route, RouteError, build_prompt
from brain.skills.skill import Skill
from brain.sql import queries_beside

log = logging.getLogger("brain.router")
Q = queries_beside(__file__, "ledger.sql")


class Router:
    def __init__(self, pool: asyncpg.Pool, routes: Sequence[Route], philosophy: str, prices: PriceTable,
                 breaker_threshold: int = 3, breaker_cooldown_s: float = 60.0,
                 daily_budget_usd: float = 10.0) -> None:
        self.pool = pool
        self.routes = {r.name: r for r in routes}
        self.order = [r.name for r in routes]
        self.philosophy = philosophy
        self.prices = prices
        self.budget = daily_budget_usd
        self.breakers = {r.name: Breaker(r.name, breaker_threshold, breaker_cooldown_s) for r in routes}
        self._pending: list[tuple] = []

    def plan(self, skill: Skill) -> list[str]:
        """The skill's preferred routes that are switched on, then the other enabled routes."""
        preferred = [r for r in skill.route_preference if r in self.routes]
        return preferred + [r for r in self.order if r not in preferred]

    async def spent_today(self) -> float:
        return float(await self.pool.fetchval(Q["spent_today"]))

    async def call(self, agent: str, skill: Skill, inputs: dict[str, Any],
                   correlation_id: str | None = None) -> ModelAnswer | ModelFailure:
        attempts: list[str] = []
        over_budget = None
        for name in self.plan(skill):
            route = self.routes[name]
            if not route.zero_cost:
                if over_budget is None:
                    over_budget = await self.spent_today() >= self.budget
                if over_budget:
                    attempts.append(f"{name}: skipped, daily budget of ${self.budget:.2f} reached")
                    continue
            breaker = self.breakers[name]
            if not breaker.allow():
                attempts.append(f"{name}: breaker open")
                continue
            try:
                answer = await self._try_route(agent, skill, route, inputs, correlation_id, attempts)
            except BaseException:
                breaker.abandon()  # an unfinished trial must not hold a half-open breaker shut
                raise
            if answer is not None:
                breaker.success()
            else:
                breaker.failure()
            await self._save_breaker(breaker)
            if answer is not None:
                return answer
        log.warning("%s: every route failed for skill %s: %s", agent, skill.name, "; ".join(attempts))
        return ModelFailure("no route produced a valid answer", attempts, skill.name, skill.content_hash)

    async def _try_route(self, agent: str, skill: Skill, route: Route, inputs: dict[str, Any],
                         correlation_id: str | None, attempts: list[str]) -> ModelAnswer | None:
        repair: str | None = None
        for attempt in range(2):  # the answer, then one repair on the same route
            prompt = build_prompt(self.philosophy, skill, inputs, repair)
            started = time.perf_counter()
            try:
                reply = await route.complete(skill, prompt)
            except asyncio.CancelledError:
                # Stopping mid-call: the attempt is booked all the same (a paid request may
                # already be billed; its usage is unknown), and not itself cut short.
                latency = (time.perf_counter() - started) * 1000
                await asyncio.shield(self._book(agent, skill, route.name, route.model_for(prompt), Usage(), latency,
                                                correlation_id, "failed", "cancelled",
                                                "the call was cancelled (the brain was stopping)"))
                raise
            except Exception as exc:
                # A route's own failure, or anything else it raised (a CLI path that is a
                # directory, a bug): booked as a failed call, and the next route is tried.
                failure = exc if isinstance(exc, RouteError) else RouteError(type(exc).__name__, one_line(exc))
                latency = (time.perf_counter() - started) * 1000
                await self._book(agent, skill, route.name, route.model_for(prompt), failure.usage, latency,
                                 correlation_id, "failed", failure.error_class, failure.detail)
                attempts.append(f"{route.name}: {failure.error_class}: {failure.detail[:120]}")
                return None
            latency = (time.perf_counter() - started) * 1000
            data, problem = schema_problem(skill.output_schema, reply.data if reply.data is not None else reply.text)
            cost = await self._book(agent, skill, route.name, reply.model, reply.usage, latency, correlation_id,
                                    "ok" if problem is None else "invalid", None if problem is None else "invalid_answer",
                                    problem)
            if problem is None:
                assert data is not None  # schema_problem gives data exactly when there is no problem
                return ModelAnswer(data, route.name, reply.model, skill.name, skill.content_hash, cost, latency)
            attempts.append(f"{route.name}: invalid answer ({problem[:120]})" + (" after repair" if attempt else ""))
            repair = problem
        return None

    async def _book(self, agent: str, skill: Skill, route: str, model: str, usage: Usage, latency: float,
                    correlation_id: str | None, outcome: str, error_class: str | None, detail: str | None) -> float:
        cost = 0.0 if self.routes[route].zero_cost else self.prices.cost(model, usage)
        if cost is None:
            cost = self.prices.highest(usage)
            if cost:
                log.warning("no price for model %s: its call is booked at the price table's highest rates, "
                            "$%.4f (add the model to the table)", model, cost)
        args = (agent, skill.name, skill.content_hash, correlation_id, route, model, usage.input_tokens,
                usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens, cost, latency, outcome,
                error_class, (detail or "")[:1000] or None)
        if self.routes[route].zero_cost:
            # Nothing was spent: these rows are written in batches, off the caller's path (a
            # crash can lose the last few of these, never a paid one).
            self._pending.append(args)
            if len(self._pending) >= 200:
                await self.flush_ledger()
        else:
            await self.pool.execute(Q["record"], *args)
        return cost

    async def flush_ledger(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(Q["commit_without_waiting"])
                await conn.executemany(Q["record"], rows)
        except BaseException:
            # Not written (the database went away, or a stop cut the flush short): kept, ahead
            # of what was booked meanwhile, for the next flush.
            self._pending[:0] = rows
            raise

    async def flush_forever(self, every_s: float = 0.2) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.flush_ledger()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("ledger: %d rows wait to be written (%s)", len(self._pending), one_line(exc))

    async def publish_breakers(self) -> None:
        """At start: every route's breaker as this process has it (closed), and routes no longer
        listed as off, so that what the operator reads is not a previous run's."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["breakers_off"], list(self.breakers))
            for breaker in self.breakers.values():
                await conn.execute(Q["save_breaker"], breaker.route, json.dumps(breaker.snapshot()))
                breaker.changed = False

    async def _save_breaker(self, breaker: Breaker) -> None:
        if breaker.changed:
            await self.pool.execute(Q["save_breaker"], breaker.route, json.dumps(breaker.snapshot()))
            breaker.changed = False
