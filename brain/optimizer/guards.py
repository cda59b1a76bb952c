"""Guard rails enforced in code, not in the prompt."""
from __future__ import annotations

import re

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


def canonical(name: str) -> str:
    """A target as the guards compare it, however it is spelled: "./Risk-Gate/" and "risk gate"
    are risk_gate, "max open positions" is max_open_positions."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def check_target(target: str) -> None:
    lowered = canonical(target)
    for word in FORBIDDEN:
        if canonical(word) in lowered:
            raise ForbiddenTarget(f"{target!r} is out of bounds for the optimizer (hard limits, the watchdog, "
                                  "halts, its own skill and tests are not its to tune)")
