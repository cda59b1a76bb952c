"""A real `brain run` under a real watchdog: a hung or killed brain is halted within the
threshold plus 2 s, and restarting the brain does not lift the halt."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.support.cycle import context_dir
from tests.support.paths import REPO
from tests.support.waiting import wait_for
from tests.support.watchdog import active_halts, seed_account, start_watchdog, stop

STALE = 1.5


def start_brain(db, home):
    env = db.env(home)
    env.update(BRAIN_CONTEXT_DIR=str(context_dir(home)), BRAIN_SKILLS_DIR=str(REPO / "skills"),
               BRAIN_HEARTBEAT_INTERVAL_S="0.2", BRAIN_HEARTBEAT_STALE_S=str(STALE), BRAIN_INGRESS_PORT="0")
    log = open(home / "brain.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "brain.cli.brain_main", "run"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    wait_for(lambda: db.sql("SELECT 1 FROM app_state WHERE key = 'heartbeat:brain' "
                            "AND updated_at > clock_timestamp() - interval '1 second'"), timeout=30)
    return proc


def test_hung_then_killed_brain_is_halted_and_restart_does_not_lift_it(db, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    seed_account(db)
    brain = start_brain(db, home)
    watchdog = start_watchdog(db, home, heartbeat_stale_s=STALE, broker_stale_s=STALE)
    try:
        time.sleep(1.0)
        assert active_halts(db) == [], (home / "brain.log").read_text()[-2000:]
        os.kill(brain.pid, signal.SIGSTOP)
        hung_at = time.monotonic()
        wait_for(lambda: [h for h in active_halts(db) if h[2] == "brain_heartbeat"], timeout=STALE + 4)
        assert time.monotonic() - hung_at <= STALE + 2 + 0.5
        os.kill(brain.pid, signal.SIGKILL)
        brain.wait()
        brain = start_brain(db, home)
        time.sleep(1.0)
        levels = {h[2]: h[1] for h in active_halts(db)}
        assert levels.get("brain_heartbeat") == 3, "a restarted brain does not lift the halt"
        assert db.sql("SELECT count(*) FROM halts WHERE invariant = 'brain_heartbeat'") == [(1,)]
    finally:
        for p in (brain, watchdog):
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        stop(watchdog)
        stop(brain)
