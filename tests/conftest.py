"""Fixtures shared by the whole suite: a real PostgreSQL and a migrated database per test.

The schema is migrated once per session into a template database; each test gets its own
clone (CREATE DATABASE ... TEMPLATE), so tests never see each other's rows. Without
DATABASE_URL the server is the embedded one under .brain-test/ (what `make test` uses);
with it, the suite runs against that server instead.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psycopg
import pytest

from brain.config import Settings, load_settings
from brain.db import migrate
from brain.db.embedded import ensure_embedded_server
from brain.db.urls import ROLE_USERS, psycopg_conninfo, with_database, with_user

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TestDatabase:
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


def _server_url() -> str:
    external = os.environ.get("DATABASE_URL")
    if external:
        return external
    return ensure_embedded_server(REPO / ".brain-test")


def _admin(url: str, statement: str) -> None:
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str):
    name = f"brain_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _admin(pg_server_url, f'CREATE DATABASE "{name}"')
    migrate.upgrade(with_database(pg_server_url, name))
    yield name
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(pg_server_url: str, template_db: str):
    name = f"brain_t_{uuid.uuid4().hex[:12]}"
    _admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield TestDatabase(name=name, admin_url=with_database(pg_server_url, name))
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_db(pg_server_url: str):
    """A database with no schema at all, for migration tests."""
    name = f"brain_e_{uuid.uuid4().hex[:12]}"
    _admin(pg_server_url, f'CREATE DATABASE "{name}"')
    yield TestDatabase(name=name, admin_url=with_database(pg_server_url, name))
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def brain_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
async def pool(db: TestDatabase):
    """An asyncpg pool on the test database as brain_app, the role the brain runs as."""
    p = await asyncpg.create_pool(db.url("app"), min_size=1, max_size=4)
    yield p
    await p.close()
