"""A throwaway, migrated database on the configured server, for benchmarks."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from collections.abc import Iterator

import psycopg
from psycopg import sql

from brain.db import migrate
from brain.db.urls import psycopg_conninfo, with_database


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(psycopg_conninfo(admin_url), autocommit=True) as conn:
        # DDL takes no bound parameters: the name is composed as an identifier psycopg quotes.
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = with_database(admin_url, name)
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(psycopg_conninfo(admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
