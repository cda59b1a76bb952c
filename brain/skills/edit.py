"""A recommendation's edit of a skill file: one exact find-and-replace that must still load."""
from __future__ import annotations

from pathlib import Path

from brain.errors import BrainError
from brain.skills.parse import SkillInvalid, parse_skill


def edited_text(path: Path, edit: dict) -> tuple[str, str]:
    """The file's text before and after the edit; BrainError when the text to replace is not
    there exactly once or the result would not load. Writes nothing."""
    old = path.read_text()
    found = old.count(edit["find"])
    if found != 1:
        raise BrainError(f"the text to replace occurs {found} times in {path}, not once: edit by hand")
    new = old.replace(edit["find"], edit["replace"], 1)
    try:
        parse_skill(path, new)
    except SkillInvalid as exc:
        raise BrainError(f"the change would break the skill: {exc}") from None
    return old, new
