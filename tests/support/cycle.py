"""Running the real agents in-process against a test database, on real bars."""
from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path

from brain.topics import correlation_for
from brain.bus import Outgoing
from brain.market.history import ValidatedHistory, bar_at, bundled_frame, load_history
from brain.market.replay import SETTLE_TOPICS, FeedStats, ReplayFeed, SettleTracker
from brain.runtime import open_brain
from brain.signals.indicators import compute
from brain.signals.state import build_state
from brain.summary import wait_settled
from tests.support.paths import REPO


def context_dir(tmp: Path) -> Path:
    """tmp/context with the doctrine (context/philosophy.md) in it, as the brain reads it."""
    ctx = tmp / "context"
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "context" / "philosophy.md", ctx / "philosophy.md")
    return ctx


async def start_brain(db, tmp: Path, **overrides):
    settings = db.settings(tmp / "home", context_dir=context_dir(tmp), bus_poll_interval_s=0.5,
                           **{"ingress_port": 0, "skills_dir": REPO / "skills", **overrides})
    (tmp / "home").mkdir(exist_ok=True)
    brain = await open_brain(settings, db.url("app"), require_watchdog=False, watch_skills=False)
    await brain.start()
    return brain


def states(symbol: str, start: str, end: str):
    frame = bundled_frame(symbol)
    ind = compute(frame).to_dict("records")
    out = []
    for i, ts in enumerate(frame.index):
        if start <= ts.strftime("%Y-%m-%d") <= end:
            bar = bar_at(symbol, frame, i)
            out.append((bar, build_state(bar, ind[i])))
    return out


async def publish_bar(brain, bar, state) -> str:
    corr = correlation_for(bar.symbol, bar.ts)
    async with brain.pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO bars (symbol, ts, open, high, low, close, volume) VALUES ($1,$2,$3,$4,$5,$6,$7)",
                           bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
        await brain.bus.publish_many([Outgoing("market.state", state, "signals", corr)], conn=conn)
    return corr


async def outcome_of(db, corr: str, timeout: float = 15.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        rows = db.sql("SELECT outcome FROM agent_journal WHERE correlation_id = %s", (corr,))
        if rows:
            return rows[0][0]
        placed = db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'order.placed' AND correlation_id = %s", (corr,))
        if placed[0][0]:
            return "placed"
        await asyncio.sleep(0.05)
    raise AssertionError(f"cycle {corr} did not end within {timeout}s")


async def replay(db, tmp: Path, symbols: list[str], start: datetime,
                 end: datetime | None = None) -> tuple[ReplayFeed, FeedStats, ValidatedHistory]:
    """Replay bundled bars of these symbols through the real agents and bus, as `brain up`
    does, until every cycle has settled; the feed, its figures and the history it replayed."""
    settings = db.settings(tmp / "home", context_dir=context_dir(tmp), skills_dir=REPO / "skills",
                           bus_poll_interval_s=0.5, ingress_port=0)
    (tmp / "home").mkdir()
    brain = await open_brain(settings, db.url("app"), require_watchdog=False, watch_skills=False)
    try:
        tracker = SettleTracker()
        brain.bus.consumer("feed", SETTLE_TOPICS, tracker.handle, batch=50)
        await brain.start()
        history = load_history(symbols, end=end) if end else load_history(symbols)
        feed = ReplayFeed(brain.pool, brain.bus, brain.ctx.broker, history, tracker, start=start)
        stats = await feed.run()
        assert await wait_settled(brain.pool, timeout_s=60)
    finally:
        await brain.close()
    return feed, stats, history
