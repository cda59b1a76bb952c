"""The bus's named statements (queries.sql beside this file), and how its pools hand back
connections."""
from __future__ import annotations

import asyncpg

from brain.sql import queries_beside

Q = queries_beside(__file__, "queries.sql")
PUBLISH, PUBLISH_QUIET = Q["publish"], Q["publish_quiet"]


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without the default reset round trip: nothing here leaves session state
    behind (settings are SET LOCAL, listening has its own connection)."""
