"""`brain backtest`: replay history through the full agent graph and the durable bus in a
scratch database, then report performance, vetoes and throughput."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from brain.backtest.metrics import buy_and_hold, compute
from brain.bench.scratch import scratch_database
from brain.config import Settings, doctrine_path
from brain.db.urls import admin_url, role_url
from brain.market.history import ValidatedHistory
from brain.market.replay import SETTLE_TOPICS, ReplayFeed, SettleTracker
from brain.runtime import open_brain
from brain.sql import queries_beside
from brain.summary import wait_settled

log = logging.getLogger("brain.backtest")
Q = queries_beside(__file__, "run.sql")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _window(history: ValidatedHistory, start: datetime | None,
            end: datetime | None) -> tuple[dict[str, float], dict[str, float]]:
    opens, closes = {}, {}
    for s, f in history.frames.items():
        part = f[(f.index >= start) if start else slice(None)]
        if end is not None:
            part = part[part.index < end]
        if len(part):
            opens[s], closes[s] = float(part["open"].iloc[0]), float(part["close"].iloc[-1])
    return opens, closes


async def run_backtest(settings: Settings, history: ValidatedHistory, start: datetime | None,
                       split: datetime | None, report_dir: Path,
                       progress: Callable[[int, int], object] | None = None) -> dict[str, Any]:
    admin = admin_url(settings)
    with scratch_database(admin, "brain_backtest") as url:
        cfg = settings.model_copy(update={"database_url": url, "app_database_url": None, "ingress_port": 0,
                                          "context_dir": report_dir, "router_daily_budget_usd": 0.0
                                          if settings.router_routes == ["offline"] else settings.router_daily_budget_usd})
        (report_dir / "philosophy.md").write_text(doctrine_path(settings).read_text())
        brain = await open_brain(cfg, role_url(cfg, "app"), require_watchdog=False, watch_skills=False)
        try:
            tracker = SettleTracker()
            brain.bus.consumer("feed", SETTLE_TOPICS, tracker.handle, batch=50)
            await brain.start()
            feed = ReplayFeed(brain.pool, brain.bus, brain.ctx.broker, history, tracker, start=start,
                              align_threshold=cfg.strategy_align_threshold)
            ticker = asyncio.ensure_future(_tick(feed, progress)) if progress else None
            began = time.monotonic()
            feed_task = brain.spawn(feed.run(), "replay feed", may_finish=True)
            await asyncio.wait({feed_task, asyncio.ensure_future(brain.stopping.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
            if ticker:
                ticker.cancel()
            if brain.failure is not None or not feed_task.done():
                raise RuntimeError(f"backtest stopped: {brain.failure or 'interrupted'}")
            if not await wait_settled(brain.pool):
                log.warning("backtest: some agents still had work after 120s; the figures miss their cycles")
            elapsed = time.monotonic() - began
            pool = brain.pool
            curve = [(r["ts"], r["equity"]) for r in await pool.fetch(Q["equity_curve"])]
            closed = [(r["at"], r["pnl"]) for r in await pool.fetch(Q["closed_trades"])]
            latencies = [float(r[0]) for r in await pool.fetch(Q["decision_latencies"])]
            outcomes = {r[0]: r[1] for r in await pool.fetch(Q["cycles_by_outcome"])}
            vetoes = {r[0]: r[1] for r in await pool.fetch(Q["vetoes_by_signer"])}
            hops = {r[0]: {"p50": round(r[1], 2), "p99": round(r[2], 2)} for r in await pool.fetch(Q["hop_percentiles"])}
        finally:
            await brain.close()
    cash = settings.paper_starting_cash
    overall = compute(cash, curve, [p for _, p in closed], buy_and_hold(*_window(history, start, None)))
    result = {"bars": feed.stats.bars, "cycles": feed.stats.states, "seconds": round(elapsed, 2),
              "bars_per_s": round(feed.stats.bars / elapsed, 1) if elapsed else 0.0,
              "bar_to_order_ms": {"p50": round(_percentile(latencies, 0.5), 2),
                                  "p99": round(_percentile(latencies, 0.99), 2), "orders": len(latencies)},
              "overall": asdict(overall), "outcomes": outcomes, "vetoes_by_role": vetoes,
              "bus_hop_ms": hops}
    if split is not None:
        before = [(t, e) for t, e in curve if t < split]
        after = [(t, e) for t, e in curve if t >= split]
        split_equity = before[-1][1] if before else cash
        result["in_sample"] = asdict(compute(cash, before, [p for t, p in closed if t < split],
                                             buy_and_hold(*_window(history, start, split))))
        result["held_out"] = asdict(compute(split_equity, after, [p for t, p in closed if t >= split],
                                            buy_and_hold(*_window(history, split, None))))
    (report_dir / "report.md").write_text(render_report(result, history, start, split))
    (report_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result


async def _tick(feed: ReplayFeed, progress: Callable[[int, int], object]) -> None:
    while True:
        await asyncio.sleep(1.0)
        progress(feed.stats.bars + feed.stats.skipped_existing, feed.total)


def _metrics_table(title: str, m: dict) -> str:
    return (f"### {title}\n\n| figure | value |\n|---|---|\n"
            f"| return | {m['return_pct']:+.2f}% |\n| buy and hold (equal weight) | {m['buy_and_hold_pct']:+.2f}% |\n"
            f"| Sharpe (daily, annualised) | {m['sharpe']:.2f} |\n| max drawdown | {m['max_drawdown_pct']:.2f}% |\n"
            f"| closed trades | {m['trades']} |\n| win rate | {m['win_rate_pct']:.1f}% |\n"
            f"| equity | {m['start_equity']:,.2f} -> {m['end_equity']:,.2f} |\n")


def render_report(r: dict[str, Any], history: ValidatedHistory, start: datetime | None, split: datetime | None) -> str:
    when = datetime.now(timezone.utc)
    parts = [f"# Backtest {when:%Y-%m-%d %H:%M} UTC", "",
             f"Symbols {', '.join(history.frames)}; from {start:%Y-%m-%d}" if start else
             f"Symbols {', '.join(history.frames)}; whole history",
             f"; {r['bars']} bars, {r['cycles']} cycles in {r['seconds']}s ({r['bars_per_s']} bars/s).", "",
             _metrics_table("Whole run", r["overall"])]
    if split is not None:
        parts += [f"Walk-forward split at {split:%Y-%m-%d}: the held-out period was not used to choose anything.", "",
                  _metrics_table("In sample", r["in_sample"]), _metrics_table("Held out", r["held_out"])]
    parts += ["### Outcomes", "", ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items())), "",
              "### Vetoes by role", "", ", ".join(f"{k} {v}" for k, v in r["vetoes_by_role"].items()) or "none", "",
              f"Bar-to-order latency (model time excluded): p50 {r['bar_to_order_ms']['p50']} ms, "
              f"p99 {r['bar_to_order_ms']['p99']} ms over {r['bar_to_order_ms']['orders']} orders.", ""]
    return "\n".join(parts)
