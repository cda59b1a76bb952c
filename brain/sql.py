"""Named SQL queries kept in .sql files beside the code that owns the tables.

A file holds blocks that start with a line `-- name: <query_name>`; the lines after it, up
to the next such line, are the statement. Parameters are always bound ($1 for asyncpg,
%(name)s or %s for psycopg), never formatted into the text.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_HEADER = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)


@cache
def load_queries(path: str | Path) -> dict[str, str]:
    text = Path(path).read_text()
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        if name in queries:
            raise ValueError(f"{path}: query {name!r} defined twice")
        queries[name] = body.strip().rstrip(";")
    return queries


def queries_beside(module_file: str, filename: str) -> dict[str, str]:
    """The named queries of a .sql file in the same folder as a module."""
    return load_queries(Path(module_file).with_name(filename))
