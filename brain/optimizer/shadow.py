"""Shadow experiments: one recommendation's variant replayed beside the live configuration.

Both runs go through the same agents, bus and paper broker over the same bars, on the offline
route (no model is paid for an experiment), each in its own scratch database. The window is
cut in two at --split: the verdict is judged on the held-out part only, which the
recommendation was not chosen on. Nothing live changes: the variant exists only inside its
replay, and applying it stays the operator's act (`brainctl optimize apply`).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from brain.backtest.run import run_backtest
from brain.config import Settings, doctrine_path
from brain.db.urls import admin_url, psycopg_conninfo
from brain.errors import BrainError
from brain.journal import JournalEntry, record_entry_sync
from brain.market.history import ValidatedHistory
from brain.optimizer import guards
from brain.optimizer.run import write_atomically
from brain.skills.edit import edited_text
from brain.sql import queries_beside
from brain.strategy import TUNABLE

Q = queries_beside(__file__, "reports.sql")

COMPARED = ("return_pct", "buy_and_hold_pct", "sharpe", "max_drawdown_pct", "trades", "win_rate_pct")


@dataclass
class Variant:
    target: str
    spec: dict              # what is varied, as stored
    settings: Settings      # the variant's settings (offline route)
    scratch: Path | None = None   # a copied skills folder to remove afterwards

    def cleanup(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def offline(settings: Settings) -> Settings:
    return settings.model_copy(update={"router_routes": ["offline"]})


def variant_of(rec: dict, settings: Settings) -> Variant:
    """The variant a recommendation describes, or BrainError saying why it has none."""
    target = rec["target"]
    guards.check_target(target)
    value = rec.get("value")
    if target in TUNABLE:
        low, high = TUNABLE[target]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BrainError(f"the recommendation on {target} names no value to try")
        if not low <= value <= high:
            raise BrainError(f"{target} = {value} is outside its range [{low}, {high}]")
        return Variant(target, {"setting": target, "value": value, "live": getattr(settings, target)},
                       offline(settings).model_copy(update={target: float(value)}))
    edit = rec.get("edit")
    skill_file = settings.skills_dir / target / "SKILL.md"
    if edit and skill_file.exists():
        _old, new = edited_text(skill_file, edit)   # checked before anything is copied
        scratch = Path(tempfile.mkdtemp(prefix="shadow-skills-"))
        shutil.copytree(settings.skills_dir, scratch / "skills")
        (scratch / "skills" / target / "SKILL.md").write_text(new)
        return Variant(target, {"skill": target, "edit": edit},
                       offline(settings).model_copy(update={"skills_dir": scratch / "skills"}), scratch)
    raise BrainError(f"recommendation on {target!r} is advice without a variant to replay "
                     f"(a value for one of {', '.join(TUNABLE)}, or an edit of a skill)")


def verdict(live: dict, variant: dict) -> str:
    """Judged on the held-out period only."""
    better_return = variant["return_pct"] - live["return_pct"]
    deeper = variant["max_drawdown_pct"] - live["max_drawdown_pct"]
    if abs(better_return) < 0.01 and abs(deeper) < 0.01 and variant["trades"] == live["trades"]:
        return "no difference"
    if better_return > 0 and deeper <= 0:
        return "variant better"
    if better_return < 0 and deeper >= 0:
        return "variant worse"
    return "mixed"


def _pick(m: dict) -> dict:
    return {k: m[k] for k in COMPARED}


def render(exp_id: int, rec: dict, where: tuple[int, int], variant: Variant, window: dict, live: dict, shadow: dict,
           judged: str) -> str:
    lines = [f"# Shadow experiment {exp_id}: {variant.target}", "",
             f"Recommendation: {rec.get('change', '')}", "",
             f"Variant: `{json.dumps(variant.spec)}`; offline route; symbols {', '.join(window['symbols'])}; "
             f"replayed from {window['start']} with the held-out period from {window['split']}.", "",
             "| figure | live, in sample | variant, in sample | live, held out | variant, held out |",
             "|---|---|---|---|---|"]
    for k in COMPARED:
        lines.append(f"| {k} | {live['in_sample'][k]} | {shadow['in_sample'][k]} | {live['held_out'][k]} | "
                     f"{shadow['held_out'][k]} |")
    lines += ["", f"Verdict on the held-out period: **{judged}**.", ""]
    if "skill" in variant.spec:
        lines += ["Note: on the offline route a skill's wording does not change any answer, so both runs decide "
                  "alike; a wording change needs a model route to be judged.", ""]
    how = (f"`brainctl optimize apply {where[0]} {where[1]}`" if "skill" in variant.spec
           else f"set `BRAIN_{variant.target.upper()}`")
    lines += [f"Nothing live was changed. To adopt it: {how}.", ""]
    return "\n".join(lines)


async def run_shadow(settings: Settings, report_id: int, rec_no: int, history: ValidatedHistory, start: datetime,
                     split: datetime, requested_by: str,
                     progress: Callable[[int, int], object] | None = None) -> dict[str, Any]:
    doctrine_path(settings)  # fail before any work when the doctrine is missing
    admin = admin_url(settings)
    with psycopg.connect(psycopg_conninfo(admin), autocommit=True) as conn:
        row = conn.execute(Q["report_recommendations"], (report_id,)).fetchone()
        if row is None:
            raise BrainError(f"no optimizer report {report_id}")
        recs = row[0]
        if not 1 <= rec_no <= len(recs):
            raise BrainError(f"report {report_id} has {len(recs)} recommendation(s); there is no number {rec_no}")
        rec = recs[rec_no - 1]
        variant = variant_of(rec, settings)
        window = {"symbols": list(history.frames), "start": start.date().isoformat(),
                  "split": split.date().isoformat()}
        inserted = conn.execute(
            Q["insert_experiment"],
            (report_id, rec_no, variant.target, json.dumps(variant.spec), json.dumps(window), requested_by)).fetchone()
        assert inserted is not None  # INSERT ... RETURNING: one row
        exp_id = inserted[0]
    folder = settings.context_dir / "self_optimizer" / "shadow" / f"{exp_id}"
    try:
        (folder / "live").mkdir(parents=True, exist_ok=True)
        (folder / "variant").mkdir(parents=True, exist_ok=True)
        live = await run_backtest(offline(settings), history, start, split, folder / "live", progress=progress)
        shadow = await run_backtest(variant.settings, history, start, split, folder / "variant", progress=progress)
    except Exception as exc:
        with psycopg.connect(psycopg_conninfo(admin), autocommit=True) as conn:
            conn.execute(Q["fail_experiment"], (f"{type(exc).__name__}: {exc}", exp_id))
        raise
    finally:
        variant.cleanup()
    judged = verdict(live["held_out"], shadow["held_out"])
    result = {"experiment_id": exp_id, "target": variant.target, "variant": variant.spec, "window": window,
              "verdict": judged,
              "live": {"in_sample": _pick(live["in_sample"]), "held_out": _pick(live["held_out"])},
              "variant_run": {"in_sample": _pick(shadow["in_sample"]), "held_out": _pick(shadow["held_out"])},
              "decisions_identical": live["outcomes"] == shadow["outcomes"]}
    text = render(exp_id, rec, (report_id, rec_no), variant, window, result["live"], result["variant_run"], judged)
    path = write_atomically(folder / "experiment.md", text)
    with psycopg.connect(psycopg_conninfo(admin), autocommit=True) as conn, conn.transaction():
        conn.execute(Q["finish_experiment"], (json.dumps(result), str(path), exp_id))
        record_entry_sync(conn, settings.context_dir, JournalEntry(
            kind="optimizer", outcome="shadow", title=f"Shadow experiment {exp_id} on {variant.target}: {judged}",
            sections=[("Experiment", text)], facts=result))
    result["file"] = str(path)
    return result
