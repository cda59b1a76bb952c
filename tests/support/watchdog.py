"""A real watchdog process against a test database, and the rows it reads and writes there."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def start_watchdog(db, home: Path, **settings) -> subprocess.Popen:
    env = db.env(home)
    ctx = home / "context"
    ctx.mkdir(parents=True, exist_ok=True)
    env.update(BRAIN_CONTEXT_DIR=str(ctx), BRAIN_WATCHDOG_INTERVAL_S="0.2")
    env.update({f"BRAIN_{k.upper()}": str(v) for k, v in settings.items()})
    log = open(home / "watchdog.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "watchdog_proc"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def beat(db, name: str) -> None:
    db.sql("""INSERT INTO app_state (key, value, updated_at) VALUES (%s, '{}', clock_timestamp())
              ON CONFLICT (key) DO UPDATE SET updated_at = clock_timestamp()""", (f"heartbeat:{name}",), role="app")


def seed_account(db, equity: float = 100_000, hwm: float = 100_000) -> None:
    db.sql("""INSERT INTO accounts (account, cash, equity, high_water_mark, day_start_equity, day)
              VALUES ('paper', %s, %s, %s, %s, current_date)""", (equity, equity, hwm, equity), role="app")


def active_halts(db) -> list[tuple]:
    return db.sql("SELECT id, level, invariant FROM halts WHERE resumed_at IS NULL ORDER BY id")
