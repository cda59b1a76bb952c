"""`brain bench cycle`: the backtest of the bundled data (4 symbols x 13 years) through the full
agent graph and the durable bus, with the offline route: throughput and bar-to-order latency."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brain import aio
from brain.backtest.run import run_backtest
from brain.config import Settings
from brain.market.history import load_history


def run_cycle_bench(settings: Settings, progress: Callable[[str], object]) -> dict[str, Any]:
    cfg = settings.model_copy(update={"router_routes": ["offline"]})
    history = load_history()
    progress(f"backtest of {', '.join(history.frames)}: {sum(len(f) for f in history.frames.values())} bars")
    with tempfile.TemporaryDirectory(prefix="brain-bench-") as tmp:
        report = Path(tmp)
        result = aio.run(run_backtest(cfg, history, None, None, report))
    return {"bars": result["bars"], "seconds": result["seconds"], "bars_per_s": result["bars_per_s"],
            "bar_to_order_p50_ms": result["bar_to_order_ms"]["p50"],
            "bar_to_order_p99_ms": result["bar_to_order_ms"]["p99"], "orders": result["bar_to_order_ms"]["orders"],
            "under_5_minutes": result["seconds"] < 300, "bus_hop_ms": result["bus_hop_ms"]}
