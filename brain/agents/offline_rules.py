"""Deterministic answers for every role, from the numbers in the inputs: what the offline
route says. Each follows its skill's rules literally, so the system with no model at all
is the cautious baseline a model has to beat."""
from __future__ import annotations

from typing import Any

from brain.router import offline

CAUTION = {"trending_up": 0, "trending_down": 0, "ranging": 1, "volatile": 2}


def regime(x: dict[str, Any]) -> dict[str, Any]:
    ind, computed = x["indicators"], x["computed_regime"]
    regime_ = computed
    # Trend without momentum confirmation is treated as a range.
    if computed.startswith("trending") and abs(x["composite"]) < 0.15:
        regime_ = "ranging"
    stance = {"trending_up": "risk_on", "trending_down": "risk_on", "ranging": "neutral",
              "volatile": "risk_off"}[regime_]
    confidence = round(min(1.0, 0.5 + abs(x["composite"]) / 2), 3)
    return {"regime": regime_, "stance": stance, "confidence": confidence,
            "rationale": f"computed {computed}; ADX {ind['adx']:.1f}, volatility percentile "
                         f"{ind['vol_pct']:.2f}, composite {x['composite']:+.2f}."}


def strategist(x: dict[str, Any]) -> dict[str, Any]:
    side = x["signalled_side"]
    skip = None
    if x.get("holding"):
        skip = "already holding this symbol"
    elif side is None:
        skip = "the signals do not align on a side"
    elif x["stance"] == "risk_off":
        skip = "the regime stance is risk_off"
    if skip:
        return {"action": "skip", "side": None, "confidence": 0.0, "edge": 0.0, "size_factor": 0.0,
                "rationale": skip, "skip_reason": skip}
    strength = abs(x["composite"])
    confidence = round(min(0.75, 0.45 + strength / 2), 3)
    edge = round(min(x["reward_risk"], 0.5 + strength * 2), 3)
    return {"action": "propose", "side": side, "confidence": confidence, "edge": edge, "size_factor": 1.0,
            "rationale": f"{side} with composite {x['composite']:+.2f}, {x['regime']} regime, stance {x['stance']}.",
            "skip_reason": None}


def risk_gate(x: dict[str, Any]) -> dict[str, Any]:
    decision = x["code_decision"]
    return {"verdict": decision["verdict"], "size_factor": 1.0,
            "reasons": decision["reasons"] or ["no objection beyond the code's caps"]}


def fact_checker(x: dict[str, Any]) -> dict[str, Any]:
    problems = [f"{name} cited {x['cited'].get(name)} but is {x['recomputed'].get(name)}" for name in x["mismatches"]]
    if x["bar_age_bars"] > 0:
        problems.append(f"the proposal is {x['bar_age_bars']} bar(s) old")
    if abs(x["drift"]) > x["drift_limit"]:
        problems.append(f"price drifted {x['drift']:+.2%}, beyond {x['drift_limit']:.2%}")
    if problems:
        return {"verdict": "veto", "reasons": problems}
    return {"verdict": "approve", "reasons": ["every cited number matches the database"]}


def double_checker(x: dict[str, Any]) -> dict[str, Any]:
    ind = x["indicators"]
    view = "stand_aside"
    if x["composite"] >= 0.25 and ind["macd_hist"] > 0 and ind["ema_cross"] > 0 and ind["rsi"] < 70:
        view = "buy"
    elif x["composite"] <= -0.25 and ind["macd_hist"] < 0 and ind["ema_cross"] < 0 and ind["rsi"] > 30:
        view = "sell"
    agree = view == x["proposed_side"]
    return {"view": view, "verdict": "approve" if agree else "veto",
            "confidence": round(min(1.0, abs(x["composite"]) * 1.5), 3),
            "reasons": [f"my view is {view} (composite {x['composite']:+.2f}, MACD histogram "
                        f"{ind['macd_hist']:+.3f}, RSI {ind['rsi']:.1f})"]}


def self_optimizer(x: dict[str, Any]) -> dict[str, Any]:
    """A plain reading of the statistics: what the vetoes and the counterfactuals say."""
    worked: list[str] = []
    not_worked: list[str] = []
    recs = []
    cf = x["counterfactuals"]["vetoed"]
    vetoed = sum(cf.values())
    if vetoed:
        line = (f"of {vetoed} vetoed setups, {cf['take_profit']} would have reached the take-profit first and "
                f"{cf['stop']} the stop")
        (worked if cf["stop"] >= cf["take_profit"] else not_worked).append(line)
    for role, r in x["per_role"].items():
        if r["signed"] >= 30 and r["veto_rate"] > 0.8 and cf["take_profit"] > cf["stop"]:
            name = role.split(" ")[0].replace("_", "-")
            recs.append({"target": name, "change": f"{name} vetoes {r['veto_rate']:.0%} of proposals; review "
                         "its persona for a rule that is stricter than the evidence supports",
                         "evidence": line, "expected_effect": "fewer missed winners at the same loss rate",
                         "edit": None})
    skipped = x["counterfactuals"]["skipped"]
    threshold = x.get("parameters", {}).get("strategy_align_threshold")
    if threshold is not None and sum(skipped.values()) >= 30 and skipped["take_profit"] > 1.5 * skipped["stop"]:
        line = (f"of {sum(skipped.values())} skipped setups, {skipped['take_profit']} would have reached the "
                f"take-profit first and {skipped['stop']} the stop")
        not_worked.append(line)
        recs.append({"target": "strategy_align_threshold", "value": round(max(0.2, threshold - 0.05), 2),
                     "change": f"lower the signal threshold from {threshold} to {max(0.2, threshold - 0.05):.2f}",
                     "evidence": line, "expected_effect": "more of the setups that skipped winners become trades",
                     "edit": None})
    for regime, r in x["by_regime"].items():
        (worked if r["pnl"] > 0 else not_worked).append(
            f"{regime}: {r['trades']} closed trades, win rate {r['win_rate']:.0%}, P&L {r['pnl']:+,.2f}")
    summary = (f"{x['proposals']} proposals in the period; "
               f"{sum(r['trades'] for r in x['by_regime'].values())} trades closed. "
               + ("Some checks lack data: " + "; ".join(x["insufficient"]) if x["insufficient"] else ""))
    return {"summary": summary.strip(), "worked": worked[:8], "did_not_work": not_worked[:8], "recommendations": recs[:5]}


def register_all() -> None:
    for name, rule in (("regime", regime), ("strategist", strategist), ("risk-gate", risk_gate),
                       ("fact-checker", fact_checker), ("double-checker", double_checker),
                       ("self-optimizer", self_optimizer)):
        offline.register(name, rule)
