"""Run the alembic migrations in migrations/ against an admin URL."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import migrations
from brain.db.urls import psycopg_conninfo
from brain.sql import queries_beside

Q = queries_beside(__file__, "migrate.sql")

if TYPE_CHECKING:
    from alembic.config import Config


def _config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # alembic's config is ConfigParser-based: '%' must be doubled.
    cfg.set_main_option("sqlalchemy.url", psycopg_conninfo(url).replace("postgresql://", "postgresql+psycopg://", 1).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(_config(url), revision)


def current(url: str) -> str | None:
    import psycopg

    with psycopg.connect(psycopg_conninfo(url)) as conn:
        found = conn.execute(Q["has_version_table"]).fetchone()
        assert found is not None  # a SELECT without FROM: one row
        exists = found[0]
        if not exists:
            return None
        row = conn.execute(Q["version"]).fetchone()
        return row[0] if row else None


def role_passwords() -> dict[str, str]:
    """Each role's password from BRAIN_<ROLE>_DB_PASSWORD; ConfigError naming the first that
    is missing, before anything is changed."""
    import os

    from brain.db.urls import ROLE_USERS
    from brain.errors import ConfigError

    passwords = {}
    for role, user in ROLE_USERS.items():
        password = os.environ.get(f"BRAIN_{role.upper()}_DB_PASSWORD")
        if not password:
            raise ConfigError(f"BRAIN_{role.upper()}_DB_PASSWORD is not set")
        passwords[user] = password
    return passwords


def set_role_passwords(url: str) -> list[str]:
    """ALTER ROLE ... PASSWORD for every role, from BRAIN_<ROLE>_DB_PASSWORD (all of them, or none)."""
    import psycopg
    from psycopg import sql

    passwords = role_passwords()
    with psycopg.connect(psycopg_conninfo(url)) as conn, conn.transaction():
        for user, password in passwords.items():
            # ALTER ROLE takes no bound parameters: psycopg composes the role as a quoted
            # identifier and the password as a quoted literal.
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
    return list(passwords)
