"""Parsing and validating one SKILL.md. The loader and `brainctl skills check` share this."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TypeVar

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from brain.errors import BrainError
from brain.skills.skill import Skill

REQUIRED_SECTIONS = ("Persona", "Inputs", "Output schema")
_Num = TypeVar("_Num", int, float)
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_SECTION = re.compile(r"^## +(.+?)\s*$", re.MULTILINE)
_JSON_BLOCK = re.compile(r"```json\s*\n(.*?)\n```", re.DOTALL)


class SkillInvalid(BrainError):
    """A skill file does not parse or does not validate."""


def parse_skill(path: Path, text: str | None = None) -> Skill:
    """The Skill in a SKILL.md, or SkillInvalid naming the file and the first problem."""
    where = str(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SkillInvalid(f"{where}: cannot read: {exc}") from None
    front = _FRONT.match(text)
    if not front:
        raise SkillInvalid(f"{where}: no YAML front matter (a '---' block at the top)")
    try:
        meta = yaml.safe_load(front.group(1)) or {}
    except yaml.YAMLError as exc:
        raise SkillInvalid(f"{where}: front matter is not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise SkillInvalid(f"{where}: front matter must be a mapping")
    for key in ("name", "description"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise SkillInvalid(f"{where}: front matter needs a non-empty '{key}'")
    extra = meta.get("metadata") or {}
    if not isinstance(extra, dict):
        raise SkillInvalid(f"{where}: 'metadata' must be a mapping")
    if not isinstance(extra.get("agent"), str):
        raise SkillInvalid(f"{where}: metadata.agent is required (which role uses this skill)")
    folder = path.parent.name
    if meta["name"] != folder:
        raise SkillInvalid(f"{where}: name '{meta['name']}' does not match its folder '{folder}'")

    body = text[front.end():]
    parts = _SECTION.split(body)
    sections = {title.strip(): content.strip() for title, content in zip(parts[1::2], parts[2::2])}
    for title in REQUIRED_SECTIONS:
        if not sections.get(title):
            raise SkillInvalid(f"{where}: missing or empty section '## {title}'")
    block = _JSON_BLOCK.search(sections["Output schema"])
    if not block:
        raise SkillInvalid(f"{where}: '## Output schema' needs a ```json fenced JSON Schema")
    try:
        schema = json.loads(block.group(1))
    except json.JSONDecodeError as exc:
        raise SkillInvalid(f"{where}: output schema is not JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SkillInvalid(f"{where}: output schema is not a valid JSON Schema: {exc.message}") from None
    if schema.get("type") != "object":
        raise SkillInvalid(f"{where}: output schema must describe a JSON object")

    def number(key: str, kind: type[_Num], low: float, high: float) -> _Num | None:
        value = extra.get(key)
        if value is None:
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise SkillInvalid(f"{where}: metadata.{key} must be a number in [{low}, {high}]")
        return kind(value)

    routes = extra.get("route_preference") or []
    if not isinstance(routes, list) or not all(isinstance(r, str) for r in routes):
        raise SkillInvalid(f"{where}: metadata.route_preference must be a list of route names")
    model = extra.get("model")
    if model is not None and not isinstance(model, str):
        raise SkillInvalid(f"{where}: metadata.model must be a string")
    return Skill(
        name=meta["name"], description=meta["description"].strip(), agent=extra["agent"],
        persona=sections["Persona"], inputs=sections["Inputs"], output_schema=schema, text=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(), path=path, model=model,
        temperature=number("temperature", float, 0, 2), max_tokens=number("max_tokens", int, 1, 64_000),
        route_preference=tuple(routes), metadata=extra,
    )
