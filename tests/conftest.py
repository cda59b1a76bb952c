"""Fixtures shared by the whole suite: a real PostgreSQL and a migrated database per test.

The schema is migrated once per session into a template database; each test gets its own
clone (CREATE DATABASE ... TEMPLATE), so tests never see each other's rows. Without
DATABASE_URL the server is the embedded one under .brain-test/ (what `make test` uses);
with it, the suite runs against that server instead.

Fixtures only one folder uses live in that folder's conftest.py; helpers the tests import
live in tests/support/.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from brain.db import migrate
from brain.db.urls import with_database
from tests.support.database import admin, fresh_database, server_url


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    return server_url()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str):
    name = f"brain_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin(pg_server_url, f'CREATE DATABASE "{name}"')
    migrate.upgrade(with_database(pg_server_url, name))
    yield name
    admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(pg_server_url: str, template_db: str):
    with fresh_database(pg_server_url, "brain_t", template=template_db) as database:
        yield database


@pytest.fixture
def empty_db(pg_server_url: str):
    """A database with no schema at all: for migration tests, and for what a command does
    on a database never migrated."""
    with fresh_database(pg_server_url, "brain_e") as database:
        yield database


@pytest.fixture
def brain_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home
