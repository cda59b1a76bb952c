"""Every named query prepares against the migrated schema.

The queries are the `-- name:` blocks of the .sql files under brain/ and watchdog_proc/
(migrations/ are not named queries). Each one is parsed and planned by the server in a copy
of the migrated template database, without being run: a misspelt column, a table that a
migration renamed, or a parameter whose type PostgreSQL cannot infer fails here, named by
its file and query. Queries for psycopg (%s, %(name)s, %% for a literal percent) are turned
into $n placeholders the way psycopg turns them before sending; a statement of several
commands (run by psycopg without parameters) is prepared one command at a time.
"""
from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest

from brain.sql import load_queries
from tests.support.database import fresh_database
from tests.support.paths import REPO

FOLDERS = ("brain", "watchdog_proc")


def _named_query_files() -> list[Path]:
    """The .sql files that hold named queries (a file without a `-- name:` line is not one)."""
    files = []
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.sql")):
            if re.search(r"^--\s*name:", path.read_text(), re.MULTILINE):
                files.append(path)
    return files


def _cases() -> list:
    cases = []
    for path in _named_query_files():
        rel = path.relative_to(REPO).as_posix()
        try:
            names = list(load_queries(path))
        except ValueError as exc:  # a name defined twice: the file itself fails
            cases.append(pytest.param(path, None, str(exc), id=f"{rel}:<file>"))
            continue
        cases += [pytest.param(path, name, None, id=f"{rel}:{name}") for name in names]
    return cases


# What psycopg reads as a placeholder: %s (or %b, %t), %(name)s, and %% for a literal percent.
# Like psycopg, this does not look inside quotes: a lone % in a query run with parameters is
# an error there too.
_PSYCOPG_PLACEHOLDER = re.compile(r"%(?:\(([^)]+)\))?(.)", re.DOTALL)
_DOLLAR_PLACEHOLDER = re.compile(r"\$\d+")


def as_dollar_placeholders(query: str) -> str:
    """A psycopg query with $n placeholders, as psycopg sends it to the server; a query with
    no psycopg placeholders is returned as it is (it is run without parameters, or is for
    asyncpg)."""
    if not any(m.group(2) in "sbt" for m in _PSYCOPG_PLACEHOLDER.finditer(query) if m.group(0) != "%%"):
        return query
    if _DOLLAR_PLACEHOLDER.search(query):
        raise AssertionError("mixes $n (asyncpg) and % (psycopg) placeholders")
    out, last, named, positional = [], 0, {}, 0
    for m in _PSYCOPG_PLACEHOLDER.finditer(query):
        out.append(query[last:m.start()])
        last = m.end()
        name, fmt = m.groups()
        if m.group(0) == "%%":
            out.append("%")
            continue
        if fmt not in "sbt":
            raise AssertionError(f"{m.group(0)!r} is not a psycopg placeholder (a literal percent is %%)")
        if name is None:
            positional += 1
            out.append(f"${positional}")
        else:
            named.setdefault(name, len(named) + 1)
            out.append(f"${named[name]}")
    if positional and named:
        raise AssertionError("mixes %s and %(name)s placeholders")
    out.append(query[last:])
    return "".join(out)


_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|(\$[A-Za-z_]*\$).*?\1|;""", re.DOTALL)


def commands(query: str) -> list[str]:
    """The commands of a statement, split at the semicolons outside quotes and comments."""
    parts, start = [], 0
    for m in _TOKEN.finditer(query):
        if m.group(0) == ";":
            parts.append(query[start:m.start()])
            start = m.end()
    parts.append(query[start:])
    return [p.strip() for p in parts if p.strip()]


def test_the_converter_reads_placeholders_as_psycopg_does():
    assert as_dollar_placeholders("SELECT %s, %s") == "SELECT $1, $2"
    assert as_dollar_placeholders("SELECT %(a)s, %(b)s, %(a)s") == "SELECT $1, $2, $1"
    assert as_dollar_placeholders("SELECT %s WHERE k LIKE 'x%%'") == "SELECT $1 WHERE k LIKE 'x%'"
    assert as_dollar_placeholders("SELECT k FROM t WHERE k LIKE 'x:%'") == "SELECT k FROM t WHERE k LIKE 'x:%'"
    assert as_dollar_placeholders("SELECT $1 WHERE k LIKE 'x%'") == "SELECT $1 WHERE k LIKE 'x%'"
    with pytest.raises(AssertionError):
        as_dollar_placeholders("SELECT %s WHERE k LIKE 'x%'")
    with pytest.raises(AssertionError):
        as_dollar_placeholders("SELECT %s, %(a)s")
    assert commands("DELETE FROM a; DELETE FROM b WHERE c = ';'") == ["DELETE FROM a", "DELETE FROM b WHERE c = ';'"]
    assert commands("SELECT 1 -- no; split\n") == ["SELECT 1 -- no; split"]


@pytest.fixture(scope="module")
def schema_url(pg_server_url: str, template_db: str):
    """A copy of the migrated template, so that other tests can still clone the template."""
    with fresh_database(pg_server_url, "brain_q", template=template_db) as database:
        yield database.admin_url


@pytest.fixture(scope="module")
async def schema(schema_url: str):
    conn = await asyncpg.connect(schema_url)
    yield conn
    await conn.close()


def test_there_are_named_queries_to_check():
    files = {p.relative_to(REPO).as_posix() for p in _named_query_files()}
    assert {"brain/bus/queries.sql", "brain/agents/executor.sql", "watchdog_proc/checks.sql"} <= files


@pytest.mark.parametrize(("path", "name", "file_error"), _cases())
async def test_named_query_prepares(schema: asyncpg.Connection, path: Path, name: str | None,
                                    file_error: str | None):
    assert file_error is None, file_error
    query = load_queries(path)[name]
    assert query, "the query is empty"
    for command in commands(as_dollar_placeholders(query)):
        try:
            await schema.prepare(command)
        except asyncpg.PostgresError as exc:
            pytest.fail(f"{type(exc).__name__}: {exc}\n--- the command:\n{command}")
