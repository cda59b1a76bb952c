"""migrations/schema.sql is the schema the revisions build: loaded into an empty database, it
gives the catalog upgrade-from-empty gives."""
from __future__ import annotations

import psycopg
import pytest

from brain.db import migrate
from brain.db.urls import psycopg_conninfo
from tests.integration.schema_signature import schema_signature, signature_difference
from tests.support.database import TestDatabase, fresh_database
from tests.support.paths import REPO

SCHEMA_FILE = REPO / "migrations" / "schema.sql"


@pytest.fixture
def second_empty_db(pg_server_url: str):
    with fresh_database(pg_server_url, "brain_s") as database:
        yield database


def load_schema_file(db: TestDatabase) -> None:
    """The whole file in one transaction, as `psql --single-transaction` runs it."""
    with psycopg.connect(psycopg_conninfo(db.admin_url)) as conn:
        conn.execute(SCHEMA_FILE.read_text())


def test_schema_file_equals_the_migrations(empty_db, second_empty_db):
    migrate.upgrade(empty_db.admin_url)
    migrated = schema_signature(empty_db)
    # The roles exist by now (the cluster is shared): the file must create them only when missing.
    load_schema_file(second_empty_db)
    from_file = schema_signature(second_empty_db)

    assert len(migrated["columns"]) > 50 and migrated["functions"] and migrated["policies"]
    assert from_file == migrated, (
        "migrations/schema.sql no longer builds the schema the revisions build:\n"
        + signature_difference(migrated, from_file, "migrations", "schema.sql"))
