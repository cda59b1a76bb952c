"""Running the service's event loop.

uvloop roughly halves the per-round-trip CPU cost of asyncpg on small machines, and the
bus is round-trip bound; plain asyncio is the fallback where uvloop is unavailable.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        return asyncio.run(main)
    return uvloop.run(main)
