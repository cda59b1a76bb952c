"""A real consumer process for crash tests: handles test.ping slowly, answers test.pong.

usage: python -m tests.support.bus_worker URL CONSUMER LEASE_S WORK_S
"""
from __future__ import annotations

import asyncio
import logging
import sys

import asyncpg

from brain.bus import Bus
from brain.config import load_settings
from tests.support.bus import Pong


async def main(url: str, consumer: str, lease_s: float, work_s: float) -> None:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    settings = load_settings(database_url=url, bus_poll_interval_s=0.2, bus_backoff_base_s=0.05)

    async def handler(d):
        print(f"working {d.payload.n} attempt {d.attempts}", flush=True)
        await asyncio.sleep(work_s)
        return [d.reply("test.pong", Pong(n=d.payload.n, by=consumer), from_agent=consumer)]

    bus = Bus(pool, settings=settings, listen_url=url)
    bus.consumer(consumer, ["test.ping"], handler, batch=1, lease_s=lease_s)
    await bus.start()
    print("ready", flush=True)
    await bus.wait_stopped()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    url, consumer, lease_s, work_s = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    asyncio.run(main(url, consumer, lease_s, work_s))
