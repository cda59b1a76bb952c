"""Polling until a condition holds, failing loudly when it does not in time."""
from __future__ import annotations

import asyncio
import time


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


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll a plain predicate until it is truthy and return its value; fail on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout}s")
