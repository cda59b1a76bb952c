"""The benchmark's producer, run as its own process (as a feed or ingress client would be).

usage: python -m brain.bench.bus_producer URL TOPIC COUNT RATE
Prints "ready", waits for a line on stdin, publishes COUNT messages on TOPIC one per
commit (RATE per second, or as fast as it can when RATE is 0), then prints one JSON line
with its start and end on the system-wide monotonic clock, and the CPU seconds it spent
publishing.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time

import asyncpg

from brain import aio
from brain.bench.bus import BODY, BenchPing
from brain.bus import Bus
from brain.config import load_settings


async def produce(url: str, topic: str, count: int, rate: float) -> dict:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    bus = Bus(pool, settings=load_settings(), listen_url=url)
    try:
        await bus.publish(topic, BenchPing(n=-1, sent_at=time.monotonic(), body=BODY), from_agent="warmup")
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start, cpu = time.monotonic(), time.process_time()
        for i in range(count):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await bus.publish(topic, BenchPing(n=i, sent_at=time.monotonic(), body=BODY),
                              from_agent="bench")
        return {"start": start, "end": time.monotonic(), "cpu_s": time.process_time() - cpu,
                "published": count}
    finally:
        await bus.stop()
        await pool.close()


if __name__ == "__main__":
    url, topic, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(aio.run(produce(url, topic, count, rate))), flush=True)
