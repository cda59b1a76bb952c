"""The test databases: the server the suite runs on, and a database on it with helpers for
reaching it as each role. The fixtures in tests/conftest.py (and the folders' conftest.py)
make them; tests get them from there."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import asyncpg
import psycopg

from brain.config import Settings, load_settings
from brain.db.embedded import ensure_embedded_server
from brain.db.urls import ROLE_USERS, psycopg_conninfo, with_database, with_user
from tests.support.paths import REPO


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False  # a helper, not a test class, wherever a test module imports it

    name: str
    admin_url: str

    def url(self, role: str = "admin") -> str:
        if role == "admin":
            return self.admin_url
        return with_user(self.admin_url, ROLE_USERS[role])

    def env(self, home: Path) -> dict[str, str]:
        """Environment for a real brain/watchdog/brainctl process using this database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRAIN_")}
        env.update(DATABASE_URL=self.admin_url, BRAIN_HOME=str(home), PYTHONUNBUFFERED="1")
        return env

    def settings(self, home: Path, **overrides) -> Settings:
        return load_settings(database_url=self.admin_url, home=home, **overrides)

    def sql(self, query: str, params=None, role: str = "admin"):
        """Run one statement and return all rows (or None for statements without rows)."""
        with psycopg.connect(psycopg_conninfo(self.url(role)), autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None


def server_url() -> str:
    """DATABASE_URL when set; otherwise the embedded server under .brain-test/."""
    external = os.environ.get("DATABASE_URL")
    if external:
        return external
    return ensure_embedded_server(REPO / ".brain-test")


def admin(url: str, statement: str) -> None:
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def fresh_database(url: str, prefix: str, template: str | None = None) -> Iterator[TestDatabase]:
    """A database of its own on the server at `url`, empty or a clone of `template`,
    dropped when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin(url, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield TestDatabase(name=name, admin_url=with_database(url, name))
    finally:
        admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def open_pool(db: TestDatabase, max_size: int = 4) -> asyncpg.Pool:
    """An asyncpg pool on the test database as brain_app, the role the brain runs as."""
    return await asyncpg.create_pool(db.url("app"), min_size=1, max_size=max_size)
