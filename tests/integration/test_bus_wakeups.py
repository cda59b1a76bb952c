"""Wake-ups: a producer streaming a topic notifies once per window, and consumers still find
every message at once, including one whose commit returned after the window closed.

The consumers here poll only every 30 s, so a message that depended on the slow poll
would miss every deadline below."""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import asyncpg
import pytest

from brain.bus import Bus
from brain.bus.listener import Listener
from brain.messages import CHANNEL
from tests.support.bus import Ping, Pong, deliveries_done, make_bus
from tests.support.waiting import wait_until

WINDOW_MS = 50
DEADLINE_S = 5.0  # far inside the 30 s poll
SETTINGS = {"bus_poll_interval_s": 30.0, "bus_notify_window_ms": WINDOW_MS}


@asynccontextmanager
async def _both_kinds_of_consumer(db, app_pool, brain_home):
    """A plain and a concurrent consumer of test.ping, started, with a producer on its own
    Bus whose connection is open, and every wake-up on the channel as seen by a listener.
    Yields (producer, handled: consumer -> [(n, when)], notification payloads)."""
    handled: dict[str, list[tuple[int, float]]] = {"one_by_one": [], "concurrent": []}

    def collect(name):
        async def handler(d):
            handled[name].append((d.payload.n, time.monotonic()))
        return handler

    consumers = make_bus(db, app_pool, brain_home, **SETTINGS)
    consumers.consumer("one_by_one", ["test.ping"], collect("one_by_one"))
    consumers.consumer("concurrent", ["test.ping"], collect("concurrent"), concurrency=3)
    producer = make_bus(db, app_pool, brain_home, **SETTINGS)
    listen, notified = await _notifications(db)
    await consumers.start()
    try:
        await asyncio.wait_for(consumers.listener.connected.wait(), 10)
        await _open_connection(producer)
        yield producer, handled, notified
    finally:
        await consumers.stop()
        await producer.stop()
        await listen.close()


async def _notifications(db) -> tuple[asyncpg.Connection, list[str]]:
    seen: list[str] = []
    conn = await asyncpg.connect(db.url("app"))
    await conn.add_listener(CHANNEL, lambda _c, _p, _ch, payload: seen.append(payload))
    return conn, seen


async def test_a_stream_wakes_once_per_window_and_every_message_is_handled_at_once(db, app_pool, brain_home):
    async with _both_kinds_of_consumer(db, app_pool, brain_home) as (producer, handled, notified):
        for i in range(300):
            await producer.publish("test.ping", Ping(n=i), from_agent="test")
        await wait_until(lambda: deliveries_done(db, 600), timeout=DEADLINE_S)
    assert sorted(n for n, _ in handled["one_by_one"]) == list(range(300))
    assert sorted(n for n, _ in handled["concurrent"]) == list(range(300))
    assert f"test.ping {WINDOW_MS}" in notified, "the stream announced its windows"
    assert len(notified) < 150, f"{len(notified)} wake-ups for 300 messages: the stream was not coalesced"


@pytest.mark.parametrize("agent, own_wake", [
    # commits inside the window: no wake-up of its own; consumers look again when it closes
    ("slowish", []),
    # commits after the window closed: it wakes consumers on its own
    ("slow", ["test.ping"]),
])
async def test_a_message_published_inside_a_window_is_found_without_its_own_wake_up(
        db, app_pool, brain_home, agent, own_wake):
    # Messages from "slowish" take 20 ms to insert, from "slow" 300 ms: the last message
    # below is sent inside the window announced just before, and commits after the
    # consumers have taken what came before it.
    db.sql("""CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN PERFORM pg_sleep(CASE NEW.from_agent WHEN 'slow' THEN 0.3 ELSE 0.02 END);
                       RETURN NEW; END $$""")
    db.sql("""CREATE TRIGGER test_slow_insert BEFORE INSERT ON agent_messages FOR EACH ROW
              WHEN (NEW.from_agent IN ('slow', 'slowish')) EXECUTE FUNCTION test_slow_insert()""")
    async with _both_kinds_of_consumer(db, app_pool, brain_home) as (producer, handled, notified):
        await asyncio.sleep(0.1)  # past the look-again that follows the listener's connect
        last = await _announce_a_window(producer)
        await producer.publish("test.ping", Ping(n=last), from_agent=agent)
        committed = time.monotonic()
        await wait_until(lambda: deliveries_done(db, 2 * (last + 1)), timeout=DEADLINE_S)
    assert notified[-1 - len(own_wake):] == [f"test.ping {WINDOW_MS}", *own_wake], \
        "the last message was left silent in the window (and woke consumers itself once it closed)"
    for name, got in handled.items():
        assert sorted(n for n, _ in got) == list(range(last + 1)), name
        assert dict(got)[last] - committed < 1.0, name


async def test_an_announced_window_is_taken_in_one_look_when_it_closes(db, app_pool, brain_home):
    async with _both_kinds_of_consumer(db, app_pool, brain_home) as (_producer, handled, _notified):
        await asyncio.sleep(0.1)  # past the look-again that follows the listener's connect
        # A window announced by hand, as a streaming producer does; its messages wake nobody.
        announced = time.monotonic()
        db.sql(f"SELECT pg_notify('{CHANNEL}', 'test.ping {WINDOW_MS}')")
        for n in range(3):
            db.sql(f"""INSERT INTO agent_messages (topic, from_agent, payload)
                       VALUES ('test.ping', 'test', '{{"n": {n}}}')""")
        await wait_until(lambda: deliveries_done(db, 6), timeout=DEADLINE_S)
    for name, got in handled.items():
        assert sorted(n for n, _ in got) == [0, 1, 2], name
        assert min(t for _, t in got) - announced >= WINDOW_MS / 1000, \
            f"{name} looked before the window closed, when more of the stream was still to come"


def test_a_notification_asks_for_at_most_the_longest_window():
    heard: list[tuple[str, float]] = []
    listener = Listener("postgresql://localhost/unused", lambda t, w: heard.append((t, w)), lambda: None)
    for payload in ("market.bar", "market.bar 20", "market.bar 999999", "market.bar soon"):
        listener._notified(None, 0, CHANNEL, payload)
    assert heard == [("market.bar", 0.0), ("market.bar", 0.02), ("market.bar", 0.05), ("market.bar", 0.0)]


async def _announce_a_window(producer: Bus) -> int:
    """Publish quickly until the producer has announced a window; returns the next n. Its
    average gap starts at the window and falls 5% of the way to the real one per publish:
    some 45 publishes at 2 ms a commit, and more on a busy machine."""
    for n in range(300):
        await producer.publish("test.ping", Ping(n=n), from_agent="test")
        if producer._publisher._windows["test.ping"].quiet_until > time.monotonic():
            return n + 1
    raise AssertionError("300 publishes in a row never announced a window")


async def _open_connection(producer: Bus) -> None:
    """Publish once on another topic, so the stream below does not start with a connect."""
    await producer.publish("test.pong", Pong(n=0, by="warm-up"), from_agent="test")
