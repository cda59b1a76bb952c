"""The strategy's tunable parameters: the few numbers an operator (or a shadow experiment)
may vary. They shape which bars are setups and where a bracket's levels sit; none of them
is a risk limit (those are constants in brain/risk/limits.py and no setting reaches them),
and each is bounded so a typo cannot make the strategy absurd."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from brain.config import Settings
    from brain.signals.state import MarketState

# Setting name -> (low, high): the range a configuration or a variant may use.
TUNABLE: dict[str, tuple[float, float]] = {
    "strategy_stop_atr": (1.0, 4.0),          # stop distance from the entry, in ATRs
    "strategy_target_atr": (1.0, 6.0),        # take-profit distance from the entry, in ATRs
    "strategy_align_threshold": (0.2, 0.8),   # |composite| before a side counts as signalled
}


@dataclass(frozen=True)
class StrategyParams:
    stop_atr: float = 2.0
    target_atr: float = 3.0
    align_threshold: float = 0.35

    @classmethod
    def of(cls, settings: Settings) -> "StrategyParams":
        return cls(settings.strategy_stop_atr, settings.strategy_target_atr, settings.strategy_align_threshold)

    def as_settings(self) -> dict[str, float]:
        """By their setting names, as recommendations and shadow experiments name them."""
        return {"strategy_stop_atr": self.stop_atr, "strategy_target_atr": self.target_atr,
                "strategy_align_threshold": self.align_threshold}

    @property
    def reward_risk(self) -> float:
        return self.target_atr / self.stop_atr


DEFAULT = StrategyParams()


# The boldest stance each computed regime allows; the Regime agent may only be more cautious.
REGIME_STANCE_CAP = {"trending_up": "risk_on", "trending_down": "risk_on", "ranging": "neutral",
                     "volatile": "risk_off"}


def stance_against(side: str | None, stance: str) -> bool:
    """Whether a stance rules out a trade on this side (today: risk_off rules out both)."""
    return stance == "risk_off"


def why_no_trade(state: MarketState) -> str | None:
    """Why a bar's cycle cannot end in an order, known from the bar alone, or None when it
    can: the signals must name a side, and a computed regime that caps the stance at
    risk_off rules a trade out (the Regime agent may only be more cautious than the computed
    regime). Such a cycle is decided without asking any model."""
    side = state.signalled_side
    if side is None:
        return f"signals do not align on a side (composite {state.composite:+.2f})"
    cap = REGIME_STANCE_CAP[state.computed_regime]
    if stance_against(side, cap):
        return f"the computed regime {state.computed_regime} allows no stance for a {side} (at most {cap})"
    return None


def can_trade(state: MarketState) -> bool:
    """Whether a bar's cycle could end in an order (see why_no_trade)."""
    return why_no_trade(state) is None
