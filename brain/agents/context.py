"""What every agent is handed: the database, the router, the skills, the broker."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import ValidationError

from brain.agents.answers import ACCEPTS
from brain.topics import ModelCall
from brain.broker.base import Broker
from brain.config import Settings
from brain.errors import first_problem
from brain.router.answers import ModelAnswer, ModelFailure
from brain.router.router import Router
from brain.skills.registry import SkillRegistry


@dataclass
class AgentContext:
    pool: asyncpg.Pool
    router: Router
    skills: SkillRegistry
    broker: Broker
    settings: Settings
    context_dir: Path

    async def ask(self, agent: str, skill_name: str, inputs: dict[str, Any],
                  correlation_id: str | None) -> ModelAnswer | ModelFailure:
        """The model's answer, within the bounds the code sets for this skill (see answers.py)."""
        answer = await self.router.call(agent, self.skills.get(skill_name), inputs, correlation_id)
        accepts = ACCEPTS.get(skill_name)
        if accepts is None or isinstance(answer, ModelFailure):
            return answer
        try:
            data = accepts.model_validate(answer.data).model_dump()
        except ValidationError as exc:
            where, what = first_problem(exc, "answer")
            return ModelFailure(f"the answer is outside what the code takes: {where}: {what}",
                                [f"{answer.route}: {where}: {what}"], answer.skill, answer.skill_hash)
        return replace(answer, data=data)


def call_info(answer: ModelAnswer) -> ModelCall:
    return ModelCall(route=answer.route, model=answer.model, skill=answer.skill, skill_hash=answer.skill_hash,
                     cost_usd=answer.cost_usd, latency_ms=round(answer.latency_ms, 3))
