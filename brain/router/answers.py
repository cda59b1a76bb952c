"""What a model call returns to an agent: a validated answer, or a typed failure."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator


@dataclass(frozen=True)
class ModelAnswer:
    data: dict[str, Any]
    route: str
    model: str
    skill: str
    skill_hash: str
    cost_usd: float
    latency_ms: float


@dataclass(frozen=True)
class ModelFailure:
    """Every route failed or was unavailable; the caller vetoes or skips, never guesses."""

    reason: str
    attempts: list[str] = field(default_factory=list)
    skill: str = ""
    skill_hash: str = ""


def schema_problem(schema: dict, text_or_data: str | dict | None) -> tuple[dict | None, str | None]:
    """(data, None) when the answer fits the schema, else (None, the first problem)."""
    if isinstance(text_or_data, str):
        text = text_or_data.strip()
        if text.startswith("```"):
            text = text.strip("`").split("\n", 1)[-1].rsplit("```", 1)[0]
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, f"answer is not JSON: {exc.msg}"
    else:
        data = text_or_data
    where = _non_finite(data)
    if where is not None:
        # NaN compares false against any minimum or maximum, so the schema would let it by.
        return None, f"{where or 'answer'}: not a finite number"
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "answer"
        return None, f"{where}: {err.message}"
    return data, None


def _non_finite(data: Any, path: str = "") -> str | None:
    """The path of the first NaN or infinity in a parsed answer, or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return path
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = _non_finite(value, f"{path}/{key}" if path else str(key))
        if found is not None:
            return found
    return None
