"""The bus tests' payloads, and a Bus on the test database."""
from __future__ import annotations

from pathlib import Path

from brain.bus import Bus
from brain.messages import Payload, topic


@topic("test.ping")
class Ping(Payload):
    n: int
    sent_at: float = 0.0


@topic("test.pong")
class Pong(Payload):
    n: int
    by: str


def make_bus(db, pool, home: Path, **settings) -> Bus:
    """A Bus on the test database as brain_app, LISTENing there too, with these settings
    over the defaults."""
    return Bus(pool, settings=db.settings(home, **settings), listen_url=db.url("app"))


async def deliveries_done(db, n: int) -> bool:
    """At least n deliveries are done (an async predicate for wait_until)."""
    return db.sql("SELECT count(*) FROM agent_deliveries WHERE state = 'done'")[0][0] >= n
