"""Payload models and helpers shared by the bus tests."""
from __future__ import annotations

import asyncio
import time

from brain.messages import Payload, topic


@topic("test.ping")
class Ping(Payload):
    n: int
    sent_at: float = 0.0


@topic("test.pong")
class Pong(Payload):
    n: int
    by: str


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll an async predicate until it is truthy; fail loudly on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)
