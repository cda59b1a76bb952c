"""The Self-Optimizer: counterfactuals on real bars by hand, guard rails in code, a baseline
first run, a report even when the model fails, and applies under the weekly and cooling limits."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from brain.market.history import bundled_frame
from brain.optimizer import guards
from brain.optimizer.run import run_optimizer, screen
from brain.optimizer.stats import first_touch
from brain.router.prices import PriceTable
from brain.router.router import Router
from brain.router.routes import OfflineRoute, RouteError
from brain.skills.registry import SkillRegistry
from brain.agents.offline_rules import register_all
from tests.support.paths import REPO


def test_counterfactual_on_real_bars_by_hand():
    f = bundled_frame("AAPL").loc["2013-01-16":"2013-01-25"]
    bars = [(r.open, r.high, r.low) for r in f.itertuples()]
    # Long from 2013-01-15 with stop 480 / target 509: 2013-01-16's high 509.44 reaches 509 first.
    assert first_touch("buy", 480.0, 509.0, bars) == "take_profit"
    # Target 520 is never reached; 2013-01-24 opens at 460, through the 470 stop.
    assert first_touch("buy", 470.0, 520.0, bars) == "stop"
    # A short with a 530 stop and 440 target: 2013-01-25's low 435 reaches 440 first.
    assert first_touch("sell", 530.0, 440.0, bars) == "take_profit"
    assert first_touch("buy", 300.0, 600.0, bars) == "neither"


def test_sample_size_and_bounds_guards():
    with pytest.raises(guards.InsufficientData, match="12 closed trades"):
        guards.require(12, guards.MIN_CLOSED_TRADES, "closed trades")
    with pytest.raises(guards.ForbiddenTarget):
        guards.check_target("MAX_RISK_PER_TRADE")
    stats = {"per_role": {"risk_gate (code)": {"signed": 40}, "double_checker (ab12cd34)": {"signed": 10}},
             "closed_trades_all_time": 20}
    recs = [{"target": t, "change": "c", "evidence": "e", "expected_effect": "x"}
            for t in ("risk_gate", "double-checker", "stop_atr", "self-optimizer", "watchdog",
                      # however spelled: a skill is that skill, a hard limit is a hard limit
                      "./Risk-Gate/", "./double-checker/", "max open positions", "risk per trade",
                      "strategy_stop_atr")]
    kept, dropped = screen(recs, stats, {"double-checker", "risk-gate", "self-optimizer"})
    assert [r["target"] for r in kept] == ["risk-gate", "risk-gate"], "stored under the skill's own name"
    assert len(dropped) == 8
    assert sum("insufficient data: 10 observations" in d for d in dropped) == 2
    assert any(d.startswith("max open positions: ") and "out of bounds" in d for d in dropped)
    assert any(d.startswith("risk per trade: ") and "out of bounds" in d for d in dropped)
    assert any(d.startswith("stop_atr: ") and "neither a skill nor a tunable parameter" in d for d in dropped)
    assert any(d.startswith("strategy_stop_atr: insufficient data: 20 closed trades") for d in dropped)


class Broken:
    name = "anthropic"
    zero_cost = False

    def model_for(self, prompt):
        return "claude-sonnet-5-5"

    async def complete(self, skill, prompt):
        raise RouteError("overloaded", "529 overloaded")


async def test_first_run_is_a_baseline_and_a_failing_model_still_reports(pool, db, tmp_path):
    register_all()
    skills = SkillRegistry(REPO / "skills")
    skills.load_all()
    philosophy = (REPO / "context" / "philosophy.md").read_text()
    ok = Router(pool, [OfflineRoute()], philosophy, PriceTable())
    first = await run_optimizer(pool, ok, skills, tmp_path, date(2013, 1, 2))
    [(status, recs, path)] = db.sql("SELECT status, recommendations, file_path FROM optimizer_reports WHERE id = %s",
                                    (first,))
    assert status == "baseline" and recs == []
    assert "recommends nothing" in Path(path).read_text()
    broken = Router(pool, [Broken()], philosophy, PriceTable())
    second = await run_optimizer(pool, broken, skills, tmp_path, date(2013, 1, 3))
    [(status, path)] = db.sql("SELECT status, file_path FROM optimizer_reports WHERE id = %s", (second,))
    text = Path(path).read_text()
    assert status == "failed" and "## What failed" in text and "overloaded" in text
    assert db.sql("SELECT count(*) FROM agent_journal WHERE kind = 'optimizer'") == [(2,)]
    third = await run_optimizer(pool, ok, skills, tmp_path, date(2013, 1, 4))
    assert db.sql("SELECT status FROM optimizer_reports WHERE id = %s", (third,)) == [("complete",)]
    assert not list((REPO / "skills").glob("**/.tmp-*")), "the optimizer never writes under skills/"
    notes = (tmp_path / "self_optimizer" / "notes.md").read_text()
    assert notes.count("## ") == 3 and "baseline" in notes and "failed" in notes


def brainctl(db, home, skills, *args):
    env = db.env(home)
    env.update(BRAIN_SKILLS_DIR=str(skills), BRAIN_CONTEXT_DIR=str(home / "context"))
    return subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", "optimize", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_apply_shows_a_diff_and_respects_the_limits(db, tmp_path):
    skills = tmp_path / "skills"
    shutil.copytree(REPO / "skills", skills)
    home = tmp_path / "home"
    (home / "context").mkdir(parents=True)
    rec = {"target": "double-checker", "change": "stand aside less", "evidence": "e", "expected_effect": "x",
           "edit": {"find": "Be independent:", "replace": "Be independent and decisive:"}}
    advice = {**rec, "edit": None}
    [(rid,)] = db.sql("INSERT INTO optimizer_reports (period_start, period_end, status, body_md, recommendations) "
                      "VALUES ('2013-01-02', '2013-01-02', 'complete', 'r', %s::jsonb) RETURNING id",
                      (json.dumps([rec, advice]),))
    out = brainctl(db, home, skills, "apply", str(rid), "1", "--yes", "--operator", "ana")
    assert out.returncode == 0, out.stderr
    assert "+Be independent and decisive:" in out.stdout.replace("+ ", "+") or "decisive" in out.stdout
    assert "Be independent and decisive:" in (skills / "double-checker" / "SKILL.md").read_text()
    assert db.sql("SELECT skill, applied_by FROM optimizer_applies") == [("double-checker", "ana")]
    again = brainctl(db, home, skills, "apply", str(rid), "1", "--yes")
    assert again.returncode == 1 and "cools for 14 days" in again.stderr
    assert brainctl(db, home, skills, "apply", str(rid), "2", "--yes").stderr.strip().endswith(
        "is advice, not an edit: apply it by hand if you agree")
    db.sql("UPDATE optimizer_applies SET applied_at = now() - interval '20 days'")
    db.sql("INSERT INTO optimizer_applies (report_id, rec_no, skill, applied_by, diff) "
           "SELECT report_id, rec_no, skill, applied_by, diff FROM optimizer_applies")
    db.sql("UPDATE optimizer_applies SET applied_at = now() - interval '15 days' WHERE id = (SELECT max(id) FROM optimizer_applies)")
    db.sql("INSERT INTO optimizer_applies (report_id, rec_no, skill, applied_by, diff) "
           "SELECT report_id, rec_no, skill, applied_by, diff FROM optimizer_applies LIMIT 1")
    db.sql("INSERT INTO optimizer_applies (report_id, rec_no, skill, applied_by, diff) "
           "SELECT report_id, rec_no, skill, applied_by, diff FROM optimizer_applies LIMIT 1")
    weekly = brainctl(db, home, skills, "apply", str(rid), "1", "--yes")
    assert weekly.returncode == 1 and "this week (limit 2)" in weekly.stderr


def test_an_apply_that_cannot_be_recorded_leaves_the_skill_as_it_was(db, tmp_path):
    skills = tmp_path / "skills"
    shutil.copytree(REPO / "skills", skills)
    home = tmp_path / "home"
    home.mkdir()
    (home / "context").write_text("a file where the journal folder should be")
    rec = {"target": "double-checker", "change": "c", "evidence": "e", "expected_effect": "x",
           "edit": {"find": "Be independent:", "replace": "Be independent and decisive:"}}
    [(rid,)] = db.sql("INSERT INTO optimizer_reports (period_start, period_end, status, body_md, recommendations) "
                      "VALUES ('2013-01-02', '2013-01-02', 'complete', 'r', %s::jsonb) RETURNING id",
                      (json.dumps([rec]),))
    before = (skills / "double-checker" / "SKILL.md").read_text()
    out = brainctl(db, home, skills, "apply", str(rid), "1", "--yes")
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert (skills / "double-checker" / "SKILL.md").read_text() == before
    assert db.sql("SELECT count(*) FROM optimizer_applies") == [(0,)]


async def test_brainctl_optimize_asks_the_running_brain(db, tmp_path):
    import asyncio

    from tests.support.cycle import start_brain

    brain = await start_brain(db, tmp_path)
    try:
        env = db.env(tmp_path / "home")
        env["BRAIN_CONTEXT_DIR"] = str(tmp_path / "context")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "brain.cli.ctl_main", "optimize", "--date", "2013-01-02", "--timeout", "60",
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        await brain.close()
    assert proc.returncode == 0, err.decode()
    assert "# Self-Optimizer report for 2013-01-02" in out.decode() and "baseline" in out.decode()
    assert list((tmp_path / "context" / "self_optimizer" / "reports").glob("2013-01-02*.md"))
