"""The offline route: a deterministic answer per role computed from the numbers in the
inputs, so the whole system runs with no model at all (tests, backtests, no keys). Its
answers cost nothing and are labelled `offline` in the ledger and the journal."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rule = Callable[[dict[str, Any]], dict[str, Any]]
_RULES: dict[str, Rule] = {}


class NoOfflineRule(LookupError):
    pass


def register(skill_name: str, rule: Rule) -> None:
    _RULES[skill_name] = rule


def answer(skill_name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    try:
        rule = _RULES[skill_name]
    except KeyError:
        raise NoOfflineRule(f"no offline rule for skill {skill_name!r}") from None
    return rule(inputs)
