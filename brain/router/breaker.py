"""One circuit breaker per route: closed, open after N consecutive failures, half-open after
a cooldown with exactly one trial call, closed again when the trial succeeds."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("brain.router")

State = Literal["closed", "open", "half_open"]


@dataclass
class Breaker:
    route: str
    threshold: int
    cooldown_s: float
    state: State = "closed"
    failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    changed: bool = False            # set on a state change, cleared once persisted

    def allow(self) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open":
            if self.clock() - self.opened_at < self.cooldown_s:
                return False
            self._move("half_open")
        if self.trial_in_flight:
            return False
        self.trial_in_flight = True   # exactly one trial while half-open
        return True

    def success(self) -> None:
        self.failures = 0
        self.trial_in_flight = False
        if self.state != "closed":
            self._move("closed")

    def abandon(self) -> None:
        """A call given up without an outcome (stopping): a half-open breaker may try again."""
        self.trial_in_flight = False

    def failure(self) -> None:
        self.trial_in_flight = False
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            self.opened_at = self.clock()
            if self.state != "open":
                self._move("open")

    def _move(self, state: State) -> None:
        log.warning("route %s breaker %s -> %s (consecutive failures: %d)", self.route, self.state, state,
                    self.failures)
        self.state = state
        self.changed = True

    def snapshot(self) -> dict:
        return {"state": self.state, "failures": self.failures, "threshold": self.threshold,
                "cooldown_s": self.cooldown_s}
