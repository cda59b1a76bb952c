"""Publishing from a synchronous psycopg connection (the watchdog's way onto the bus): the
bus's own statement, in the caller's transaction, heard by the bus's consumers."""
from __future__ import annotations

import asyncio

import psycopg
import pytest

from brain.bus import Bus
from brain.db.bus_publish import publish_sync
from brain.errors import PayloadInvalid
from tests.support.bus import Ping
from tests.support.waiting import wait_until


async def test_a_message_published_from_psycopg_reaches_a_consumer_once_its_transaction_commits(db, pool, brain_home):
    got: list[tuple[int, str, str | None]] = []

    async def handler(d):
        got.append((d.payload.n, d.from_agent, d.correlation_id))

    # A long poll: only the notification can bring the message in time.
    bus = Bus(pool, settings=db.settings(brain_home, bus_poll_interval_s=30), listen_url=db.url("app"))
    bus.consumer("hears-sync", ["test.ping"], handler)
    await bus.start()
    try:
        await asyncio.wait_for(bus.listener.connected.wait(), 5)
        with psycopg.connect(db.url("watchdog")) as conn:
            message_id = publish_sync(conn, "test.ping", Ping(n=7), from_agent="watchdog", correlation_id="c-7")
            await asyncio.sleep(0.3)
            assert got == [], "nothing is heard before the publishing transaction commits"
            assert db.sql("SELECT count(*) FROM agent_messages WHERE id = %s", (message_id,)) == [(0,)]
        await wait_until(lambda: _async(got), timeout=5)
    finally:
        await bus.stop()
    assert got == [(7, "watchdog", "c-7")]
    [(topic, payload)] = db.sql("SELECT topic, payload FROM agent_messages WHERE id = %s", (message_id,))
    assert (topic, payload) == ("test.ping", {"n": 7, "sent_at": 0.0})


def test_a_payload_that_does_not_fit_its_topic_is_refused_and_nothing_is_stored(db):
    with psycopg.connect(db.url("watchdog")) as conn:
        with pytest.raises(PayloadInvalid, match="test.ping"):
            publish_sync(conn, "test.ping", {"n": "seven"}, from_agent="watchdog")
        conn.commit()
    assert db.sql("SELECT count(*) FROM agent_messages") == [(0,)]


async def _async(value: list) -> bool:
    return bool(value)
