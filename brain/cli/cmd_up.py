"""`brain up`: the whole product on one machine. Embedded (or configured) PostgreSQL,
migrations, the watchdog as its own process, the brain, and the replay of real bars in paper
mode with the offline route unless models are configured."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from brain.cli.common import end_progress, progress_line, utc_date_arg

if TYPE_CHECKING:
    from brain.config import Settings
    from brain.market.replay import ReplayFeed


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("speed must be >= 0 (0 = as fast as cycles settle)")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--until-done", action="store_true",
                        help="exit 0 once the replay is exhausted and every cycle has settled, after a summary")
    parser.add_argument("--speed", type=_speed, default=0.0,
                        help="dates per second, each with every symbol's bar (default 0: as fast as the cycles settle)")
    parser.add_argument("--symbols", default=None,
                        help="comma-separated (default: every symbol of --data, or the bundled AAPL,MSFT,IBM,GOOG)")
    parser.add_argument("--start", type=utc_date_arg, default=utc_date_arg("2012-03-01"), help="first bar date (default 2012-03-01)")
    parser.add_argument("--end", type=utc_date_arg, default=None, help="stop before this date")
    parser.add_argument("--data", default=None, help="a CSV or Parquet of OHLCV instead of the bundled bars")
    parser.add_argument("--no-watchdog", action="store_true",
                        help="do not start a watchdog: one already runs as its own service (the brain still "
                             "refuses new entries until it has checked in)")


def run(args: argparse.Namespace) -> int:
    from brain import aio
    from brain.logs import setup_logging
    from brain.config import settings

    cfg = settings()
    setup_logging("WARNING" if cfg.log_level == "INFO" else cfg.log_level)
    return aio.run(_up(cfg, args))


async def _up(cfg: Settings, args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from brain.db import migrate
    from brain.db.urls import admin_url, role_url
    from brain.errors import BrainError
    from brain.market.history import cli_history
    from brain.market.replay import SETTLE_TOPICS, ReplayFeed, SettleTracker
    from brain.runtime import open_brain
    from brain.summary import print_summary, summarize, wait_settled
    from brain.watchdog_launch import start_watchdog, stop_watchdog, wait_for_watchdog

    if cfg.broker == "ib" and args.until_done:
        raise BrainError("--until-done finishes a replay; with BRAIN_BROKER=ib bars are live and never run out")
    history = cli_history(args.symbols, args.data, args.end) if cfg.broker == "paper" else None
    admin = await asyncio.to_thread(admin_url, cfg)
    print(f"database   {'embedded PostgreSQL under ' + str(cfg.home) if not cfg.database_url else 'DATABASE_URL'}",
          flush=True)
    await asyncio.to_thread(migrate.upgrade, admin)
    watchdog = None if args.no_watchdog else start_watchdog(cfg, admin)
    brain = None
    try:
        brain = await open_brain(cfg, role_url(cfg, "app"))
        tracker = SettleTracker()
        brain.bus.consumer("feed", SETTLE_TOPICS, tracker.handle, batch=50)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, brain.stopping.set)
        await brain.start()
        if watchdog is not None:
            await wait_for_watchdog(brain.pool, watchdog, timeout_s=30)
        routes = ", ".join(cfg.router_routes)
        print(f"journal    {cfg.context_dir / 'journal'}/<date>/*.md   (brainctl journal)")
        print(f"costs      brainctl costs   (routes: {routes})")
        print("status     brainctl status   halts: brainctl halts")
        if cfg.ingress_port:
            print(f"dashboard  http://{cfg.ingress_host}:{cfg.ingress_port}/   (ingress /v1/*, /metrics, /docs)")
        if cfg.broker == "ib":
            print(f"IB         live {cfg.ib_bar_seconds}s bars of {', '.join(cfg.ib_symbols)} from the gateway at "
                  f"{cfg.ib_host}:{cfg.ib_port} (client id {cfg.ib_client_id}; watchdog {cfg.ib_watchdog_client_id})",
                  flush=True)
            await brain.stopping.wait()
            return 1 if brain.failure else 0
        assert history is not None  # loaded above for the paper broker, the one that replays
        feed = ReplayFeed(brain.pool, brain.bus, brain.ctx.broker, history, tracker, speed=args.speed or None, start=args.start,
                          align_threshold=cfg.strategy_align_threshold)
        print(f"replay     {feed.total} bars of {', '.join(history.frames)} from {args.start:%Y-%m-%d} "
              f"({len(history.rejected)} rejected), speed {'as fast as cycles settle' if not args.speed else f'{args.speed:g} dates/s'}",
              flush=True)
        feed_task = brain.spawn(feed.run(), "replay feed", may_finish=True)
        progress = asyncio.ensure_future(_progress(feed))
        if args.until_done:
            done, _ = await asyncio.wait({feed_task, asyncio.ensure_future(brain.stopping.wait())},
                                         return_when=asyncio.FIRST_COMPLETED)
            progress.cancel()
            if brain.failure is not None or not feed_task.done():
                raise BrainError(f"stopped before the replay finished: {brain.failure or 'interrupted'}")
            end_progress()
            print(f"replay     done: {feed.stats.bars} new bars, {feed.stats.states} cycles started, "
                  f"{feed.stats.skipped_existing} already stored", flush=True)
            if not await wait_settled(brain.pool):
                raise BrainError("cycles did not settle within 120s after the replay")
            print_summary(await summarize(brain.pool, brain.ctx.broker.account, cfg.paper_starting_cash))
            return 0
        await asyncio.wait({feed_task, asyncio.ensure_future(brain.stopping.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        progress.cancel()
        if feed_task.done() and brain.failure is None:
            # The replay ran out of bars; the service stays up (dashboard, ingress bars,
            # watchdog) until the operator stops it.
            end_progress()
            print(f"replay     done: {feed.stats.bars} new bars, {feed.stats.states} cycles started, "
                  f"{feed.stats.skipped_existing} already stored; still running, Ctrl-C to stop", flush=True)
            await brain.stopping.wait()
        return 1 if brain.failure else 0
    finally:
        if watchdog is not None:
            stop_watchdog(watchdog)
        if brain is not None:
            await brain.close()


async def _progress(feed: ReplayFeed) -> None:
    import asyncio

    while True:
        await asyncio.sleep(2)
        done = feed.stats.bars + feed.stats.skipped_existing
        progress_line(f"replay     {done}/{feed.total} bars ({done / max(1, feed.total):.0%})")
