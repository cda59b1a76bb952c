"""What the code takes from each agent's model answer, whatever its skill's schema allows.

The router validates an answer against its skill's schema, and a skill file is edited by hand
and reloaded while running. These bounds are the code's own: an answer outside them (a size
factor above 1, a verdict the signature cannot carry, a missing field) is a model failure,
and the agent fails closed as for any other (a veto, a skip, a risk_off stance)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from brain.topics import Regime, Side, Stance

Unit = Annotated[float, Field(ge=0, le=1)]
Reasons = Annotated[list[str], Field(min_length=1)]
Verdict = Literal["approve", "veto"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RegimeAnswer(_Answer):
    regime: Regime
    stance: Stance
    confidence: Unit
    rationale: str


class StrategistAnswer(_Answer):
    action: Literal["propose", "skip"]
    side: Side | None
    confidence: Unit
    edge: float = Field(ge=0)
    size_factor: Unit                # a model may only shrink a trade
    rationale: str
    skip_reason: str | None = None


class RiskGateAnswer(_Answer):
    verdict: Verdict
    size_factor: Unit                # multiplies the code's size: never above it
    reasons: Reasons


class FactCheckerAnswer(_Answer):
    verdict: Verdict
    reasons: Reasons


class DoubleCheckerAnswer(_Answer):
    view: Literal["buy", "sell", "stand_aside"]
    verdict: Verdict
    reasons: Reasons


# By skill name.
ACCEPTS: dict[str, type[_Answer]] = {"regime": RegimeAnswer, "strategist": StrategistAnswer,
                                     "risk-gate": RiskGateAnswer, "fact-checker": FactCheckerAnswer,
                                     "double-checker": DoubleCheckerAnswer}
