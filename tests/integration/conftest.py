"""Integration tests: the product's parts in this process against a real PostgreSQL (a
database of their own per test), with fakes for the model APIs and the IB gateway; a few
start a process of their own (a bus consumer, brainctl, a model CLI stand-in).

The fixtures below are the connections and pools these tests take; the database fixtures
are in tests/conftest.py.
"""
from __future__ import annotations

import psycopg
import pytest

from tests.support.database import open_pool


@pytest.fixture
async def pool(db):
    """An asyncpg pool on the test database as brain_app, the role the brain runs as."""
    p = await open_pool(db, max_size=4)
    yield p
    await p.close()


@pytest.fixture
async def app_pool(db):
    """The same with room for eight connections, for the bus tests' workers and consumers."""
    p = await open_pool(db, max_size=8)
    yield p
    await p.close()


@pytest.fixture
def conn(db):
    """A psycopg connection as brain_watchdog, autocommit, as the watchdog holds one.
    (test_paper_broker has its own `conn`: asyncpg, as brain_app.)"""
    c = psycopg.connect(db.url("watchdog"), autocommit=True)
    yield c
    c.close()
