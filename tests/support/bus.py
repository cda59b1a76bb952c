"""The bus tests' payloads, and a Bus on the test database."""
from __future__ import annotations

from pathlib import Path

from brain.bus import Bus, Outgoing
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


# Bus settings for tests: polls every 0.5 s, retries from 50 ms.
QUICK = {"bus_poll_interval_s": 0.5, "bus_backoff_base_s": 0.05}


def ping(i: int) -> Outgoing:
    """A test.ping numbered i, in a cycle of its own."""
    return Outgoing("test.ping", Ping(n=i), "test", correlation_id=f"c{i}")


async def delivery_states(db) -> dict[int, str]:
    """Each delivery's state, by the number of the ping it delivers."""
    return dict(db.sql("""SELECT (m.payload->>'n')::int, d.state FROM agent_deliveries d
                          JOIN agent_messages m ON m.id = d.message_id"""))
