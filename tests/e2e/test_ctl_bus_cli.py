"""`brainctl bus` as an operator runs it: a real process against a real database."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.support.paths import REPO


def brainctl(db, home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", *args], cwd=REPO, env=db.env(home),
                          capture_output=True, text=True, timeout=60)


def seed(db) -> None:
    db.sql("INSERT INTO bus_consumers (consumer) VALUES ('agent-a')")
    db.sql("INSERT INTO bus_subscriptions (topic, consumer) VALUES ('test.ping', 'agent-a')")
    for n in range(3):
        db.sql("INSERT INTO agent_messages (topic, from_agent, correlation_id, payload) VALUES "
               "('test.ping', 'feed', 'cycle-7', %s::jsonb)", (json.dumps({"n": n}),), role="app")
    db.sql("INSERT INTO agent_messages (topic, from_agent, payload) VALUES ('test.pong', 'x', '{}')", role="app")


def test_replay_a_window_filters_by_topic_and_cycle(db, brain_home):
    seed(db)
    out = brainctl(db, brain_home, "bus", "replay", "--from", "10m", "--topic", "test.ping",
                   "--correlation", "cycle-7", "--json")
    assert out.returncode == 0, out.stderr
    assert [m["payload"]["n"] for m in json.loads(out.stdout)] == [0, 1, 2]


def test_backlog_counts_messages_not_yet_taken_in(db, brain_home):
    seed(db)
    out = brainctl(db, brain_home, "bus", "backlog", "--json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert row["consumer"] == "agent-a" and row["untaken"] == 3 and row["pending"] == 0


def test_dead_letters_listed_and_redriven(db, brain_home):
    seed(db)
    db.sql("""INSERT INTO agent_deliveries (message_id, consumer, state, attempts, last_error)
              SELECT id, 'agent-a', 'dead', 5, 'ValueError: bad bar' FROM agent_messages WHERE topic = 'test.ping'""")
    listed = brainctl(db, brain_home, "bus", "dead", "--json")
    assert [d["last_error"] for d in json.loads(listed.stdout)] == ["ValueError: bad bar"] * 3
    redriven = brainctl(db, brain_home, "bus", "redrive", "--consumer", "agent-a")
    assert redriven.returncode == 0 and "3 dead letters sent back" in redriven.stdout
    assert db.sql("SELECT state, attempts FROM agent_deliveries GROUP BY 1, 2") == [("pending", 0)]


def test_bad_arguments_get_one_line_and_nonzero_exit(db, brain_home):
    bad_time = brainctl(db, brain_home, "bus", "replay", "--from", "yesterday-ish")
    assert bad_time.returncode == 2 and "not a time" in bad_time.stderr
    too_far = brainctl(db, brain_home, "bus", "replay", "--from", "99999999d")
    assert too_far.returncode == 2 and "too far back: '99999999d'" in too_far.stderr
    huge_id = brainctl(db, brain_home, "bus", "redrive", "--consumer", "x", "--message", "99999999999999999999")
    assert huge_id.returncode == 2 and "out of range" in huge_id.stderr
    backwards = brainctl(db, brain_home, "bus", "replay", "--from", "1m", "--to", "2000-01-01T00:00:00")
    assert backwards.returncode == 1
    assert backwards.stderr.strip() == "brainctl: --to must be after --from"


def test_unreachable_database_is_one_line(brain_home, tmp_path):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAIN_")}
    env.update(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", BRAIN_HOME=str(brain_home))
    out = subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", "bus", "backlog"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith("brainctl: database unreachable:") and out.stderr.count("\n") == 1


def test_a_mistyped_home_is_one_line_and_creates_no_database(tmp_path):
    import os
    home = tmp_path / "no-brain-ran-here"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAIN_") and k != "DATABASE_URL"}
    env.update(BRAIN_HOME=str(home))
    out = subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", "status"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert out.stderr.startswith(f"brainctl: no database under {home}"), out.stderr
    assert not (home / "pg").exists(), "brainctl created a server of its own"


def test_a_reader_that_goes_away_is_no_error(db, brain_home):
    """`brainctl bus backlog | head`: output with nowhere to go (the reader left before it was
    written) ends the command quietly."""
    seed(db)
    proc = subprocess.Popen([sys.executable, "-m", "brain.cli.ctl_main", "bus", "backlog"], cwd=REPO,
                            env=db.env(brain_home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    with proc.stderr:
        assert proc.wait(timeout=60) == 0
        assert "Traceback" not in proc.stderr.read()
