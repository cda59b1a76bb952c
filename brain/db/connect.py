"""Open connections: asyncpg pools for the service, psycopg for the CLI and migrations."""
from __future__ import annotations

import asyncpg
import psycopg

from brain.config import Settings
from brain.db.urls import Role, psycopg_conninfo, role_url
from brain.errors import DatabaseUnavailable, one_line


def _unreachable(url: str, exc: Exception) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"database unreachable: {one_line(exc)}")


async def create_pool(url: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    try:
        from brain.bus import keep_session

        return await asyncpg.create_pool(psycopg_conninfo(url), min_size=min_size, max_size=max_size,
                                         reset=keep_session)
    except (OSError, asyncpg.PostgresError) as exc:
        raise _unreachable(url, exc) from None


async def connect_async(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(psycopg_conninfo(url))
    except (OSError, asyncpg.PostgresError) as exc:
        raise _unreachable(url, exc) from None


def connect_sync(settings: Settings, role: Role, autocommit: bool = True) -> psycopg.Connection:
    """A psycopg connection as the given role; a one-line DatabaseUnavailable when it fails."""
    url = role_url(settings, role, embedded="exists")
    try:
        return psycopg.connect(psycopg_conninfo(url), autocommit=autocommit, connect_timeout=5)
    except psycopg.Error as exc:
        raise _unreachable(url, exc) from None
