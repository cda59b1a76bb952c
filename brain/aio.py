"""Running the service's event loop, and the one way background tasks are kept.

uvloop roughly halves the per-round-trip CPU cost of asyncpg on small machines, and the
bus is round-trip bound; plain asyncio is the fallback where uvloop is unavailable.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("brain")
# What a group's owner is told when one of its critical tasks ends on its own: the task's
# name and its exception (None when it returned).
OnEnd = Callable[[str, BaseException | None], None]


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        return asyncio.run(main)
    return uvloop.run(main)


class Tasks:
    """The named background tasks of one owner (the brain, the bus, an IB adapter).

    Every task is referenced until it ends, so none is collected half-way, and none ends
    unseen: one that raises is logged with its name. A critical task that ends on its own
    (it raised, or returned when it should run for good) is reported to the owner's
    `on_end`, which stops what must stop; the others are only logged. `stop()` cancels
    what is left and waits for it; an owner with several groups stops them in its own order.
    """

    def __init__(self, owner: str, on_end: OnEnd | None = None) -> None:
        self.owner = owner
        self._on_end = on_end
        self._tasks: dict[asyncio.Task[Any], bool] = {}  # insertion order is the start order
        self._stopping = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, *, critical: bool = True) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.owner}: {name}")
        self._tasks[task] = critical
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        critical = self._tasks.pop(task, False)
        if task.cancelled() or self._stopping:
            return
        exc = task.exception()
        name = task.get_name()
        if exc is not None and not (critical and self._on_end is not None):
            log.error("%s failed: %r", name, exc)
        if critical and self._on_end is not None:
            self._on_end(name.removeprefix(f"{self.owner}: "), exc)

    def __len__(self) -> int:
        return len(self._tasks)

    def running(self) -> set[asyncio.Task[Any]]:
        return set(self._tasks)

    async def settled(self) -> None:
        """Wait until every task, including any spawned meanwhile, has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel every task (in start order) and wait for all of them to end."""
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
