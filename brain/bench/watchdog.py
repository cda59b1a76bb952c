"""`brain bench watchdog`: time from an injected drawdown breach to the halt being in force
(an opening order is refused) and to every position being flat (L4), over many injections,
against a real watchdog process."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg

from brain.config import Settings
from brain.db.urls import psycopg_conninfo, with_user
from brain.sql import queries_beside

Q = queries_beside(__file__, "watchdog.sql")


def _connect(url: str, role: str | None = None) -> psycopg.Connection:
    return psycopg.connect(psycopg_conninfo(with_user(url, role) if role else url), autocommit=True)


def _seed(admin: psycopg.Connection) -> None:
    admin.execute(Q["clear_book"])
    admin.execute(Q["seed_account"])
    for sym, qty, price in (("AAPL", 10, 450.0), ("MSFT", 300, 28.0), ("IBM", -20, 200.0)):
        admin.execute(Q["seed_bar"], (sym, price, price, price, price))
        admin.execute(Q["seed_position"], (sym, qty, price))
        admin.execute(Q["seed_stop_order"], (f"{sym}-stop-{time.time_ns()}", sym))


def run_watchdog_bench(url: str, settings: Settings, injections: int = 20,
                       progress: Callable[[str], object] = lambda m: None) -> dict[str, Any]:
    env = dict(os.environ, DATABASE_URL=url, BRAIN_HOME=str(settings.home),
               BRAIN_CONTEXT_DIR=str(settings.home / "bench-context"),
               BRAIN_WATCHDOG_INTERVAL_S=str(settings.watchdog_interval_s), BRAIN_HEARTBEAT_STALE_S="3600",
               BRAIN_BROKER_STALE_S="3600")
    (settings.home / "bench-context").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "watchdog_proc"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    admin, app = _connect(url), _connect(url, "brain_app")
    to_refused, to_flat = [], []
    try:
        for i in range(injections):
            _seed(admin)
            time.sleep(0.2)
            progress(f"injection {i + 1}/{injections}: drawdown to 80% of the high-water mark")
            start = time.monotonic()
            admin.execute(Q["breach_drawdown"])
            refused = flat = None
            deadline = start + 30
            while (refused is None or flat is None) and time.monotonic() < deadline:
                if refused is None:
                    try:
                        with app.transaction():
                            app.execute(Q["try_order"], (f"probe-{time.time_ns()}",))
                            raise _Rollback
                    except _Rollback:
                        pass
                    except psycopg.errors.RaiseException:
                        refused = time.monotonic() - start
                if flat is None:
                    held = admin.execute(Q["position_count"]).fetchone()
                    assert held is not None  # an aggregate: always one row
                    if held[0] == 0:
                        flat = time.monotonic() - start
                time.sleep(0.002)
            if refused is None or flat is None:
                raise RuntimeError("the watchdog did not halt within 30s")
            to_refused.append(refused * 1000)
            to_flat.append(flat * 1000)
            admin.execute(Q["resume_halts"])
    finally:
        proc.terminate()
        proc.wait(10)
        admin.close()
        app.close()
    return {"injections": injections, "watchdog_interval_s": settings.watchdog_interval_s,
            "to_orders_refused_ms": {"p50": round(statistics.median(to_refused), 1), "max": round(max(to_refused), 1)},
            "to_flat_ms": {"p50": round(statistics.median(to_flat), 1), "max": round(max(to_flat), 1)}}


class _Rollback(Exception):
    """Undo a probe order that went through (no halt yet)."""
