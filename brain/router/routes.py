"""Routes: each turns a prompt into raw answer text plus token usage, or raises RouteError
with a failure class the breaker and the ledger understand."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from brain.router.prices import Usage
from brain.skills.skill import Skill


class RouteError(Exception):
    def __init__(self, error_class: str, detail: str, usage: Usage | None = None) -> None:
        super().__init__(f"{error_class}: {detail}")
        self.error_class = error_class      # rate_limit, overloaded, server, timeout, connection,
        self.detail = detail                # usage_limit, refused, bad_request, unavailable
        self.usage = usage or Usage()


@dataclass(frozen=True)
class Prompt:
    system: str            # doctrine + skill text: byte-identical across calls, so it caches
    user: str              # this call's numbers as canonical JSON
    schema: dict[str, Any]
    model: str | None
    max_tokens: int
    temperature: float


@dataclass(frozen=True)
class Reply:
    text: str | None
    data: dict[str, Any] | None
    usage: Usage
    model: str


class Route(Protocol):
    name: str
    zero_cost: bool

    def model_for(self, prompt: Prompt) -> str:
        """The model this route calls for the prompt: what a failed call is booked under."""

    async def complete(self, skill: Skill, prompt: Prompt) -> Reply: ...


def claude_family(prompt: Prompt, default: str) -> str:
    """A skill's own model when it is a Claude model, else the route's default."""
    return prompt.model if prompt.model and prompt.model.startswith("claude") else default


def openai_family(prompt: Prompt, default: str) -> str:
    """A skill's own model unless it is a Claude model, else the route's default."""
    return prompt.model if prompt.model and not prompt.model.startswith("claude") else default


def build_prompt(philosophy: str, skill: Skill, inputs: dict[str, Any], repair: str | None = None) -> Prompt:
    system = f"{philosophy.strip()}\n\n---\n\n{skill.text.strip()}\n"
    user = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    user += ("\n\nAnswer with one JSON object that matches the output schema, and nothing else."
             if repair is None else
             f"\n\nYour previous answer was rejected: {repair}. Answer again with one JSON object "
             "that matches the output schema exactly, and nothing else.")
    return Prompt(system, user, skill.output_schema, skill.model, skill.max_tokens or 1024,
                  skill.temperature if skill.temperature is not None else 0.0)


class OfflineRoute:
    name = "offline"
    zero_cost = True

    def model_for(self, prompt: Prompt) -> str:
        return "deterministic-rules"

    async def complete(self, skill: Skill, prompt: Prompt) -> Reply:
        from brain.router import offline

        try:
            data = offline.answer(skill.name, json.loads(prompt.user.split("\n\n", 1)[0]))
        except offline.NoOfflineRule as exc:
            raise RouteError("unavailable", str(exc)) from None
        return Reply(None, data, Usage(), self.model_for(prompt))
