"""Guard rails enforced in code, not in the prompt."""
from __future__ import annotations

from brain.errors import BrainError

MIN_CLOSED_TRADES = 50        # before any recommendation about a parameter
MIN_OBSERVATIONS = 30         # before any recommendation about a filter (a veto or skip rule)
# Names that mean a hard limit, the watchdog, halts, the optimizer itself, or tests.
FORBIDDEN = ("limit", "watchdog", "halt", "self-optimizer", "self_optimizer", "test", "drawdown", "max_",
             "kelly", "budget", "risk_per_trade", "position_fraction", "daily_loss", "open_positions")


class InsufficientData(BrainError):
    """Too little data behind a recommendation to make it."""


class ForbiddenTarget(BrainError):
    """The optimizer may not touch this."""


def require(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise InsufficientData(f"insufficient data: {n} {what}, at least {minimum} needed")


def check_target(target: str) -> None:
    lowered = target.lower()
    for word in FORBIDDEN:
        if word in lowered:
            raise ForbiddenTarget(f"{target!r} is out of bounds for the optimizer (hard limits, the watchdog, "
                                  "halts, its own skill and tests are not its to tune)")
