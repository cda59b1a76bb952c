"""Dashboard pages. Each page is a shell whose body is a fragment refreshed by HTMX."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt

from brain.dashboard.charts import bar_chart, line_chart
from brain.sql import queries_beside

HERE = Path(__file__).parent
Q = queries_beside(__file__, "queries.sql")
PAGES = [("overview", "/", "Overview"), ("decisions", "/decisions", "Decisions"),
         ("positions", "/positions", "Positions"), ("bus", "/bus", "Bus"), ("costs", "/costs", "Costs"),
         ("skills", "/skills", "Skills"), ("halts", "/halts", "Halts")]
STATE = {0: "TRADING", 1: "TRADING (alert)", 2: "NO NEW ENTRIES", 3: "STOPPED", 4: "FLATTENED AND LOCKED"}

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
# Journal bodies carry model text: raw HTML in it is shown as text, never run in the browser.
markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def mount(app: FastAPI, pool: asyncpg.Pool, authorised: Callable[[Request], None]) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(name: str, fragment: str, context: dict[str, Any], request: Request) -> HTMLResponse:
        body = env.get_template(f"{name}.html").render(**context)
        if request.headers.get("hx-request"):
            return HTMLResponse(body)  # a refresh: the fragment only
        return HTMLResponse(env.get_template("base.html").render(pages=PAGES, active=name, body=body,
                                                                 fragment_url=fragment))

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    async def overview(request: Request) -> HTMLResponse:
        level = await pool.fetchval(Q["state"])
        acct = await pool.fetchrow(Q["account"])
        curve = await pool.fetch(Q["curve"])
        bench = {r[0]: r[1] for r in await pool.fetch(Q["benchmark"], [r["ts"] for r in curve])} if curve else {}
        equity = [r["equity"] for r in curve]
        start = equity[0] if equity else 1.0
        hold = [bench[r["ts"]] * start for r in curve if r["ts"] in bench]
        chart = line_chart({"equity": equity, "buy and hold": hold} if len(hold) == len(equity) else {"equity": equity})
        return page("overview", "/", {"state": STATE[level], "level": level, "account": acct,
                                      "halts": await pool.fetch(Q["active_halts"]), "chart": chart}, request)

    @app.get("/decisions", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    async def decisions(request: Request, symbol: str | None = None, outcome: str | None = None,
                        day: str | None = None) -> HTMLResponse:
        try:
            when = date.fromisoformat(day) if day else None
        except ValueError:
            raise HTTPException(422, "day: use YYYY-MM-DD") from None
        rows = await pool.fetch(Q["journal"], symbol.upper() if symbol else None, outcome or None, when)
        query = request.url.query
        return page("decisions", f"/decisions{'?' + query if query else ''}",
                    {"rows": rows, "symbol": symbol or "", "outcome": outcome or "", "day": day or ""}, request)

    @app.get("/decisions/{entry_id}", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    async def decision(request: Request, entry_id: int) -> HTMLResponse:
        row = await pool.fetchrow(Q["journal_entry"], entry_id)
        if row is None:
            raise HTTPException(404, f"no journal entry {entry_id}")
        return page("entry", f"/decisions/{entry_id}", {"row": row, "html": markdown.render(row["body_md"])}, request)

    @app.get("/positions", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    async def positions(request: Request) -> HTMLResponse:
        return page("positions", "/positions", {"positions": await pool.fetch(Q["positions"]),
                                                "orders": await pool.fetch(Q["orders"])}, request)

    @app.get("/bus", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    async def bus(request: Request) -> HTMLResponse:
        return page("bus", "/bus", {"backlog": await pool.fetch(Q["backlog"]), "messages": await pool.fetch(Q["messages"]),
                                    "dead": await pool.fetch(Q["dead"])}, request)

    @app.get("/costs", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    async def costs(request: Request) -> HTMLResponse:
        daily = await pool.fetch(Q["costs_daily"])
        chart = bar_chart([(str(r[0]), r[1]) for r in reversed(daily)])
        return page("costs", "/costs", {"rows": await pool.fetch(Q["costs_by"]), "daily": daily, "chart": chart},
                    request)

    @app.get("/skills", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    async def skills(request: Request) -> HTMLResponse:
        return page("skills", "/skills", {"skills": await pool.fetch(Q["skills"]),
                                          "rejections": await pool.fetch(Q["rejections"])}, request)

    @app.get("/halts", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    async def halts(request: Request) -> HTMLResponse:
        rows = [dict(r, evidence=json.dumps(json.loads(r["evidence"]), indent=1)) for r in await pool.fetch(Q["halts"])]
        return page("halts", "/halts", {"halts": rows}, request)
