"""brain.aio.Tasks, the one way background tasks are kept: named, never lost unseen, a
critical task's end told to its owner, stopped together."""
from __future__ import annotations

import asyncio
import logging

from brain.aio import Tasks


async def test_a_critical_task_that_fails_or_returns_is_told_to_its_owner_by_name():
    ended: list[tuple[str, str | None]] = []
    tasks = Tasks("brain", lambda name, exc: ended.append((name, None if exc is None else str(exc))))

    async def fails() -> None:
        raise RuntimeError("boom")

    async def returns() -> None:
        return None

    first = tasks.spawn(fails(), "heartbeat")
    tasks.spawn(returns(), "replay")
    await tasks.settled()
    assert first.get_name() == "brain: heartbeat"
    assert sorted(ended) == [("heartbeat", "boom"), ("replay", None)]
    assert len(tasks) == 0, "an ended task is not kept"


async def test_a_task_that_is_not_critical_is_logged_when_it_fails_and_never_told(caplog):
    told: list[str] = []
    tasks = Tasks("IB", lambda name, exc: told.append(name))

    async def fails() -> None:
        raise ValueError("no such contract")

    with caplog.at_level(logging.ERROR, logger="brain"):
        tasks.spawn(fails(), "event handling", critical=False)
        await tasks.settled()
    assert told == []
    assert "IB: event handling failed: ValueError('no such contract')" in caplog.text


async def test_settled_waits_for_tasks_spawned_while_it_waits():
    tasks = Tasks("feed")
    done: list[int] = []

    async def second() -> None:
        await asyncio.sleep(0.02)
        done.append(2)

    async def first() -> None:
        await asyncio.sleep(0.01)
        tasks.spawn(second(), "second", critical=False)
        done.append(1)

    tasks.spawn(first(), "first", critical=False)
    await tasks.settled()
    assert done == [1, 2]


async def test_stop_cancels_every_task_waits_for_each_and_tells_no_one():
    told: list[str] = []
    tasks = Tasks("bus", lambda name, exc: told.append(name))
    cleaned: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # its own cleanup runs before stop returns
            cleaned.append(name)

    running = [tasks.spawn(forever(n), n) for n in ("listener", "consumer a", "consumer b")]
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.stop(), 1)
    assert all(t.cancelled() for t in running)
    assert sorted(cleaned) == ["consumer a", "consumer b", "listener"]
    assert told == [], "a stop is not a death"


async def test_a_task_is_referenced_until_it_ends():
    tasks = Tasks("brain")
    gate = asyncio.Event()

    async def waits() -> None:
        await gate.wait()

    task = tasks.spawn(waits(), "waits", critical=False)
    assert task in tasks.running()
    gate.set()
    await tasks.settled()
    assert task not in tasks.running()
