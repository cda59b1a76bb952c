"""Revisions keep their SQL in `<revision file stem>.up.sql` / `.down.sql` beside them."""
from __future__ import annotations

import re
from pathlib import Path

from alembic import op

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def run_sql(revision_file: str, direction: str) -> None:
    path = Path(revision_file).with_suffix(f".{direction}.sql")
    op.execute(path.read_text())


def function_definition(sql: str, name: str) -> str | None:
    """The last `CREATE [OR REPLACE] FUNCTION name(...) ... $$body$$ ...;` statement in sql,
    written as CREATE OR REPLACE; None when sql defines no function of that name. The body
    must be dollar-quoted (every revision's is)."""
    starts = list(re.finditer(rf"^CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:public\.)?{re.escape(name)}\s*\(",
                              sql, re.MULTILINE | re.IGNORECASE))
    if not starts:
        return None
    start = starts[-1]
    opening = _DOLLAR_TAG.search(sql, start.end())
    if opening is None:
        raise ValueError(f"function {name}: no dollar-quoted body")
    closing = sql.find(opening.group(0), opening.end())
    end = sql.find(";", closing + len(opening.group(0))) if closing >= 0 else -1
    if end < 0:
        raise ValueError(f"function {name}: its body or statement does not end")
    head = re.sub(r"^CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION", "CREATE OR REPLACE FUNCTION", start.group(0),
                  flags=re.IGNORECASE)
    return head + sql[start.end():end + 1]


def previous_function_definition(revision_file: str, name: str) -> str:
    """Function `name` as the nearest earlier revision's .up.sql defines it: what a revision that
    replaced it restores in its downgrade, instead of another hand-written copy."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(Path(__file__).parent))
    stem = Path(revision_file).name.split(".")[0]
    current = next((s for s in scripts.walk_revisions() if Path(s.path).name.split(".")[0] == stem), None)
    if current is None:
        raise LookupError(f"{revision_file} is not a revision")
    down = current.down_revision
    while down is not None:
        if not isinstance(down, str):
            raise LookupError(f"revision {current.revision} follows a merge; name the definition to restore by hand")
        script = scripts.get_revision(down)
        up = Path(script.path).with_suffix(".up.sql")
        definition = function_definition(up.read_text(), name) if up.exists() else None
        if definition is not None:
            return definition
        down = script.down_revision
    raise LookupError(f"no revision before {current.revision} defines function {name}")


def restore_previous_function(revision_file: str, name: str) -> None:
    """In a downgrade: put function `name` back as the nearest earlier revision defined it."""
    op.execute(previous_function_definition(revision_file, name))
