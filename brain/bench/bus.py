"""`brain bench bus`: the bus end to end against the raw ceiling of the same server.

- ceiling: one single-row INSERT per commit from one client (the durable-commit limit);
- end to end: one producer publishing one message per commit while a consumer wakes,
  claims, handles and acks each message with one output message; the rate is messages
  over the time from the first publish to the last ack;
- latency: publish-to-handler at a fixed 500 msg/s, measured first (see run_bus_bench);
- batched: 100 messages per publishing transaction;
- producer alone: the same producer with no consumer running (its topic has a subscriber,
  so it publishes as it would in production): how much of the ceiling the publishing side
  reaches by itself, and so how much of the gap the consumer beside it accounts for;
- client CPU: microseconds of CPU per commit or message in each client process (the
  ceiling's client, the producer, the consumer);
- flush share: the ceiling's commits again without waiting for the WAL flush, which tells
  what share of a durable commit is the flush. Where it is small, CPU and wake-ups rather
  than the disk bound every rate here, and the work the bus adds to a commit (its client
  CPU above, a wider row, a consumer beside it) weighs almost in full against the ratio.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import asyncpg

from brain.bus import Q, Bus, Delivery, Outgoing
from brain.config import Settings
from brain.db.urls import psycopg_conninfo, with_user
from brain.messages import Payload, topic
from brain.sql import queries_beside


@topic("bench.ping")
class BenchPing(Payload):
    n: int
    sent_at: float
    body: str


# The producer-alone and batched runs publish on a topic of their own, subscribed by a
# consumer that never runs (so they publish, and notify, as they would in production), so
# that the end-to-end consumer never takes in what they left behind.
topic("bench.solo")(BenchPing)


@topic("bench.pong")
class BenchPong(Payload):
    n: int


BENCH = queries_beside(__file__, "bus.sql")  # the bench's own statements (Q holds the bus's)
BODY = "x" * 200  # a payload about the size of a small market.state message


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class _Rate:
    per_s: float
    cpu_us: float  # the client process's CPU per commit or message


async def _ceiling(url: str, n: int, flushed: bool = True) -> _Rate:
    conn = await asyncpg.connect(url)
    try:
        if not flushed:
            await conn.execute(BENCH["unflushed_session"])
        # The ceiling's table is the bench's own, made here in its scratch database (no
        # revision has it, so its two statements stay beside the code that makes it).
        # A logged table with a primary key: an unlogged or temp table would skip the WAL
        # flush that bounds every durable commit, and overstate the ceiling.
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_ceiling (id bigserial PRIMARY KEY, payload jsonb)")
        payload = json.dumps({"n": 0, "sent_at": 0.0, "body": BODY})
        stmt = await conn.prepare("INSERT INTO bench_ceiling (payload) VALUES ($1::jsonb)")
        for _ in range(50):  # warm up
            await stmt.fetch(payload)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            await stmt.fetch(payload)
        return _Rate(n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6)
    finally:
        await conn.close()


class _Sink:
    """The benchmark consumer: records when each message reached the handler."""

    def __init__(self, expected: int) -> None:
        self.latencies_ms: list[float] = []  # one per message handled
        self.expected = expected
        # Set when every message has reached the handler: waited on, not polled, so that
        # watching the run costs the machine nothing while it is measured.
        self.all_handled = asyncio.Event()

    async def handle(self, d: Delivery) -> list[Outgoing] | None:
        ping = cast(BenchPing, d.payload)  # the bus validated it as its topic's model
        if ping.n < 0:  # the producer's warm-up message
            return None
        self.latencies_ms.append((time.monotonic() - ping.sent_at) * 1000)
        if len(self.latencies_ms) >= self.expected:
            self.all_handled.set()
        return [d.reply("bench.pong", BenchPong(n=ping.n), from_agent="bench")]


async def _wait_acked(pool: asyncpg.Pool, timeout: float = 120.0) -> None:
    """Until the bench consumer has nothing pending or in flight (read through the partial
    indexes, every 2 ms, so watching costs the server next to nothing)."""
    deadline = time.monotonic() + timeout
    while await pool.fetchval(BENCH["bench_in_flight"]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the bus did not settle within {timeout}s")
        await asyncio.sleep(0.002)


@asynccontextmanager
async def _producer(url: str, topic_name: str, count: int, rate: float) -> AsyncIterator[asyncio.subprocess.Process]:
    """The producer process, started and warmed up (one message published), waiting for go;
    stopped on the way out whatever happened."""
    producer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "brain.bench.bus_producer", url, topic_name, str(count), str(rate),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert producer.stdout is not None and producer.stdin is not None  # both are pipes
    try:
        if (await producer.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the benchmark producer did not start")
        yield producer
    finally:
        if producer.returncode is None:
            producer.kill()
        await producer.wait()


async def _go(producer: asyncio.subprocess.Process) -> dict:
    """Let the producer publish; returns its report once it has published everything."""
    assert producer.stdout is not None and producer.stdin is not None  # both are pipes
    producer.stdin.write(b"go\n")
    await producer.stdin.drain()
    return json.loads(await producer.stdout.readline())


async def _subscribe_solo(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(Q["subscribe"], ["bench.solo"], "bench_solo")
    finally:
        await conn.close()


async def _producer_alone(url: str, count: int) -> _Rate:
    """The producer publishing with no consumer running."""
    async with _producer(url, "bench.solo", count, 0) as producer:
        report = await _go(producer)
    return _Rate(count / (report["end"] - report["start"]), report["cpu_s"] / count * 1e6)


@dataclass
class _EndToEnd:
    per_s: float  # from the first publish to the last ack
    sink: _Sink
    producer_cpu_us: float  # per message
    consumer_cpu_us: float  # per message: this process, which runs the consumer and nothing else


async def _through_the_bus(url: str, settings: Settings, count: int, rate: float) -> _EndToEnd:
    """Run the consumer here and a producer process."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    bus = Bus(pool, settings=settings, listen_url=url)
    sink = _Sink(count)
    bus.consumer("bench", ["bench.ping"], sink.handle)
    await bus.start()
    try:
        async with _producer(url, "bench.ping", count, rate) as producer:
            assert bus.listener is not None  # bus.start() made it
            await asyncio.wait_for(bus.listener.connected.wait(), 10)
            await _wait_acked(pool)  # the warm-up message
            cpu = time.process_time()
            report = await _go(producer)
            await asyncio.wait_for(sink.all_handled.wait(), 120)
            await _wait_acked(pool)
            return _EndToEnd(count / (time.monotonic() - report["start"]), sink,
                             report["cpu_s"] / count * 1e6, (time.process_time() - cpu) / count * 1e6)
    finally:
        await bus.stop()
        await pool.close()


async def _batched(url: str, settings: Settings, batches: int, size: int) -> float:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        bus = Bus(pool, settings=settings, listen_url=url)
        async with pool.acquire() as conn:
            start = time.perf_counter()
            for b in range(batches):
                out = [Outgoing("bench.solo", BenchPing(n=b * size + i, sent_at=0.0, body=BODY), "bench")
                       for i in range(size)]
                async with conn.transaction():
                    await bus.publish_many(out, conn=conn)
            return batches * size / (time.perf_counter() - start)
    finally:
        await pool.close()


def _per_round(rates: list[float], ceilings: list[float]) -> list[float]:
    """Each round's rate against that round's own ceiling, timed seconds apart."""
    return [r / c for r, c in zip(rates, ceilings)]


async def run_bus_bench(admin_db_url: str, settings: Settings, n: int = 3000, rounds: int = 7,
                        progress: Callable[[str], None] = lambda _m: None) -> dict:
    url = psycopg_conninfo(with_user(admin_db_url, "brain_app"))
    admin = psycopg_conninfo(admin_db_url)
    quick = settings.model_copy(update={"bus_poll_interval_s": 1.0})
    # Commit speed on a shared disk drifts by tens of percent within a minute, so each round
    # times the ceiling and the bus back to back, and every figure against the ceiling is the
    # median over the rounds of that round's own ratio (the rates are medians too; their
    # quotient wanders more, as a fast ceiling of one round meets a slow bus of another).
    in_batches = max(20, n // 100)  # of 100 messages each
    await _subscribe_solo(url)
    # Latency first: the runs below write some 100k rows in a minute, and autovacuum then
    # reads and rewrites those tables, its WAL in the way of every commit, for seconds. That is
    # the bench's own doing, not the steady 500 msg/s this figure is about.
    progress("latency: publish-to-handler at 500 msg/s for 4 s")
    paced = await _through_the_bus(url, quick, 2000, rate=500)
    warm = paced.sink.latencies_ms[200:]  # the first tenth warms caches and connections
    p50, p99 = statistics.median(warm), _percentile(warm, 0.99)
    ceilings, unflushed, e2es, alones, batched_runs = [], [], [], [], []
    for r in range(1, rounds + 1):
        # The bus run right after the ceiling it is compared with: the nearer in time, the
        # less of the disk's drift lands in their ratio.
        progress(f"round {r}/{rounds}: raw ceiling, {n} single-row commits")
        ceilings.append(await _ceiling(admin, n))
        progress(f"round {r}/{rounds}: end to end, {n} messages (publish, wake, claim, handle, ack + one output)")
        e2es.append(await _through_the_bus(url, quick, n, rate=0))
        progress(f"round {r}/{rounds}: the ceiling's commits without waiting for the flush")
        unflushed.append(await _ceiling(admin, n, flushed=False))
        progress(f"round {r}/{rounds}: producer alone, {n} messages (no consumer running)")
        alones.append(await _producer_alone(url, n))
        progress(f"round {r}/{rounds}: batched publish, {in_batches * 100} messages, 100 per transaction")
        batched_runs.append(await _batched(url, quick, batches=in_batches, size=100))
    ceiling_rates = [c.per_s for c in ceilings]
    ratios = _per_round([e.per_s for e in e2es], ceiling_rates)
    median = statistics.median
    return {
        "msgs_per_s": round(median(e.per_s for e in e2es), 1),
        "ceiling_per_s": round(median(ceiling_rates), 1),
        "ratio": round(median(ratios), 3),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "batched_per_s": round(median(batched_runs), 1),
        "batched_vs_ceiling": round(median(_per_round(batched_runs, ceiling_rates)), 2),
        "producer_alone_per_s": round(median(a.per_s for a in alones), 1),
        "producer_alone_ratio": round(median(_per_round([a.per_s for a in alones], ceiling_rates)), 3),
        "ceiling_unflushed_per_s": round(median(u.per_s for u in unflushed), 1),
        "flush_share": round(median(1 - r for r in _per_round(ceiling_rates, [u.per_s for u in unflushed])), 3),
        # Medians over the rounds, in CPU microseconds per commit or message.
        "ceiling_client_cpu_us": round(median(c.cpu_us for c in ceilings), 1),
        "producer_cpu_us": round(median(e.producer_cpu_us for e in e2es), 1),
        "consumer_cpu_us": round(median(e.consumer_cpu_us for e in e2es), 1),
        "producer_alone_cpu_us": round(median(a.cpu_us for a in alones), 1),
        "messages": n,
        "rounds": rounds,
        "ratio_rounds": [round(r, 3) for r in ratios],
        "ceiling_rounds": [round(c, 1) for c in ceiling_rates],
        "ceiling_unflushed_rounds": [round(u.per_s, 1) for u in unflushed],
        "msgs_per_s_rounds": [round(e.per_s, 1) for e in e2es],
        "producer_alone_rounds": [round(a.per_s, 1) for a in alones],
        "batched_rounds": [round(b, 1) for b in batched_runs],
    }
