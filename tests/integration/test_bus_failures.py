"""The bus when handlers, payloads, outputs or the server fail: retries with backoff, dead
letters, and one bad message never holding up the rest."""
from __future__ import annotations

import asyncio

import pytest

from brain.bus import HandlerResult, Reject
from tests.support.bus import QUICK, Ping, Pong, deliveries_done, delivery_states, make_bus, ping
from tests.support.waiting import wait_until



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
        await bus.publish_many([ping(i) for i in range(6)])  # one commit: one claim takes them all
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
    return await delivery_states(db) == expected


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
        await bus.publish_many([ping(i) for i in range(3)])
        await wait_until(lambda: _states_are(db, {0: "done", 1: "dead", 2: "done"}))
        assert bus.failed is None
    finally:
        await bus.stop()
    [(attempts, error)] = db.sql("SELECT attempts, last_error FROM agent_deliveries WHERE state = 'dead'")
    assert attempts == 2 and error.startswith("ack failed on its writes: DivisionByZeroError")
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'test.pong'") == [(2,)]


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
        await bus.publish_many([ping(i) for i in range(3)])
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
        await bus.publish_many([ping(i) for i in range(3)])
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
        await bus.publish_many([ping(i) for i in range(3)])
        await wait_until(lambda: _states_are(db, {0: "done", 1: "dead", 2: "done"}), timeout=10)
        await bus.publish("test.ping", Ping(n=5), from_agent="test")
        await wait_until(lambda: deliveries_done(db, 3))
        assert bus.failed is None
    finally:
        await bus.stop()
    [(attempts, error)] = db.sql("SELECT attempts, last_error FROM agent_deliveries WHERE state = 'dead'")
    assert attempts == 2 and "cancelled from within" in error
