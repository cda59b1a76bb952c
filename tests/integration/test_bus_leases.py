"""Leases: renewed while a handler runs, run out when it hangs or dies, handed back at a stop;
and the bookkeeping of held work leaves nothing behind."""
from __future__ import annotations

import asyncio

import pytest

from tests.support.bus import QUICK, Ping, Pong, deliveries_done, delivery_states, make_bus, ping
from tests.support.waiting import wait_until


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
        await bus.publish_many([ping(0), ping(1)])

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
    assert await delivery_states(db) == {1: "done"}
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
        await buses[0].publish_many([ping(n) for n in numbers])
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
        await bus.publish_many([ping(1), ping(2)])
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
