"""The durable bus against a real PostgreSQL: claims, fan-out, retries, dead letters, replay."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from brain.bus import Bus, HandlerResult, Reject
from brain.errors import PayloadInvalid
from tests.support.bus import Ping, Pong, deliveries_done, make_bus
from tests.support.waiting import wait_until

QUICK = {"bus_poll_interval_s": 0.5, "bus_backoff_base_s": 0.05}  # polls every 0.5 s, retries from 50 ms


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
        await bus.publish_many([_ping(i) for i in range(300)])
        await wait_until(lambda: deliveries_done(db, 300))
    finally:
        await bus.stop()
    assert sorted(seen) == list(range(300)), "each message handled exactly once"
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic='test.pong'") == [(300,)]


def _ping(i: int):
    from brain.bus import Outgoing
    return Outgoing("test.ping", Ping(n=i), "test", correlation_id=f"c{i}")


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


async def test_failures_retry_with_backoff_then_dead_letter(db, app_pool, brain_home):
    calls = 0

    async def flaky(d):
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    bus = make_bus(db, app_pool, brain_home, **QUICK, bus_max_attempts=3)
    bus.consumer("flaky", ["test.ping"], flaky)
    await bus.start()
    try:
        await bus.publish("test.ping", Ping(n=1), from_agent="test")
        await wait_until(lambda: _state_is(db, "dead"), timeout=10)
    finally:
        await bus.stop()
    assert calls == 3
    [(attempts, error)] = db.sql("SELECT attempts, last_error FROM agent_deliveries")
    assert attempts == 3 and "RuntimeError: boom" in error


async def _state_is(db, state: str) -> bool:
    return db.sql("SELECT count(*) FROM agent_deliveries WHERE state = %s", (state,))[0][0] > 0


async def test_invalid_payload_is_dead_lettered_and_the_rest_flows(db, app_pool, brain_home):
    handled: list[int] = []

    async def handler(d):
        handled.append(d.payload.n)

    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("strict", ["test.ping"], handler)
    await bus.start()
    try:
        # Written behind the bus's back (as a buggy producer would): it must not stop the consumer.
        db.sql("""INSERT INTO agent_messages (topic, from_agent, payload)
                  VALUES ('test.ping', 'rogue', '{"n": "not a number"}')""", role="app")
        for i in range(5):
            await bus.publish("test.ping", Ping(n=i), from_agent="test")
        await wait_until(lambda: deliveries_done(db, 5))
    finally:
        await bus.stop()
    assert sorted(handled) == list(range(5))
    [(state, error)] = db.sql("""SELECT d.state, d.last_error FROM agent_deliveries d
                                  JOIN agent_messages m ON m.id = d.message_id WHERE m.from_agent = 'rogue'""")
    assert state == "dead" and "invalid payload" in error and "test.ping: n" in error


async def test_reject_dead_letters_without_retry(db, app_pool, brain_home):
    calls = 0

    async def handler(d):
        nonlocal calls
        calls += 1
        raise Reject("stale bar")

    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("picky", ["test.ping"], handler)
    await bus.start()
    try:
        await bus.publish("test.ping", Ping(n=1), from_agent="test")
        await wait_until(lambda: _state_is(db, "dead"))
    finally:
        await bus.stop()
    assert calls == 1
    assert "rejected: stale bar" in db.sql("SELECT last_error FROM agent_deliveries")[0][0]


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


async def test_a_lease_that_keeps_running_out_is_redone_then_dead_lettered(db, app_pool, brain_home):
    """A handler that hangs (past bus_handler_max_s, when its lease stops being renewed):
    another claim redoes the message; one that has hung on every attempt is dead-lettered
    instead of looping forever."""
    handled: list[int] = []
    release = asyncio.Event()

    async def handler(d):
        handled.append(d.payload.n)
        if d.payload.n == 0:
            await release.wait()  # hangs well past its lease
        return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="worker")]

    bus = make_bus(db, app_pool, brain_home, **QUICK, bus_max_attempts=2, bus_handler_max_s=0.3)
    bus.consumer("hangs", ["test.ping"], handler, batch=1, concurrency=3, lease_s=0.4)
    await bus.start()
    try:
        await bus.publish_many([_ping(0), _ping(1)])

        async def dead():
            return db.sql("SELECT state FROM agent_deliveries WHERE consumer = 'hangs' AND message_id = "
                          "(SELECT id FROM agent_messages WHERE correlation_id = 'c0')") == [("dead",)]
        await wait_until(dead)
        release.set()
        await asyncio.sleep(0.2)
    finally:
        await bus.stop()
    [(state, attempts, error)] = db.sql("SELECT state, attempts, last_error FROM agent_deliveries d JOIN agent_messages m "
                                        "ON m.id = d.message_id WHERE d.consumer = 'hangs' AND m.correlation_id = 'c0'")
    assert (state, attempts, error) == ("dead", 2, "lease expired on every attempt")
    assert handled.count(0) == 2 and handled.count(1) == 1, "redone once after its lease, then given up on"
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'test.pong' AND correlation_id = 'c0'") == [(0,)], \
        "the hung attempts' late answers were refused: their leases were gone"


async def _states(db) -> dict[int, str]:
    return dict(db.sql("""SELECT (m.payload->>'n')::int, d.state FROM agent_deliveries d
                          JOIN agent_messages m ON m.id = d.message_id"""))


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_an_invalid_output_fails_its_own_message_and_the_bus_runs_on(db, app_pool, brain_home, concurrency):
    """A handler whose answer is not a valid output message: that message is retried, then
    dead-lettered; the messages claimed and acked with it are done, and the bus keeps going."""
    async def handler(d):
        if d.payload.n == 3:
            return [d.reply("test.pong", {"oops": 1}, from_agent="w")]
        return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="w")]

    bus = make_bus(db, app_pool, brain_home, **QUICK, bus_max_attempts=2)
    bus.consumer("w", ["test.ping"], handler, batch=10, concurrency=concurrency)
    await bus.start()
    try:
        await bus.publish_many([_ping(i) for i in range(6)])  # one commit: one claim takes them all
        await wait_until(lambda: _states_are(db, {0: "done", 1: "done", 2: "done", 3: "dead", 4: "done", 5: "done"}))
        await bus.publish("test.ping", Ping(n=7), from_agent="test")
        await wait_until(lambda: deliveries_done(db, 6))
        assert bus.failed is None
    finally:
        await bus.stop()
    [(attempts, error)] = db.sql("SELECT attempts, last_error FROM agent_deliveries WHERE state = 'dead'")
    assert attempts == 2 and error.startswith("invalid output: test.pong: n:")
    pongs = db.sql("SELECT (payload->>'n')::int FROM agent_messages WHERE topic = 'test.pong' ORDER BY 1")
    assert [n for (n,) in pongs] == [0, 1, 2, 4, 5, 7]


async def _states_are(db, expected: dict[int, str]) -> bool:
    return await _states(db) == expected


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_writes_of_a_handlers_own_that_fail_retry_that_message_only(db, app_pool, brain_home, concurrency):
    """A handler's in-transaction writes that the database refuses are its message's
    failure: retried, then dead-lettered with the error; nothing else stops."""
    async def handler(d):
        async def writes(conn):
            if d.payload.n == 1:
                await conn.execute("SELECT 1 / 0")
            return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="w")]
        return HandlerResult(in_tx=writes)

    bus = make_bus(db, app_pool, brain_home, **QUICK, bus_max_attempts=2)
    bus.consumer("w", ["test.ping"], handler, batch=10, concurrency=concurrency)
    await bus.start()
    try:
        await bus.publish_many([_ping(i) for i in range(3)])
        await wait_until(lambda: _states_are(db, {0: "done", 1: "dead", 2: "done"}))
        assert bus.failed is None
    finally:
        await bus.stop()
    [(attempts, error)] = db.sql("SELECT attempts, last_error FROM agent_deliveries WHERE state = 'dead'")
    assert attempts == 2 and error.startswith("ack failed on its writes: DivisionByZeroError")
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'test.pong'") == [(2,)]


def _slow_acks(db, seconds: float) -> None:
    db.sql(f"""CREATE FUNCTION slow_done() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN IF NEW.state = 'done' THEN PERFORM pg_sleep({seconds}); END IF; RETURN NEW; END $$;
               CREATE TRIGGER slow_done BEFORE UPDATE ON agent_deliveries
               FOR EACH ROW EXECUTE FUNCTION slow_done()""")


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_stopping_lets_an_ack_in_flight_finish(db, app_pool, brain_home, concurrency):
    handled = asyncio.Event()

    async def handler(d):
        handled.set()
        return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="w")]

    _slow_acks(db, 0.5)
    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("w", ["test.ping"], handler, concurrency=concurrency)
    await bus.start()
    try:
        await bus.publish("test.ping", Ping(n=1), from_agent="test")
        await asyncio.wait_for(handled.wait(), 10)
        await asyncio.sleep(0.1)  # the ack is in flight, held up by the trigger
    finally:
        await bus.stop()
    assert await _states(db) == {1: "done"}
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'test.pong'") == [(1,)]


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_stopping_mid_handler_hands_the_message_back(db, app_pool, brain_home, concurrency):
    """A stop during a long handler (a model call): the message goes back at once instead
    of waiting out its lease; the attempt counts (a handler that never finishes must still
    run out of attempts)."""
    started = asyncio.Event()

    async def handler(d):
        started.set()
        await asyncio.sleep(60)

    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("w", ["test.ping"], handler, concurrency=concurrency, lease_s=600)
    await bus.start()
    try:
        await bus.publish("test.ping", Ping(n=1), from_agent="test")
        await asyncio.wait_for(started.wait(), 10)
    finally:
        await bus.stop()
    assert db.sql("SELECT state, attempts, lease_owner FROM agent_deliveries") == [("pending", 1, None)]


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


async def test_the_servers_own_trouble_is_not_charged_to_messages(db, app_pool, brain_home):
    """An ack refused for the server's own reasons (here: disk full, raised by a trigger) is
    not the messages' failure: nothing is charged an attempt or dead-lettered, and the ack goes
    through once the server is well again, without the work being redone."""
    db.sql("""CREATE TABLE disk (full_up boolean NOT NULL);
              INSERT INTO disk VALUES (true);
              GRANT SELECT ON disk TO brain_app;
              CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN IF NEW.topic = 'test.pong' AND (SELECT full_up FROM disk)
                    THEN RAISE EXCEPTION 'could not extend file' USING ERRCODE = '53100'; END IF;
              RETURN NEW; END $$;
              CREATE TRIGGER disk_full BEFORE INSERT ON agent_messages FOR EACH ROW EXECUTE FUNCTION disk_full()""")
    handled: list[int] = []

    async def handler(d):
        handled.append(d.payload.n)
        return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="w")]

    bus = make_bus(db, app_pool, brain_home, **QUICK, bus_max_attempts=2)
    bus.consumer("w", ["test.ping"], handler, batch=10)
    await bus.start()
    try:
        await bus.publish_many([_ping(i) for i in range(3)])
        await wait_until(lambda: asyncio.sleep(0, len(handled) == 3))
        await asyncio.sleep(2)  # what several retries with backoff would have charged
        assert db.sql("SELECT state, attempts FROM agent_deliveries") == [("working", 1)] * 3
        db.sql("UPDATE disk SET full_up = false")
        await wait_until(lambda: deliveries_done(db, 3))
    finally:
        await bus.stop()
    assert sorted(handled) == [0, 1, 2], "finished work was not redone"
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'test.pong'") == [(3,)]


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_a_handlers_writes_failing_outside_the_database_fail_that_message_only(db, app_pool, brain_home,
                                                                                     concurrency):
    """Writes of a handler's own that fail outside the database (its journal file on a full
    disk) are not a lost connection: the message is retried and dead-lettered at the retry
    pace, and the rest are not held up for a lease."""
    async def handler(d):
        async def writes(conn):
            if d.payload.n == 1:
                raise OSError(28, "No space left on device")
            return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="w")]
        return HandlerResult(in_tx=writes)

    bus = make_bus(db, app_pool, brain_home, **QUICK, bus_max_attempts=2)
    bus.consumer("w", ["test.ping"], handler, batch=10, concurrency=concurrency)  # leases of 30 s
    await bus.start()
    try:
        await bus.publish_many([_ping(i) for i in range(3)])
        await wait_until(lambda: _states_are(db, {0: "done", 1: "dead", 2: "done"}), timeout=10)
    finally:
        await bus.stop()
    [(error,)] = db.sql("SELECT last_error FROM agent_deliveries WHERE state = 'dead'")
    assert error.startswith("ack failed on its writes: OSError")


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_a_handler_cancelled_from_within_fails_and_the_consumer_lives_on(db, app_pool, brain_home, concurrency):
    """A handler that raises CancelledError without a stop (something it awaited was
    cancelled) has failed: retried, then dead-lettered; its consumer keeps working."""
    async def handler(d):
        if d.payload.n == 1:
            cancelled = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await cancelled
        return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="w")]

    bus = make_bus(db, app_pool, brain_home, **QUICK, bus_max_attempts=2)
    bus.consumer("w", ["test.ping"], handler, batch=10, concurrency=concurrency)
    await bus.start()
    try:
        await bus.publish_many([_ping(i) for i in range(3)])
        await wait_until(lambda: _states_are(db, {0: "done", 1: "dead", 2: "done"}), timeout=10)
        await bus.publish("test.ping", Ping(n=5), from_agent="test")
        await wait_until(lambda: deliveries_done(db, 3))
        assert bus.failed is None
    finally:
        await bus.stop()
    [(attempts, error)] = db.sql("SELECT attempts, last_error FROM agent_deliveries WHERE state = 'dead'")
    assert attempts == 2 and "cancelled from within" in error


async def _slow_run(db, app_pool, brain_home, concurrency: int, hold_s: float, numbers=(7,), batch: int = 1,
                    slow=lambda n: True, **settings) -> list[int]:
    """Messages to a handler that takes hold_s (where slow(n)) against a 1 s lease; with
    concurrency 1 a second process's worker of the same consumer is there to take back an
    expired lease."""
    calls: list[int] = []

    async def handler(d):
        calls.append(d.payload.n)
        if slow(d.payload.n):
            await asyncio.sleep(hold_s)
        return [d.reply("test.pong", Pong(n=d.payload.n, by="slow"), from_agent="slow")]

    buses = [make_bus(db, app_pool, brain_home, **QUICK, bus_lease_s=1.0, **settings)
             for _ in range(2 if concurrency == 1 else 1)]
    for bus in buses:
        bus.consumer("slow", ["test.ping"], handler, batch=batch, concurrency=concurrency)
    await buses[0].start()  # the first takes the work in; the second is there to take it back
    try:
        await buses[0].publish_many([_ping(n) for n in numbers])
        await asyncio.sleep(0.3)
        for bus in buses[1:]:
            await bus.start()
        await wait_until(lambda: deliveries_done(db, len(numbers)), timeout=20)
        await asyncio.sleep(1.5)  # a second run, had one started, would show now
    finally:
        for bus in buses:
            await bus.stop()
    return calls


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_a_handler_that_outlasts_its_lease_keeps_it_and_runs_once(db, app_pool, brain_home, concurrency):
    calls = await _slow_run(db, app_pool, brain_home, concurrency, hold_s=2.5)
    assert calls == [7], "a model call longer than the lease is neither taken back nor paid for twice"
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'test.pong'") == [(1,)]


async def test_a_handler_past_the_longest_a_handler_may_run_loses_its_lease(db, app_pool, brain_home, caplog):
    calls = await _slow_run(db, app_pool, brain_home, 2, hold_s=3.0, bus_handler_max_s=1.2)
    assert calls[:2] == [7, 7], "taken for hung: its lease ran out and the message was redone"
    assert "no longer renewed" in caplog.text
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'test.pong'") == [(1,)], "outputs exactly once"


async def test_a_batch_whose_handlers_together_outlast_the_maximum_keeps_its_leases(db, app_pool, brain_home):
    # Each handler takes 1.2 s, under the 2 s a handler may run; the batch takes 3.6 s.
    calls = await _slow_run(db, app_pool, brain_home, 1, hold_s=1.2, numbers=(1, 2, 3), batch=3,
                            bus_handler_max_s=2.0)
    assert calls == [1, 2, 3]


async def test_work_handled_earlier_and_waiting_for_its_ack_keeps_its_lease(db, app_pool, brain_home):
    """1 and 2 are claimed together, and 99 is published while they are handled: a stream, so
    their ack waits for the next claim, whose handler (99's) then outlasts the lease."""
    calls: list[int] = []
    handling_99 = asyncio.Event()

    async def handler(d):
        calls.append(d.payload.n)
        if d.payload.n == 1:
            await bus.publish("test.ping", Ping(n=99), from_agent="test")
        if d.payload.n == 99:
            handling_99.set()
        await asyncio.sleep(2.5 if d.payload.n == 99 else 0.05)
        return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="w")]

    bus, other = (make_bus(db, app_pool, brain_home, **QUICK, bus_lease_s=1.0) for _ in range(2))
    for b in (bus, other):
        b.consumer("stream", ["test.ping"], handler, batch=5)
    await bus.start()
    try:
        await bus.publish_many([_ping(1), _ping(2)])
        await asyncio.wait_for(handling_99.wait(), 5)
        assert calls == [1, 2, 99]
        await other.start()  # a second process's worker, there to take back an expired lease
        await wait_until(lambda: deliveries_done(db, 3), timeout=20)
        await asyncio.sleep(1.5)
    finally:
        await bus.stop()
        await other.stop()
    assert calls == [1, 2, 99]


async def test_claims_leave_no_reference_cycles_behind(db, app_pool, brain_home):
    """Garbage in cycles waits for the collector, whose full passes stop the event loop for
    tens of milliseconds in a process this size: nothing the bus does per claim may make it."""
    import gc

    async def handler(d):
        return [d.reply("test.pong", Pong(n=d.payload.n, by="w"), from_agent="w")]

    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("cycles", ["test.ping"], handler, batch=1)
    await bus.start()
    try:
        await bus.publish("test.ping", Ping(n=-1), from_agent="test")
        await wait_until(lambda: deliveries_done(db, 1))
        gc.collect()
        gc.disable()
        try:
            for n in range(100):
                await bus.publish("test.ping", Ping(n=n), from_agent="test")
            await wait_until(lambda: deliveries_done(db, 101))
            in_cycles = gc.collect()
        finally:
            gc.enable()
    finally:
        await bus.stop()
    assert in_cycles < 100, f"{in_cycles} objects in cycles after 100 claims"


async def test_a_stop_cut_short_leaves_no_lease_renewal_running(db, app_pool, brain_home):
    started = asyncio.Event()

    async def handler(d):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # slow to clean up after a stop
            raise

    bus = make_bus(db, app_pool, brain_home, **QUICK)
    bus.consumer("slow_stop", ["test.ping"], handler, batch=1, concurrency=2)
    await bus.start()
    await bus.publish("test.ping", Ping(n=1), from_agent="test")
    await asyncio.wait_for(started.wait(), 10)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):  # as the runtime bounds a stop
            await bus.stop()
    await asyncio.sleep(0.1)
    renewals = [t for t in asyncio.all_tasks() if "_keep_leases" in repr(t.get_coro()) and not t.done()]
    await bus.stop()
    assert renewals == []
