"""`brain run`: the brain process alone (the watchdog runs as its own process)."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from brain.config import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-migrate", action="store_true", help="do not run migrations on start")


def run(args: argparse.Namespace) -> int:
    from brain import aio
    from brain.logs import setup_logging
    from brain.config import settings

    cfg = settings()
    setup_logging(cfg.log_level)
    return aio.run(_main(cfg, migrate=not args.no_migrate))


async def _main(cfg: Settings, migrate: bool) -> int:
    import asyncio
    import signal

    from brain.db import migrate as migrations
    from brain.db.urls import admin_url, role_url
    from brain.runtime import open_brain

    if migrate and not cfg.app_database_url:
        await asyncio.to_thread(migrations.upgrade, admin_url(cfg))
    brain = await open_brain(cfg, role_url(cfg, "app"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, brain.stopping.set)
    await brain.start()
    print("brain running; stop with Ctrl-C", flush=True)
    await brain.stopping.wait()
    await brain.close()
    return 1 if brain.failure else 0
