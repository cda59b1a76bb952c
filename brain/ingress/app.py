"""The FastAPI app: ingress endpoints, health, metrics, and the read-only dashboard."""
from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from brain.broker.base import Broker
from brain.bus import Bus
from brain.config import Settings
from brain.db.types import Conn
from brain.heartbeat import beat
from brain.ingress.models import BarIn, ContextIn, FillIn, HeartbeatIn
from brain.market.bars import Bar, BarRejected
from brain.market.live_bars import store_live_bar
from brain.sql import queries_beside

Q = queries_beside(__file__, "app.sql")

MAX_BODY = 64 * 1024


def create_app(settings: Settings, pool: asyncpg.Pool, bus: Bus, broker: Broker | None = None) -> FastAPI:
    """broker: the paper broker living in this process, which fills on every bar posted here."""
    app = FastAPI(title="Trading brain ingress", version="1", docs_url="/docs", openapi_url="/openapi.json")
    token = settings.ingress_token

    def authorised(request: Request) -> None:
        if token is None:
            return  # only possible on loopback: the server refuses to bind wider without a token
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "missing or wrong bearer token")

    @app.middleware("http")
    async def limit_size(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Decided from the headers alone: a body is never read before its size is known.
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": f"body larger than {MAX_BODY} bytes"}, status_code=413)
        if request.method == "POST" and length is None:
            return JSONResponse({"detail": "a Content-Length header is required"}, status_code=411)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
        return JSONResponse({"detail": f"{field}: {err['msg']}", "field": field}, status_code=422)

    async def once(conn: Conn, endpoint: str, client_id: str) -> dict[str, Any] | None:
        """The stored response when this client id was already handled (idempotent resend).
        Resends that arrive together wait for each other here, so the second one finds the
        first one's receipt instead of colliding with its writes."""
        await conn.execute(Q["lock_client_id"], endpoint, client_id)
        raw = await conn.fetchval(Q["receipt"], endpoint, client_id)
        return None if raw is None else {**json.loads(raw), "duplicate": True}

    async def receipt(conn: Conn, endpoint: str, client_id: str, response: dict[str, Any]) -> dict[str, Any]:
        await conn.execute(Q["insert_receipt"], endpoint, client_id, json.dumps(response, default=str))
        return response

    @app.post("/v1/bars", dependencies=[Depends(authorised)])
    async def post_bar(body: BarIn) -> dict[str, Any]:
        bar = Bar(symbol=body.symbol, ts=body.ts, open=body.open, high=body.high, low=body.low, close=body.close,
                  volume=body.volume, source="ingress")
        async with pool.acquire() as conn, conn.transaction():
            if (seen := await once(conn, "bars", body.client_id)) is not None:
                return seen
            try:
                message_id = await store_live_bar(conn, bus, bar, broker=broker)
            except BarRejected as exc:
                raise HTTPException(422, f"bar rejected: {exc}") from None
            except asyncpg.UniqueViolationError:  # the same bar under another client id, at the same moment
                raise HTTPException(409, f"bar rejected: {bar.symbol} at {bar.ts.isoformat()} is already stored") from None
            return await receipt(conn, "bars", body.client_id, {"stored": True, "message_id": message_id})

    @app.post("/v1/heartbeat", dependencies=[Depends(authorised)])
    async def post_heartbeat(body: HeartbeatIn) -> dict[str, Any]:
        await beat(pool, "broker", {"source": body.source, "client_id": body.client_id})
        return {"stored": True}

    @app.post("/v1/fills", dependencies=[Depends(authorised)])
    async def post_fill(body: FillIn) -> dict[str, Any]:
        async with pool.acquire() as conn, conn.transaction():
            if (seen := await once(conn, "fills", body.client_id)) is not None:
                return seen
            order = await conn.fetchrow(Q["order_by_client_id"], body.client_order_id)
            if order is None:
                raise HTTPException(404, f"client_order_id: no order {body.client_order_id}")
            await conn.execute(Q["insert_fill"], order["id"], body.client_order_id,
                               body.broker_fill_id, order["symbol"], order["side"], body.qty, body.price,
                               body.commission, body.ts)
            return await receipt(conn, "fills", body.client_id, {"stored": True})

    @app.post("/v1/context", dependencies=[Depends(authorised)])
    async def post_context(body: ContextIn) -> dict[str, Any]:
        async with pool.acquire() as conn, conn.transaction():
            if (seen := await once(conn, "context", body.client_id)) is not None:
                return seen
            note_id = await conn.fetchval(Q["insert_context_note"], body.source, body.symbol, body.title, body.body)
            return await receipt(conn, "context", body.client_id, {"stored": True, "note_id": note_id})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        problems = []
        try:
            age = await pool.fetchval(Q["watchdog_age"])
        except (OSError, asyncpg.PostgresError) as exc:
            return JSONResponse({"ready": False, "problems": [f"database: {exc}"]}, status_code=503)
        if age is None or age > settings.heartbeat_stale_s:
            problems.append("watchdog not seen recently")
        if bus.failed is not None or bus.listener is None or not bus.listener.connected.is_set():
            problems.append("bus consumers are not listening")
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=503 if problems else 200)

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        from brain.ingress.metrics import render

        return PlainTextResponse(await render(pool), media_type="text/plain; version=0.0.4")

    from brain.dashboard.routes import mount

    mount(app, pool, authorised)
    return app
