"""Which URL each process connects with.

Three database roles carry the trust boundary: brain_app (the brain), brain_watchdog and
brain_operator (brainctl). The admin URL (DATABASE_URL or the embedded superuser) only runs
migrations. A role URL is taken from its own setting, or derived from the admin URL by
switching the user name (trust or peer auth, or a password in BRAIN_<ROLE>_DB_PASSWORD).
"""
from __future__ import annotations

import os
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from brain.config import Settings
from brain.db.embedded import cluster_exists, ensure_embedded_server, recorded_url
from brain.errors import DatabaseUnavailable

Role = Literal["admin", "app", "watchdog", "operator"]
# With DATABASE_URL unset, how a process reaches the embedded server under BRAIN_HOME:
# "start" it (creating it the first time: the brain, migrations), start it only if it
# "exists" (brainctl: under a mistyped BRAIN_HOME it must not make a new one), or use the
# URL the brain "recorded" without ever starting one (the watchdog).
Embedded = Literal["start", "exists", "recorded"]
ROLE_USERS = {"app": "brain_app", "watchdog": "brain_watchdog", "operator": "brain_operator"}


def with_user(url: str, user: str, password: str | None = None, database: str | None = None) -> str:
    """The same server URL with another user (and optionally database)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    auth = quote(user) + (":" + quote(password) if password else "")
    path = "/" + database if database else parts.path
    return urlunsplit((parts.scheme, f"{auth}@{host}", path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def admin_url(settings: Settings, embedded: Embedded = "start") -> str:
    if settings.database_url:
        return settings.database_url
    if embedded == "exists" and not cluster_exists(settings.home):
        raise DatabaseUnavailable(f"no database under {settings.home} (BRAIN_HOME): start the brain "
                                  "there first, or set DATABASE_URL")
    if embedded != "recorded":
        return ensure_embedded_server(settings.home)
    url = recorded_url(settings.home)
    if url is None:
        raise DatabaseUnavailable(
            f"no database: DATABASE_URL is unset and no embedded server was started under {settings.home}"
        )
    return url


def role_url(settings: Settings, role: Role, embedded: Embedded = "start") -> str:
    if role == "admin":
        return admin_url(settings, embedded)
    explicit = getattr(settings, f"{role}_database_url")
    if explicit:
        return explicit
    password = os.environ.get(f"BRAIN_{role.upper()}_DB_PASSWORD")
    return with_user(admin_url(settings, embedded), ROLE_USERS[role], password)


def psycopg_conninfo(url: str) -> str:
    """psycopg and asyncpg both take postgresql:// URLs; normalise SQLAlchemy-style schemes."""
    for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url
