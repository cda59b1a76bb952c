"""A parsed, validated skill file. Immutable: a reload produces a new Skill."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    agent: str
    persona: str
    inputs: str
    output_schema: dict[str, Any]
    text: str                      # the whole file as loaded; the prompt's cacheable part
    content_hash: str              # sha256 of text; recorded with every model call
    path: Path
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    route_preference: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
