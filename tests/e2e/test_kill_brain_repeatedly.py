"""SIGKILL the brain in the middle of cycles, 20 times in a row under a running replay: no
order is lost or placed twice, every delivery is eventually done, the watchdog stays up."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.support.cycle import context_dir
from tests.support.paths import REPO
from tests.support.watchdog import start_watchdog, stop

UP = [sys.executable, "-m", "brain.cli.brain_main", "up", "--no-watchdog", "--start", "2012-10-01", "--end",
      "2013-01-01", "--symbols", "AAPL,MSFT"]


@pytest.mark.slow
def test_twenty_kills_lose_and_duplicate_nothing(db, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = db.env(home)
    env.update(BRAIN_CONTEXT_DIR=str(context_dir(tmp_path)), BRAIN_SKILLS_DIR=str(REPO / "skills"),
               BRAIN_INGRESS_PORT="0", BRAIN_BUS_LEASE_S="2", BRAIN_HEARTBEAT_STALE_S="120")
    # A watchdog that keeps watching throughout; brain staleness is set long so that the kills
    # themselves do not halt trading (that path has its own test).
    watchdog = start_watchdog(db, home, heartbeat_stale_s=120, broker_stale_s=120)
    rng = random.Random(7)
    try:
        for _ in range(20):
            brain = subprocess.Popen(UP, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(2.0, 3.5))
            os.kill(brain.pid, signal.SIGKILL)
            brain.wait()
            assert watchdog.poll() is None, "the watchdog stays up"
        done = subprocess.run(UP + ["--until-done"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert watchdog.poll() is None
    finally:
        stop(watchdog)
    assert db.sql("SELECT count(*) FROM agent_deliveries WHERE state <> 'done'") == [(0,)]
    assert db.sql("SELECT coalesce(sum(untaken), 0) FROM bus_backlog") == [(0,)]
    # One order at most per proposal, and each with its three approvals.
    assert db.sql("""SELECT correlation_id FROM orders WHERE intent = 'open' AND parent_client_order_id IS NULL
                      GROUP BY 1 HAVING count(*) > 1""") == []
    assert db.sql("""SELECT o.client_order_id FROM orders o WHERE o.intent = 'open' AND o.parent_client_order_id IS NULL
                       AND (SELECT count(DISTINCT s.payload->>'signer') FROM agent_messages s
                             WHERE s.topic = 'trade.signature' AND s.correlation_id = o.correlation_id
                               AND s.payload->>'verdict' = 'approve') <> 3""") == []
    # Every proposal that collected three approvals has its order: none was lost.
    assert db.sql("""SELECT p.correlation_id FROM agent_messages p
                      WHERE p.topic = 'trade.proposal'
                        AND (SELECT count(DISTINCT s.payload->>'signer') FROM agent_messages s
                              WHERE s.topic = 'trade.signature' AND s.correlation_id = p.correlation_id
                                AND s.payload->>'verdict' = 'approve') = 3
                        AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.correlation_id = p.correlation_id)
                        AND NOT EXISTS (SELECT 1 FROM agent_messages e WHERE e.topic = 'cycle.outcome'
                                         AND e.correlation_id = p.correlation_id
                                         AND e.payload->>'outcome' IN ('halted', 'expired'))""") == []
    # Every stored bar with signals started exactly one cycle, and each cycle's journal entry exists once.
    assert db.sql("SELECT count(*) FROM bars") == db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'market.bar'")
    assert db.sql("SELECT correlation_id FROM agent_journal WHERE kind = 'cycle' GROUP BY 1 HAVING count(*) > 1") == []
