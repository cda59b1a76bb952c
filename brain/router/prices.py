"""The price table: cost of a call from its token counts."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from brain.errors import ConfigError

DEFAULT_TABLE = Path(__file__).with_name("prices.yaml")
# The providers answer with a dated snapshot of the model asked for (gpt-5-mini-2025-08-07,
# claude-...-20250929): priced as the model it is a snapshot of.
SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0          # uncached input
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class PriceTable:
    def __init__(self, path: Path = DEFAULT_TABLE) -> None:
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"price table {path}: {str(exc).splitlines()[0]}") from None
        self.models: dict[str, list[dict]] = {}
        for model, entries in (raw or {}).get("models", {}).items():
            for e in entries:
                missing = {"effective", "input", "output", "cache_write", "cache_read"} - set(e)
                if missing:
                    raise ConfigError(f"price table {path}: {model} lacks {', '.join(sorted(missing))}")
            self.models[model] = sorted(entries, key=lambda e: e["effective"])

    def _entries(self, model: str) -> list[dict]:
        return self.models.get(model) or self.models.get(SNAPSHOT_SUFFIX.sub("", model)) or []

    def knows(self, model: str) -> bool:
        return bool(self._entries(model))

    def cost(self, model: str, usage: Usage, on: date | None = None) -> float | None:
        """USD for the call, or None when the model is not in the table."""
        entries = self._entries(model)
        if not entries:
            return None
        return _priced(usage, self._current(entries, on))

    def highest(self, usage: Usage, on: date | None = None) -> float:
        """USD for the call at the table's highest rate for each kind of token: what an unpriced
        model's call is booked at, so that the daily budget still counts it (over, not under)."""
        current = [self._current(entries, on) for entries in self.models.values()]
        return _priced(usage, {k: max((p[k] for p in current), default=0.0)
                               for k in ("input", "output", "cache_read", "cache_write")})

    @staticmethod
    def _current(entries: list[dict], on: date | None) -> dict:
        on = on or date.today()
        return ([e for e in entries if e["effective"] <= on] or entries[:1])[-1]


def _priced(usage: Usage, p: dict) -> float:
    return (usage.input_tokens * p["input"] + usage.output_tokens * p["output"]
            + usage.cache_read_tokens * p["cache_read"] + usage.cache_write_tokens * p["cache_write"]) / 1e6
