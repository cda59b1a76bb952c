"""Shadow experiments: a recommendation's variant replayed beside the live configuration on
real bars, judged on a held-out period, and shown in the next optimizer report."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from brain.agents.offline_rules import register_all
from brain.errors import BrainError
from brain.market.history import bundled_frame
from brain.optimizer.run import run_optimizer
from brain.optimizer.shadow import variant_of, verdict
from brain.router.prices import PriceTable
from brain.router.router import Router
from brain.router.routes import OfflineRoute
from brain.signals.indicators import compute
from brain.signals.regime import composite, signalled_side
from brain.skills.registry import SkillRegistry
from tests.support.cycle import context_dir
from tests.support.database import open_pool
from tests.support.paths import REPO

REC = {"change": "lower the signal threshold", "evidence": "skipped setups that won", "expected_effect": "more trades"}


def report(db, *recs) -> int:
    [(rid,)] = db.sql("INSERT INTO optimizer_reports (period_start, period_end, status, body_md, recommendations) "
                      "VALUES ('2013-01-02', '2013-01-02', 'complete', 'r', %s::jsonb) RETURNING id",
                      (json.dumps(list(recs)),))
    return rid


def shadow(db, home, *args):
    env = db.env(home)
    env.update(BRAIN_SKILLS_DIR=str(REPO / "skills"), BRAIN_CONTEXT_DIR=str(home / "context"))
    return subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "shadow", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_what_can_and_cannot_be_a_shadow_experiment(db, tmp_path):
    settings = db.settings(tmp_path, skills_dir=REPO / "skills")
    v = variant_of({"target": "strategy_stop_atr", "value": 2.5, **REC}, settings)
    assert v.settings.strategy_stop_atr == 2.5 and v.settings.router_routes == ["offline"]
    assert settings.strategy_stop_atr == 2.0, "the live settings are untouched"
    for rec, message in (({"target": "strategy_stop_atr", "value": 9.0}, "outside its range"),
                         ({"target": "strategy_stop_atr"}, "names no value"),
                         ({"target": "max_drawdown", "value": 0.5}, "out of bounds for the optimizer"),
                         ({"target": "double-checker", "edit": None}, "advice without a variant"),
                         ({"target": "double-checker", "edit": {"find": "no such text", "replace": "x"}},
                          "occurs 0 times")):
        with pytest.raises(BrainError, match=message):
            variant_of({**REC, **rec}, settings)
    skill = variant_of({"target": "double-checker", **REC,
                        "edit": {"find": "Be independent:", "replace": "Be independent and brief:"}}, settings)
    try:
        assert "brief" in (skill.settings.skills_dir / "double-checker" / "SKILL.md").read_text()
        assert "brief" not in (REPO / "skills" / "double-checker" / "SKILL.md").read_text()
    finally:
        skill.cleanup()
    assert not skill.settings.skills_dir.exists()
    same = {"return_pct": 1.0, "max_drawdown_pct": 2.0, "trades": 3}
    assert verdict(same, same) == "no difference"
    assert verdict(same, {**same, "return_pct": 2.0}) == "variant better"
    assert verdict(same, {**same, "return_pct": 0.5, "max_drawdown_pct": 3.0}) == "variant worse"
    assert verdict(same, {**same, "return_pct": 2.0, "max_drawdown_pct": 3.0}) == "mixed"


@pytest.mark.slow
async def test_a_threshold_variant_is_replayed_held_out_and_reported(db, tmp_path):
    # The lower threshold must change something on these bars, or the experiment proves nothing.
    frame = bundled_frame("AAPL")
    ind = compute(frame)
    window = ind.loc["2012-09-04":"2013-02-28"].dropna()
    newly = [ts for ts, row in window.iterrows()
             if signalled_side(row.to_dict(), composite(row.to_dict()), 0.25)
             != signalled_side(row.to_dict(), composite(row.to_dict()), 0.35)]
    assert len(newly) >= 5

    home = tmp_path / "home"
    context_dir(home)
    rid = report(db, {"target": "strategy_align_threshold", "value": 0.25, **REC})
    out = shadow(db, home, str(rid), "1", "--symbols", "AAPL", "--start", "2012-09-04", "--split", "2012-12-03",
                 "--end", "2013-03-01", "--operator", "ana", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    exp = result["experiment_id"]
    [(status, by, stored)] = db.sql("SELECT status, requested_by, result FROM shadow_experiments WHERE id = %s", (exp,))
    assert status == "done" and by == "ana" and stored["verdict"] == result["verdict"]
    folder = home / "context" / "self_optimizer" / "shadow" / str(exp)
    live = json.loads((folder / "live" / "result.json").read_text())
    variant = json.loads((folder / "variant" / "result.json").read_text())
    # Same bars through both; the verdict re-derived from the two runs' own held-out figures.
    assert live["bars"] == variant["bars"] > 100
    assert result["verdict"] == verdict(live["held_out"], variant["held_out"])
    assert result["live"]["held_out"]["return_pct"] == live["held_out"]["return_pct"]
    assert sum(live["outcomes"].values()) == sum(variant["outcomes"].values())
    assert not result["decisions_identical"], "a lower threshold on these bars must change decisions"
    text = (folder / "experiment.md").read_text()
    assert "held out" in text and f"Verdict on the held-out period: **{result['verdict']}**" in text
    assert db.sql("SELECT count(*) FROM agent_journal WHERE outcome = 'shadow'") == [(1,)]

    # The next report carries it, once.
    register_all()
    skills = SkillRegistry(REPO / "skills")
    skills.load_all()
    pool = await open_pool(db, max_size=2)
    try:
        router = Router(pool, [OfflineRoute()], (REPO / "context" / "philosophy.md").read_text(), PriceTable())
        first = await run_optimizer(pool, router, skills, tmp_path, date(2013, 1, 3))
        second = await run_optimizer(pool, router, skills, tmp_path, date(2013, 1, 4))
    finally:
        await pool.close()
    body = Path(db.sql("SELECT file_path FROM optimizer_reports WHERE id = %s", (first,))[0][0]).read_text()
    assert "## Shadow experiments since the last report" in body
    assert f"experiment {exp} on strategy_align_threshold" in body and result["verdict"] in body
    assert db.sql("SELECT reported_in FROM shadow_experiments WHERE id = %s", (exp,)) == [(first,)]
    later = Path(db.sql("SELECT file_path FROM optimizer_reports WHERE id = %s", (second,))[0][0]).read_text()
    assert "Shadow experiments" not in later


def test_bad_shadow_requests_are_one_line_errors(db, tmp_path):
    home = tmp_path / "home"
    context_dir(home)
    rid = report(db, {"target": "risk_per_trade", "value": 0.05, **REC})
    for args, message in (([str(rid), "1"], "out of bounds for the optimizer"),
                          ([str(rid), "7"], f"report {rid} has 1 recommendation(s); there is no number 7"),
                          (["999999", "1"], "no optimizer report 999999"),
                          ([str(rid), "1", "--start", "2013-01-02", "--split", "2012-01-02"], "--split must come after")):
        out = shadow(db, home, *args)
        assert out.returncode == 1 and message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    (home / "context" / "philosophy.md").unlink()
    out = shadow(db, home, str(rid), "1")
    assert out.returncode == 1 and out.stderr.startswith("brain: doctrine not found:"), out.stderr
    assert db.sql("SELECT count(*) FROM shadow_experiments") == [(0,)], "nothing half-recorded"
