"""Prometheus metrics, read from the database at scrape time (so the watchdog's halts, the
ledger and the bus are reported whoever wrote them)."""
from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from brain.sql import queries_beside

Q = queries_beside(__file__, "metrics.sql")


async def render(pool: asyncpg.Pool) -> str:
    backlog = await pool.fetch(Q["bus_backlog"])
    cycles = await pool.fetch(Q["cycles_by_outcome"])
    calls = await pool.fetch(Q["model_calls"])
    breakers = await pool.fetch(Q["breakers"])
    halt = await pool.fetchval(Q["halt_level"])
    hop = await pool.fetchrow(Q["mean_hop"])
    assert hop is not None  # an aggregate: always one row
    hop_s = hop[0]

    class Snapshot:
        def collect(self) -> Iterator[Metric]:
            g = GaugeMetricFamily("brain_bus_backlog", "Deliveries waiting per consumer and state",
                                  labels=["consumer", "state"])
            age = GaugeMetricFamily("brain_bus_oldest_waiting_seconds", "Age of the oldest waiting message",
                                    labels=["consumer"])
            for consumer, pending, working, dead, untaken, oldest in backlog:
                for state, n in (("pending", pending), ("working", working), ("dead", dead), ("untaken", untaken)):
                    g.add_metric([consumer, state], n)
                age.add_metric([consumer], float(oldest))
            yield g
            yield age
            yield GaugeMetricFamily("brain_bus_hop_seconds", "Mean publish-to-done time over 5 minutes",
                                    value=hop_s)
            c = GaugeMetricFamily("brain_cycles", "Trading cycles by outcome", labels=["outcome"])
            for outcome, n in cycles:
                c.add_metric([outcome], n)
            yield c
            m = GaugeMetricFamily("brain_model_calls", "Model call attempts", labels=["route", "outcome"])
            cost = GaugeMetricFamily("brain_model_cost_usd", "Model spend in USD", labels=["route"])
            spend: dict[str, float] = {}
            for route, outcome, n, usd in calls:
                m.add_metric([route, outcome], n)
                spend[route] = spend.get(route, 0.0) + usd
            for route, usd in spend.items():
                cost.add_metric([route], usd)
            yield m
            yield cost
            b = GaugeMetricFamily("brain_breaker_open", "1 when a route's breaker is open or half-open",
                                  labels=["route"])
            for route, state in breakers:
                b.add_metric([route], 1 if state in ("open", "half_open") else 0)
            yield b
            yield GaugeMetricFamily("brain_halt_level", "Highest active halt level (0 = none)", value=halt)

    registry = CollectorRegistry()
    registry.register(Snapshot())
    return generate_latest(registry).decode()
