"""Ingress: a bad-input battery refused with nothing stored, idempotent resends, auth, health,
and metrics that parse with the Prometheus text parser."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from brain.bus import Bus
from brain.errors import ConfigError
from brain.ingress.app import create_app
from brain.ingress.serve import check_binding
from tests.support.database import open_pool

TOKEN = "s3cret-token"


@pytest.fixture
async def client(db, brain_home, pool):
    settings = db.settings(brain_home, ingress_token=TOKEN)
    bus = Bus(pool, settings=settings, listen_url=db.url("app"))
    app = create_app(settings, pool, bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://brain",
                                 headers={"authorization": f"Bearer {TOKEN}"}) as c:
        yield c
    await bus.stop()


BAR = {"client_id": "bar-1", "symbol": "AAPL", "ts": "2013-01-02T00:00:00Z", "open": 10.0, "high": 11.0,
       "low": 9.5, "close": 10.5, "volume": 1000}


def counts(db) -> tuple:
    return db.sql("SELECT (SELECT count(*) FROM bars), (SELECT count(*) FROM agent_messages), "
                  "(SELECT count(*) FROM ingress_receipts), (SELECT count(*) FROM context_notes)")[0]


@pytest.mark.parametrize("change, field", [
    ({"open": "ten"}, "open"), ({"close": "NaN"}, "close"), ({"volume": -5}, "volume"),
    ({"high": 10.2}, "bar rejected: high"), ({"low": 10.6}, "bar rejected: low"), ({"symbol": "A A"}, "symbol"),
    ({"extra": 1}, "extra"), ({"ts": "yesterday"}, "ts"), ({"client_id": ""}, "client_id"),
    ({"open": True}, "open"), ({"high": "11"}, "high"),
])
async def test_bad_bars_are_refused_naming_the_field_and_store_nothing(client, db, change, field):
    before = counts(db)
    r = await client.post("/v1/bars", json={**BAR, **change})
    assert 400 <= r.status_code < 500
    assert field in r.json()["detail"]
    assert counts(db) == before


async def test_out_of_order_time_oversized_body_and_auth(client, db):
    assert (await client.post("/v1/bars", json=BAR)).status_code == 200
    older = await client.post("/v1/bars", json={**BAR, "client_id": "bar-0", "ts": "2013-01-01T00:00:00Z"})
    assert older.status_code == 422 and "not after the previous bar" in older.json()["detail"]
    huge = await client.post("/v1/context", content=json.dumps({"client_id": "n", "source": "x", "title": "t",
                                                                "body": "x" * 70_000}),
                             headers={"content-type": "application/json"})
    assert huge.status_code == 413
    no_token = await client.post("/v1/bars", json=BAR, headers={"authorization": ""})
    wrong = await client.post("/v1/bars", json=BAR, headers={"authorization": "Bearer nope"})
    assert no_token.status_code == 401 and wrong.status_code == 401
    assert db.sql("SELECT count(*) FROM bars") == [(1,)]


async def test_idempotent_resend_stores_once(client, db):
    first = await client.post("/v1/bars", json=BAR)
    again = await client.post("/v1/bars", json=BAR)
    assert first.status_code == again.status_code == 200 and again.json()["duplicate"] is True
    assert db.sql("SELECT count(*) FROM bars") == [(1,)]
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'market.bar'") == [(1,)]
    note = {"client_id": "n-1", "source": "macro", "title": "CPI", "body": "hotter than expected"}
    assert (await client.post("/v1/context", json=note)).status_code == 200
    assert (await client.post("/v1/context", json=note)).json()["duplicate"] is True
    assert db.sql("SELECT count(*) FROM context_notes") == [(1,)]


async def test_fills_need_a_known_order_and_heartbeat_beats(client, db):
    fill = {"client_id": "f-1", "client_order_id": "nope", "broker_fill_id": "x1", "qty": 1, "price": 10,
            "ts": "2013-01-02T15:00:00Z"}
    r = await client.post("/v1/fills", json=fill)
    assert r.status_code == 404 and "client_order_id" in r.json()["detail"]
    assert (await client.post("/v1/heartbeat", json={"client_id": "hb"})).status_code == 200
    assert db.sql("SELECT count(*) FROM app_state WHERE key = 'heartbeat:broker'") == [(1,)]


async def test_health_metrics_and_no_resume_endpoint(client, db):
    assert (await client.get("/healthz")).json() == {"status": "alive"}
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and "watchdog not seen recently" in ready.json()["problems"]
    db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (3, 't', 'r', 'watchdog')", role="watchdog")
    text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["brain_halt_level"].samples[0].value == 3
    assert {"brain_bus_backlog", "brain_cycles", "brain_model_calls", "brain_breaker_open"} <= set(families)
    paths = {route.path for route in client._transport.app.routes}
    assert not any("resume" in p for p in paths)
    assert (await client.get("/openapi.json")).status_code == 200


def test_refuses_to_bind_beyond_loopback_without_a_token(db, brain_home):
    check_binding(db.settings(brain_home, ingress_host="127.0.0.1"))
    with pytest.raises(ConfigError, match="without BRAIN_INGRESS_TOKEN"):
        check_binding(db.settings(brain_home, ingress_host="0.0.0.0"))
    check_binding(db.settings(brain_home, ingress_host="0.0.0.0", ingress_token="t"))


@pytest.mark.parametrize("ts", ["2999-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z"])
async def test_a_bar_from_far_ahead_or_far_back_is_refused(client, db, ts):
    """Stored, a bar from the year 2999 would make every real bar of its symbol look out of order."""
    bad = await client.post("/v1/bars", json={**BAR, "ts": ts})
    assert bad.status_code == 422 and bad.json()["field"] == "ts"
    assert (await client.post("/v1/bars", json=BAR)).status_code == 200
    assert db.sql("SELECT count(*) FROM bars") == [(1,)]


async def test_a_body_without_its_length_is_refused_unread(client, db):
    async def chunks():
        yield json.dumps(BAR).encode()
    r = await client.post("/v1/bars", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 411
    assert db.sql("SELECT count(*) FROM bars") == [(0,)]


async def test_resends_arriving_together_get_the_first_ones_answer(client, db):
    import asyncio
    replies = await asyncio.gather(*(client.post("/v1/bars", json=BAR) for _ in range(5)))
    assert [r.status_code for r in replies] == [200] * 5
    assert sorted(r.json().get("duplicate", False) for r in replies) == [False] + [True] * 4
    assert len({r.json()["message_id"] for r in replies}) == 1
    assert db.sql("SELECT count(*) FROM bars") == [(1,)]


async def test_bars_posted_here_trade_the_paper_book(db, brain_home):
    """The paper broker lives in the brain: a posted bar fills the entries due at its open and
    runs stops on its range, as a replay step does."""
    from brain.broker.base import BracketOrder
    from brain.broker.paper import PaperBroker

    pool = await open_pool(db)
    settings = db.settings(brain_home, ingress_token=TOKEN)
    bus = Bus(pool, settings=settings, listen_url=db.url("app"))
    paper = PaperBroker()
    try:
        async with pool.acquire() as conn, conn.transaction():
            await paper.ensure_account(conn)
            placed = await paper.place_bracket(conn, BracketOrder(
                "b-live", "AAPL", "buy", 10, 9.0, 13.0, "AAPL@2013-01-02T00:00:00+00:00", "AAPL@x:v1",
                datetime(2013, 1, 2, tzinfo=timezone.utc)))
        assert placed.status == "working"
        app = create_app(settings, pool, bus, paper)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://brain",
                                     headers={"authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post("/v1/bars", json={**BAR, "ts": "2013-01-03T00:00:00Z"})
            assert r.status_code == 200, r.text
            assert db.sql("SELECT status, fill_price > 0 FROM orders WHERE client_order_id = 'b-live'") == \
                [("filled", True)]
            assert db.sql("SELECT symbol, qty FROM positions") == [("AAPL", 10.0)]
            [(outcome,)] = db.sql("SELECT payload->>'outcome' FROM agent_messages WHERE topic = 'cycle.outcome' "
                                  "AND correlation_id = 'AAPL@2013-01-02T00:00:00+00:00'")
            assert outcome == "filled"
            # The next bar falls through the stop at 9: the position closes there.
            r = await c.post("/v1/bars", json={**BAR, "client_id": "bar-2", "ts": "2013-01-04T00:00:00Z",
                                               "open": 9.5, "high": 9.6, "low": 8.0, "close": 8.5})
            assert r.status_code == 200, r.text
            assert db.sql("SELECT count(*) FROM positions") == [(0,)]
            assert db.sql("SELECT count(*) FROM fills") == [(2,)]
    finally:
        await bus.stop()
        await pool.close()


async def test_html_a_model_wrote_into_the_journal_is_shown_as_text(client, db):
    [(entry_id,)] = db.sql(
        "INSERT INTO agent_journal (kind, outcome, title, body_md, file_path) VALUES ('cycle', 'skip', 't', "
        "'## Why\n\nthe model said <img src=x onerror=alert(1)> and <script>alert(2)</script>', 'x.md') "
        "RETURNING id")
    page = (await client.get(f"/decisions/{entry_id}")).text
    assert "<img" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


async def test_buy_and_hold_starts_with_the_curve_and_only_from_symbols_there_then(db):
    from brain.dashboard.routes import Q

    for sym, day, close in (("A", 1, 50.0), ("A", 2, 100.0), ("A", 3, 110.0), ("A", 4, 120.0),
                            ("B", 3, 10.0), ("B", 4, 30.0)):   # B lists on day 3, after the curve began
        db.sql("INSERT INTO bars (symbol, ts, open, high, low, close, volume) "
               "VALUES (%s, %s, %s, %s, %s, %s, 1)", (sym, f"2013-01-0{day}T00:00:00Z", close, close, close, close))
    marks = [f"2013-01-0{d}T00:00:00+00:00" for d in (2, 3, 4)]
    conn = await asyncpg.connect(db.url("app"))
    try:
        rows = await conn.fetch(Q["benchmark"], [datetime.fromisoformat(m) for m in marks])
    finally:
        await conn.close()
    # A from its day-2 close, not its first-ever one; B never joins at par.
    assert [round(r[1], 6) for r in rows] == [1.0, 1.1, 1.2]
