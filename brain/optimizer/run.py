"""One optimizer run: statistics by code, a report by the self-optimizer skill, guard rails by
code, a markdown file for the operator, a row and a journal entry. A run that fails midway
still leaves a report saying what failed."""
from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from brain.journal import JournalEntry, record_entry
from brain.journal.entry import write_via_temp
from brain.journal.notes import append_note
from brain.optimizer import guards
from brain.optimizer.shadow_report import report_lines
from brain.optimizer.stats import compute
from brain.router.answers import ModelFailure
from brain.sql import queries_beside
from brain.strategy import DEFAULT, TUNABLE, StrategyParams

if TYPE_CHECKING:
    import asyncpg

    from brain.router.router import Router
    from brain.skills.registry import SkillRegistry

log = logging.getLogger("brain.optimizer")
Q = queries_beside(__file__, "reports.sql")


def screen(recs: list[dict], stats: dict, skill_names: set[str]) -> tuple[list[dict], list[str]]:
    """Keep the recommendations the data can carry; say why the others were dropped."""
    kept, dropped = [], []
    observations = {guards.canonical(k.split(" ")[0]): v["signed"] for k, v in stats["per_role"].items()}
    skills = {guards.canonical(s): s for s in skill_names}
    parameters = {guards.canonical(p): p for p in TUNABLE}
    for rec in recs:
        target, name = rec["target"], guards.canonical(rec["target"])
        try:
            guards.check_target(target)
            if name in skills or name in observations:
                guards.require(observations.get(name, 0), guards.MIN_OBSERVATIONS, f"observations of {target}")
            elif name in parameters:
                guards.require(stats["closed_trades_all_time"], guards.MIN_CLOSED_TRADES,
                               f"closed trades behind parameter {target}")
            else:
                raise guards.ForbiddenTarget(f"{target!r} is neither a skill nor a tunable parameter")
            # Stored under its own name, so that apply and its weekly and cooling limits see one target.
            kept.append({**rec, "target": skills.get(name) or parameters.get(name) or target})
        except (guards.InsufficientData, guards.ForbiddenTarget) as exc:
            dropped.append(f"{target}: {exc}")
    return kept, dropped


def render(day: date, status: str, stats: dict | None, answer: dict | None, kept: list, dropped: list,
           failure: str | None, shadow: list[str] | None = None) -> str:
    lines = [f"# Self-Optimizer report for {day.isoformat()}", "", f"Status: **{status}**", ""]
    if failure:
        lines += ["## What failed", "", failure, ""]
    if status == "baseline":
        lines += ["First run: this report establishes the baseline and recommends nothing.", ""]
    if answer:
        lines += ["## Summary", "", answer["summary"], "", "## What worked", ""]
        lines += [f"- {w}" for w in answer["worked"]] or ["- nothing stood out"]
        lines += ["", "## What did not", ""] + ([f"- {w}" for w in answer["did_not_work"]] or ["- nothing stood out"])
    lines += ["", "## Recommendations", ""]
    if kept:
        for i, rec in enumerate(kept, 1):
            lines += [f"{i}. **{rec['target']}**: {rec['change']}", f"   - evidence: {rec['evidence']}",
                      f"   - expected effect: {rec['expected_effect']}"]
            if rec.get("edit"):
                lines.append(f"   - apply with `brainctl optimize apply <report id> {i}`")
            if rec.get("edit") or rec.get("value") is not None:
                lines.append(f"   - try it in a shadow replay first: `brain shadow <report id> {i}`")
    else:
        lines.append("None." if status != "failed" else "None (the run failed).")
    if dropped:
        lines += ["", "## Not recommended: insufficient data or out of bounds", ""] + [f"- {d}" for d in dropped]
    lines += shadow or []
    if stats:
        lines += ["", "## The statistics (computed by code)", "", "```json", json.dumps(stats, indent=2), "```"]
    return "\n".join(lines) + "\n"


def write_report(folder: Path, day: date, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target, n = folder / f"{day.isoformat()}.md", 1
    while target.exists():
        n += 1
        target = folder / f"{day.isoformat()}-{n}.md"
    return write_atomically(target, text)


def write_atomically(target: Path, text: str) -> Path:
    """A temp file beside the target, synced, then renamed over it: never half a file."""
    def put(tmp: str) -> Path:
        os.replace(tmp, target)
        return target

    return write_via_temp(target.parent, text, durable=True, put=put, replacing=target)


async def run_optimizer(pool: asyncpg.Pool, router: Router, skills: SkillRegistry, context_dir: Path, day: date,
                        days: int = 1, params: StrategyParams = DEFAULT) -> int:
    stats = answer = failure = None
    shadow_rows: list = []
    kept: list = []
    dropped: list = []
    status = "complete"
    try:
        async with pool.acquire() as conn:
            stats = await compute(conn, day, days, params)
            shadow_rows = await conn.fetch(Q["unreported_experiments"])
            first = not await conn.fetchval(Q["any_report_made"])
        if first:
            status = "baseline"
        else:
            insufficient = []
            if stats["closed_trades_all_time"] < guards.MIN_CLOSED_TRADES:
                insufficient.append(f"parameters: {stats['closed_trades_all_time']} closed trades "
                                    f"(need {guards.MIN_CLOSED_TRADES})")
            insufficient += [f"filter {k}: {v['signed']} observations (need {guards.MIN_OBSERVATIONS})"
                             for k, v in stats["per_role"].items() if v["signed"] < guards.MIN_OBSERVATIONS]
            result = await router.call("self_optimizer", skills.get("self-optimizer"),
                                       {**stats, "insufficient": insufficient, "parameters": params.as_settings()},
                                       f"optimizer@{day.isoformat()}")
            if isinstance(result, ModelFailure):
                status, failure = "failed", f"the model call failed: {result.reason}; " + "; ".join(result.attempts)
            else:
                answer = result.data
                kept, dropped = screen(answer["recommendations"], stats, set(skills.names()))
    except Exception as exc:  # a failed run still leaves a report saying what failed
        log.exception("optimizer run failed")
        status, failure = "failed", f"{type(exc).__name__}: {exc}"
    text = render(day, status, stats, answer, kept, dropped, failure, report_lines(shadow_rows))
    path = write_report(context_dir / "self_optimizer" / "reports", day, text)
    async with pool.acquire() as conn, conn.transaction():
        end = date.fromordinal(day.toordinal() + days - 1)
        report_id = await conn.fetchval(Q["insert_report"], day, end, status, str(path), text, json.dumps(stats or {}),
                                        json.dumps(kept))
        await conn.execute(Q["mark_experiments_reported"], report_id, [r["id"] for r in shadow_rows])
        await record_entry(conn, context_dir, JournalEntry(
            kind="optimizer", outcome=status, title=f"Self-Optimizer report {report_id} for {day.isoformat()}: {status}",
            sections=[("Report", f"`{path}`: {len(kept)} recommendation(s), {len(dropped)} not made.")]
            + ([("What failed", failure)] if failure else []),
            facts={"report_id": report_id, "status": status, "recommendations": kept, "dropped": dropped}))
    append_note(context_dir, "self_optimizer", f"Report {report_id} for {day.isoformat()}: {status}, "
                f"{len(kept)} recommendation(s), {len(dropped)} not made. {path}")
    return report_id
