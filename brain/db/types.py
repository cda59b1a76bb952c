"""The asyncpg handles query code is given, for annotations.

A connection taken from a pool is a PoolConnectionProxy, which forwards to a Connection but
is not one; code that runs a query on either says so with these."""
from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# One connection: opened alone, or taken from a pool.
Conn: TypeAlias = "asyncpg.Connection | PoolConnectionProxy"
# Anything with fetch/fetchrow/fetchval/execute: a pool runs each query on a connection of its own.
Queryable: TypeAlias = "asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy"
