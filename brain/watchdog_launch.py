"""Starting the watchdog as its own process (brain up) and waiting for its first check."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import asyncpg

from brain.config import Settings
from brain.errors import BrainError
from brain.sql import queries_beside

Q = queries_beside(__file__, "watchdog_launch.sql")


def start_watchdog(settings: Settings, admin_url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(DATABASE_URL=admin_url, BRAIN_HOME=str(settings.home))
    settings.home.mkdir(parents=True, exist_ok=True)  # with DATABASE_URL, nothing else has made it
    log = open(settings.home / "watchdog.log", "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "watchdog_proc"], env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


async def wait_for_watchdog(pool: asyncpg.Pool, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if proc.poll() is not None:
            raise BrainError(f"the watchdog exited with code {proc.returncode} (see watchdog.log under BRAIN_HOME)")
        age = await pool.fetchval(Q["watchdog_age"])
        if age is not None and age < 5:
            return
        await asyncio.sleep(0.2)
    raise BrainError(f"the watchdog did not check in within {timeout_s:.0f}s")


def stop_watchdog(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
