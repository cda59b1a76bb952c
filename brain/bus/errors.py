"""What the bus raises, and how it sorts what the database raises: a message's own fault
(retried, then dead-lettered) from the server's trouble (waited out, never a message's fault)."""
from __future__ import annotations

import asyncio

import asyncpg

from brain.errors import BrainError

# What the publishing connection raises when it is lost (it is then opened anew).
CONNECTION_LOST = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
# A prepared statement the server no longer accepts as prepared (its tables changed).
STALE_STATEMENT = (asyncpg.exceptions.InvalidCachedStatementError, asyncpg.exceptions.OutdatedSchemaCacheError)
# What a lost connection or a restarting server raises; consumers wait and carry on.
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)
# What the database raises when it goes away or is in trouble for a while (a lost connection,
# a server shutting down, disk or memory full, too many connections): never a message's fault.
SERVER_TROUBLE = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                  asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError)
# The same seen from the client (no route to the server, no answer in time): an ack is retried
# through these while its lease may still hold, rather than leaving finished work to be redone.
UNAVAILABLE = (OSError, asyncio.TimeoutError, *SERVER_TROUBLE)
# What an ack's statements raise for one message's outputs: data the database refuses.
REFUSED_DATA = (asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError)


class Reject(BrainError):
    """The handler refuses this message for good: dead-letter it now, do not retry."""


class OwnWritesFailed(BrainError):
    """A handler's own writes in its ack's transaction (HandlerResult.in_tx) raised: its
    message's failure, whatever they raised, short of SERVER_TROUBLE."""
