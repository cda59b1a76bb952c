"""`brain up --until-done`, the README's main command, as a user runs it: watchdog process,
brain, replay of real bars, journal on disk, a summary, exit 0."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.cycle import context_dir
from tests.support.paths import REPO


@pytest.mark.slow
def test_brain_up_until_done(db, tmp_path):
    home = tmp_path / "not" / "yet" / "home"  # with DATABASE_URL, brain up makes it
    ctx = context_dir(tmp_path)
    env = db.env(home)
    env.update(BRAIN_CONTEXT_DIR=str(ctx), BRAIN_SKILLS_DIR=str(REPO / "skills"), BRAIN_INGRESS_PORT="0")
    out = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "up", "--until-done", "--start", "2013-01-02",
                          "--symbols", "AAPL,MSFT"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Summary" in out.stdout and "cycles" in out.stdout and "max drawdown" in out.stdout
    cycles = db.sql("SELECT count(*) FROM agent_journal WHERE kind = 'cycle'")[0][0]
    states = db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'market.state'")[0][0]
    assert states == 82 and states - 2 <= cycles <= states   # the last bars' orders may wait for a fill
    files = list((ctx / "journal").glob("*/*.md"))
    assert len(files) == cycles
    assert (home / "watchdog.log").stat().st_size > 0
    assert db.sql("SELECT count(*) FROM app_state WHERE key = 'heartbeat:watchdog'") == [(1,)]
    # Every order went through three approvals.
    unapproved = db.sql("""SELECT o.client_order_id FROM orders o WHERE o.intent = 'open'
                             AND o.parent_client_order_id IS NULL AND (SELECT count(*) FROM agent_messages s
                                 WHERE s.topic = 'trade.signature' AND s.correlation_id = o.correlation_id
                                   AND s.payload->>'verdict' = 'approve') <> 3""")
    assert unapproved == []
    again = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "up", "--until-done", "--start", "2013-01-02",
                            "--symbols", "AAPL,MSFT"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "82 already stored" in again.stdout, "a second run resumes, it does not replay"


@pytest.mark.parametrize("var, value, message", [
    ("BRAIN_BUS_LEASE_S", "abc", "brain: invalid setting BRAIN_BUS_LEASE_S: Input should be a valid number"),
    ("BRAIN_ROUTER_ROUTES", '["gpt-9"]', "brain: invalid setting BRAIN_ROUTER_ROUTES: Value error, unknown route"),
    ("BRAIN_INGRESS_PORT", "99999", "brain: invalid setting BRAIN_INGRESS_PORT"),
    # an unset variable passed through (compose's ${X}): not a request for the embedded server
    ("DATABASE_URL", "", "brain: invalid setting DATABASE_URL: Value error, not a postgresql:// URL"),
    ("BRAIN_ROUTER_ROUTES", "[offline", "brain: invalid setting BRAIN_ROUTER_ROUTES: Value error, not a JSON list"),
    ("BRAIN_IB_SYMBOLS", "  ,  ", "brain: invalid setting BRAIN_IB_SYMBOLS: Value error, at least one symbol"),
    ("BRAIN_CONFIG", "no-such.yaml", "brain: invalid setting BRAIN_CONFIG: no such file: no-such.yaml"),
    # a password from `openssl rand -base64`, pasted into the URL as compose does
    ("BRAIN_APP_DATABASE_URL", "postgresql://brain_app:ab/cd+ef@postgres:5432/brain",
     "brain: invalid setting BRAIN_APP_DATABASE_URL: Value error, not a URL that parses"),
    ("BRAIN_ROUTER_ROUTES", "openai,offline",
     "brain: invalid setting BRAIN_ROUTER_ROUTES: the openai route needs OPENAI_API_KEY in the environment"),
    ("BRAIN_ROUTER_ROUTES", "compatible,offline", "brain: invalid setting BRAIN_ROUTER_COMPATIBLE_BASE_URL: "
                                                  "needed when the compatible route is listed"),
])
def test_bad_settings_stop_with_one_line(db, tmp_path, var, value, message):
    env = db.env(tmp_path)
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        env.pop(key, None)
    env[var] = value
    out = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "up", "--until-done"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.startswith(message) and out.stderr.count("\n") == 1, out.stderr


def test_bad_arguments_and_yaml_config(db, tmp_path):
    env = db.env(tmp_path)
    bad = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "up", "--speed", "fast"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a number: 'fast'" in bad.stderr
    (tmp_path / "config.yaml").write_text("bus_lease_s: 12\nno_such_setting: 1\n")
    out = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "db", "current"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no_such_setting" in out.stderr and out.stderr.count("\n") == 1
    (tmp_path / "config.yaml").write_text("- bus_lease_s\n")
    out = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "db", "current"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.endswith("must be a mapping of settings, not a list\n"), out.stderr
    assert out.stderr.count("\n") == 1


def test_list_settings_take_commas_as_well_as_json():
    from brain.config import load_settings

    settings = load_settings(router_routes="offline, anthropic", ib_symbols=' aapl,msft ')
    assert settings.router_routes == ["offline", "anthropic"] and settings.ib_symbols == ["AAPL", "MSFT"]
    assert load_settings(router_routes='["offline"]').router_routes == ["offline"]


@pytest.mark.parametrize("args, message", [
    (["db", "upgrade", "9999"], "brain: db upgrade: Can't locate revision identified by '9999'"),
    (["db", "upgrade", "--set-passwords"], "brain: BRAIN_APP_DB_PASSWORD is not set"),
    (["db", "downgrade"],
     "brain: db downgrade: name the revision to go back to (`brain db current` shows where it is)"),
    (["db", "downgrade", "base"], "brain: db downgrade base drops every table and all it holds (halts, orders, "
                                  "fills, the journal); pass --yes to do it"),
])
def test_db_command_errors_are_one_line_and_change_nothing(db, tmp_path, args, message):
    env = {k: v for k, v in db.env(tmp_path).items() if not k.endswith("_DB_PASSWORD")}
    before = db.sql("SELECT version_num FROM alembic_version")
    out = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr == message + "\n", out.stderr
    assert db.sql("SELECT version_num FROM alembic_version") == before


def test_a_database_that_does_not_exist_is_one_line(db, tmp_path):
    from brain.db.urls import with_database

    env = db.env(tmp_path)
    env["DATABASE_URL"] = with_database(db.admin_url, "no_such_database")
    out = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "db", "upgrade"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.startswith("brain: database error: ") and out.stderr.count("\n") == 1
    assert "no_such_database" in out.stderr, out.stderr


def test_ib_without_a_gateway_stops_with_one_line(db, tmp_path):
    """Fail closed: with BRAIN_BROKER=ib and no gateway, `brain up` does not trade blind."""
    home = tmp_path / "home"
    home.mkdir()
    env = db.env(home)
    env.update(BRAIN_CONTEXT_DIR=str(context_dir(tmp_path)), BRAIN_SKILLS_DIR=str(REPO / "skills"),
               BRAIN_INGRESS_PORT="0", BRAIN_BROKER="ib", BRAIN_IB_PORT="1", BRAIN_IB_CLIENT_ID="31")
    out = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "up", "--no-watchdog"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    assert out.stderr.startswith("brain: IB gateway at 127.0.0.1:1 did not answer (client id 31)"), out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    until = subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "up", "--until-done"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=60)
    assert until.returncode == 1 and "bars are live and never run out" in until.stderr


def test_brain_up_keeps_running_after_the_replay_until_ctrl_c(db, tmp_path):
    """Without --until-done the service outlives its replay (dashboard, ingress, watchdog)."""
    import signal
    import time

    home = tmp_path / "home"
    home.mkdir()
    env = db.env(home)
    env.update(BRAIN_CONTEXT_DIR=str(context_dir(tmp_path)), BRAIN_SKILLS_DIR=str(REPO / "skills"),
               BRAIN_INGRESS_PORT="0")
    with subprocess.Popen([sys.executable, "-m", "brain.cli.brain_main", "up", "--start", "2013-02-20",
                           "--symbols", "AAPL"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if "still running, Ctrl-C to stop" in line:
                    break
            assert any("still running" in line for line in lines), "".join(lines)
            time.sleep(3)
            assert proc.poll() is None, "the brain must not stop when the replay runs out"
            [(age,)] = db.sql("SELECT extract(epoch FROM clock_timestamp() - updated_at) FROM app_state "
                              "WHERE key = 'heartbeat:brain'")
            assert age < 2.5
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
