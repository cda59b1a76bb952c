"""The durable bus against a real PostgreSQL: claims and take-in, fan-out, publishing, replay."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from brain.errors import PayloadInvalid
from tests.support.bus import QUICK, Ping, Pong, deliveries_done, make_bus, ping
from tests.support.waiting import wait_until



async def test_two_workers_of_one_consumer_never_both_handle_a_message(db, app_pool, brain_home):
    seen: list[int] = []

    async def handler(d):
        seen.append(d.payload.n)
        await asyncio.sleep(0.001)
        return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="worker")]

    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("worker", ["test.ping"], handler, batch=5, concurrency=4)
    await bus.start()
    try:
        await bus.publish_many([ping(i) for i in range(300)])
        await wait_until(lambda: deliveries_done(db, 300))
    finally:
        await bus.stop()
    assert sorted(seen) == list(range(300)), "each message handled exactly once"
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic='test.pong'") == [(300,)]


async def test_fan_out_delivers_one_copy_per_subscriber(db, app_pool, brain_home):
    got: dict[str, list[int]] = {"a": [], "b": []}

    def collect(name):
        async def handler(d):
            got[name].append(d.payload.n)
        return handler

    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("a", ["test.ping"], collect("a"))
    bus.consumer("b", ["test.ping"], collect("b"))
    await bus.start()
    try:
        for i in range(20):
            await bus.publish("test.ping", Ping(n=i), from_agent="test")
        await wait_until(lambda: deliveries_done(db, 40))
    finally:
        await bus.stop()
    assert sorted(got["a"]) == list(range(20)) and sorted(got["b"]) == list(range(20))


async def test_a_claim_leases_what_it_takes_in_up_to_its_batch_and_what_waits_goes_first(db, app_pool, brain_home):
    db.sql("INSERT INTO bus_consumers (consumer) VALUES ('solo')")
    db.sql("INSERT INTO bus_subscriptions (topic, consumer) VALUES ('test.ping', 'solo')")
    bus = make_bus(db, app_pool, brain_home, **QUICK)
    owner = uuid.uuid4()
    writes: list[tuple[int, int]] = []  # deliveries (inserted, updated) by each claim

    async def publish(n: int) -> None:
        await bus.publish("test.ping", Ping(n=n), from_agent="test")

    async def claim(limit: int) -> list[tuple[int, int]]:
        # this session's counts not yet reported can show up here too: take the difference
        counts = """SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'agent_deliveries'"""
        async with app_pool.acquire() as conn, conn.transaction():
            before = await conn.fetchrow(counts)
            rows = await conn.fetch("SELECT payload, attempts FROM bus_claim('solo', $1, $2, 30)", limit, owner)
            after = await conn.fetchrow(counts)
            writes.append((after[0] - before[0], after[1] - before[1]))
        return [(json.loads(r["payload"])["n"], r["attempts"]) for r in rows]

    def states() -> list[tuple[str, int]]:
        return db.sql("SELECT state, count(*) FROM agent_deliveries GROUP BY 1 ORDER BY 1")

    try:
        for n in range(5):
            await publish(n)
        assert await claim(2) == [(0, 1), (1, 1)]
        assert states() == [("pending", 3), ("working", 2)], "taken in: two leased at once, the rest wait"
        await publish(5)
        assert await claim(2) == [(2, 1), (3, 1)], "what waited went first; the batch was full"
        assert states() == [("pending", 2), ("working", 4)]
        assert await claim(5) == [(4, 1), (5, 1)]
        assert await claim(5) == [] and states() == [("working", 6)]
        assert writes == [(5, 0), (1, 2), (0, 2), (0, 0)], "a delivery leased as it is taken in is written once"
    finally:
        await bus.stop()


async def test_publish_validates_and_joins_the_callers_transaction(db, app_pool, brain_home):
    bus = make_bus(db, app_pool, brain_home, **QUICK)
    with pytest.raises(PayloadInvalid, match="test.ping: n"):
        await bus.publish("test.ping", {"n": "x"}, from_agent="test")
    async with app_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await bus.publish("test.ping", Ping(n=1), from_agent="test", conn=conn)
        await tx.rollback()
    await bus.stop()
    assert db.sql("SELECT count(*) FROM agent_messages") == [(0,)]


async def test_a_lost_publishing_connection_fails_one_publish_and_the_next_reconnects(db, app_pool, brain_home):
    bus = make_bus(db, app_pool, brain_home, **QUICK)
    try:
        first = await bus.publish("test.ping", {"n": 1}, from_agent="test")  # a dict is validated, then stored
        db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'brain_app' AND pid <> "
               "pg_backend_pid() AND query LIKE '%INSERT INTO agent_messages%'")
        with pytest.raises((OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
            for n in range(2, 50):  # until the client notices the connection is gone
                await bus.publish("test.ping", Ping(n=n), from_agent="test")
        again = await bus.publish("test.ping", Ping(n=99), from_agent="test")
    finally:
        await bus.stop()
    assert again > first
    assert db.sql("SELECT payload->>'n' FROM agent_messages WHERE id IN (%s, %s) ORDER BY id", (first, again)) == [
        ("1",), ("99",)]


async def test_a_publish_whose_prepared_statement_a_migration_made_stale_goes_through(db, app_pool, brain_home):
    bus = make_bus(db, app_pool, brain_home, **QUICK)
    try:
        first = await bus.publish("test.ping", Ping(n=1), from_agent="test")  # prepares the insert
        # The id the insert returns changes type: the server refuses the statement prepared before.
        db.sql("DROP VIEW bus_backlog")
        db.sql("ALTER TABLE agent_messages ALTER COLUMN id TYPE integer")
        second = await bus.publish("test.ping", Ping(n=2), from_agent="test")
        third = await bus.publish("test.ping", Ping(n=3), from_agent="test")  # prepared again
    finally:
        await bus.stop()
    assert (second, third) == (first + 1, first + 2)
    assert db.sql("SELECT payload->>'n' FROM agent_messages ORDER BY id") == [("1",), ("2",), ("3",)]


async def test_replay_reads_back_a_time_window(db, app_pool, brain_home):
    bus = make_bus(db, app_pool, brain_home, **QUICK)
    for i in range(3):
        await bus.publish("test.ping", Ping(n=i), from_agent="test", correlation_id="cycle-1")
    await bus.publish("test.pong", Pong(n=9, by="x"), from_agent="test")
    await bus.stop()
    now = datetime.now(timezone.utc)
    rows = await bus.replay(now - timedelta(minutes=1), now + timedelta(seconds=1), topics=["test.ping"])
    assert [r["payload"]["n"] for r in rows] == [0, 1, 2]
    assert {r["correlation_id"] for r in rows} == {"cycle-1"}
    assert await bus.replay(now + timedelta(seconds=5), now + timedelta(seconds=10)) == []


@pytest.mark.parametrize("publishes", ["first", "last"])
async def test_a_transaction_that_commits_late_has_its_message_taken_in(db, app_pool, brain_home, publishes):
    """A transaction publishes (its message's id handed out first, or last) and stays open
    while a hundred messages are published, each taken in on a claim of its own: ids and
    commits come in different orders, and its message is still taken in once it commits,
    and nothing twice."""
    seen: list[int] = []

    async def handler(d):
        seen.append(d.payload.n)

    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("late", ["test.ping"], handler)
    await bus.start()
    try:
        async with app_pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            if publishes == "first":
                await bus.publish("test.ping", Ping(n=-1), from_agent="test", conn=conn)
            else:
                await conn.execute("SELECT pg_current_xact_id()")  # an xid now, its message later
            for n in range(100):
                await bus.publish("test.ping", Ping(n=n), from_agent="test")
                await wait_until(lambda: asyncio.sleep(0, n in seen))
            if publishes == "last":
                await bus.publish("test.ping", Ping(n=-1), from_agent="test", conn=conn)
            await tx.commit()
        await wait_until(lambda: asyncio.sleep(0, -1 in seen))
        await asyncio.sleep(0.3)  # anything taken in twice would be handled by now
    finally:
        await bus.stop()
    assert sorted(seen) == [-1, *range(100)]


async def test_a_take_in_never_moves_the_cursor_back(db):
    """Worker A begins a claim and is held up in its claim of waiting work while worker B
    takes in a new message. A's take-in must not write back a cursor older than B's: the
    message would count as not taken in, and a later claim would meet it again and spend
    its batch on it."""
    db.sql("""CREATE FUNCTION hold_a() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN IF current_setting('application_name') = 'A' THEN PERFORM pg_sleep(1); END IF;
              RETURN NEW; END $$;
              CREATE TRIGGER hold_a BEFORE UPDATE ON agent_deliveries FOR EACH ROW EXECUTE FUNCTION hold_a();
              INSERT INTO bus_consumers (consumer) VALUES ('c');
              INSERT INTO bus_subscriptions (topic, consumer) VALUES ('test.ping', 'c')""")

    def publish(n: int) -> int:
        return db.sql("INSERT INTO agent_messages (topic, from_agent, payload) VALUES ('test.ping', 't', %s) "
                      "RETURNING id", (json.dumps({"n": n}),), role="app")[0][0]

    def cursor() -> int:
        return int(db.sql("SELECT pg_snapshot_xmax(seen)::text FROM bus_consumers")[0][0])

    claim = "SELECT message_id FROM bus_claim('c', $1, $2, 30)"
    m0 = publish(0)
    db.sql("INSERT INTO agent_deliveries (message_id, consumer) VALUES (%s, 'c')", (m0,))  # waiting work for A
    a = await asyncpg.connect(db.url("app"), server_settings={"application_name": "A"})
    b = await asyncpg.connect(db.url("app"))
    try:
        claim_a = asyncio.ensure_future(a.fetch(claim, 5, uuid.uuid4()))
        await asyncio.sleep(0.3)  # A is inside its claim, held up by the trigger
        m1 = publish(1)
        assert [r[0] for r in await b.fetch(claim, 5, uuid.uuid4())] == [m1]
        after_b = cursor()
        assert [r[0] for r in await claim_a] == [m0]
        assert cursor() >= after_b, "the cursor moved back"
        assert db.sql("SELECT untaken FROM bus_backlog WHERE consumer = 'c'") == [(0,)]
        m2 = publish(2)
        assert [r[0] for r in await b.fetch(claim, 1, uuid.uuid4())] == [m2], "a batch of one takes the new message"
    finally:
        await a.close()
        await b.close()
