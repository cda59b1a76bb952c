"""The executor: the single gateway every order passes. It places an order only with three
approvals for the same proposal, no halt forbidding it and a watchdog that is alive; the
client order id derives from the proposal, so a redelivered message never places twice."""
from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import cast

import asyncpg

import asyncpg

from brain.agents import reads
from brain.agents.context import AgentContext
from brain.topics import CycleOutcome, OrderPlaced, TradeProposal, TradeSignature
from brain.broker.base import BracketOrder
from brain.bus import Bus, Delivery, Handler, HandlerResult, Outgoing
from brain.db.types import Conn
from brain.risk.gate import no_room_for
from brain.sql import queries_beside

log = logging.getLogger("brain.executor")
Q = queries_beside(__file__, "executor.sql")
SIGNERS = {"risk_gate", "fact_checker", "double_checker"}


def client_order_id(proposal_id: str) -> str:
    return "b-" + hashlib.sha256(proposal_id.encode()).hexdigest()[:24]


def _outcome(p: TradeProposal, outcome: str, by: str, detail: str, corr: str | None, cause: int) -> Outgoing:
    return Outgoing("cycle.outcome", CycleOutcome(symbol=p.symbol, bar_time=p.bar_time, outcome=outcome, by=by,
                                                  detail=detail), "executor", corr, cause)


async def permission(conn: Conn, stale_s: float, require_watchdog: bool) -> str | None:
    """Why new entries are refused right now, or None."""
    halts = await conn.fetch(Q["blocking_halts"])
    if halts:
        h = halts[0]
        return f"halt {h['id']} at L{h['level']} ({h['invariant']}) is active"
    if require_watchdog:
        age = await conn.fetchval(Q["watchdog_age"])
        if age is None:
            return "no watchdog has ever checked in"
        if age > stale_s:
            return f"the watchdog has been silent for {float(age):.1f}s"
    return None


def make_handler(ctx: AgentContext, require_watchdog: bool = True) -> Handler:
    async def handle(d: Delivery) -> HandlerResult | None:
        sig = cast(TradeSignature, d.payload)  # the bus validated it as its topic's model
        rows = await ctx.pool.fetch(Q["signatures"], sig.proposal_message_id)
        sigs: dict[str, TradeSignature] = {}
        for r in rows:
            s = TradeSignature.model_validate_json(r["payload"])
            sigs.setdefault(s.signer, s)
        # Signatures commit in any order, so whichever delivery first sees all three decides;
        # the decision takes the cycle's lock and finds out whether it was already made.
        if set(sigs) != SIGNERS:
            return None
        proposal = TradeProposal.model_validate_json(await ctx.pool.fetchval(Q["proposal"], sig.proposal_message_id))
        corr = d.correlation_id
        vetoes = [(name, s) for name, s in sigs.items() if s.verdict == "veto"]
        qty = sigs["risk_gate"].qty
        order = BracketOrder(client_order_id(proposal.proposal_id), proposal.symbol, proposal.side, qty or 0.0,
                             proposal.stop, proposal.take_profit, corr or "", proposal.proposal_id, proposal.bar_time)

        async def decide(conn: Conn) -> list[Outgoing]:
            if await cycle_decided(conn, corr):
                return []  # decided by an earlier delivery, or expired while the signatures came in
            if vetoes:
                who = ", ".join(sorted(name for name, _ in vetoes))
                why = "; ".join(f"{name}: {' / '.join(s.reasons)}" for name, s in sorted(vetoes, key=lambda v: v[0]))
                return [_outcome(proposal, "veto", who, why, corr, d.message_id)]
            refused = await permission(conn, ctx.settings.heartbeat_stale_s, require_watchdog)
            if refused:
                return [_outcome(proposal, "halted", "executor", f"no new entries: {refused}", corr, d.message_id)]
            if not qty or qty < 1:
                return [_outcome(proposal, "error", "executor", "risk gate approved without a size", corr, d.message_id)]
            # The Risk Gate saw the book when it signed; other cycles may have entered since.
            # Entry decisions take turns from here to their commit, so two cycles cannot both
            # find the last free place.
            await conn.execute(Q["lock_entries"])
            full = no_room_for(proposal.symbol, (await reads.account(conn, ctx.broker)).open_positions)
            if full is not None:
                return [_outcome(proposal, "veto", "executor", full, corr, d.message_id)]
            result = await ctx.broker.place_bracket(conn, order)
            if result.status == "duplicate":
                return []
            if result.status == "rejected":
                outcome = "halted" if "halt" in result.detail else "error"
                return [_outcome(proposal, outcome, "broker", result.detail, corr, d.message_id)]
            return [Outgoing("order.placed", OrderPlaced(proposal_id=proposal.proposal_id,
                                                         client_order_id=order.client_order_id,
                                                         symbol=order.symbol, side=order.side, qty=order.qty,
                                                         stop=order.stop, take_profit=order.take_profit,
                                                         status=result.status), "executor", corr, d.message_id)]

        return HandlerResult(in_tx=decide, durable=not vetoes)

    return handle


async def cycle_decided(conn: Conn, correlation_id: str | None) -> bool:
    """Take the cycle's lock until the transaction ends, then: has it an outcome or an order?"""
    await conn.execute(Q["lock_cycle"], correlation_id or "")
    return await conn.fetchval(Q["cycle_decided"], correlation_id)


async def expire_stale_proposals(pool: asyncpg.Pool, bus: Bus, timeout_s: float) -> None:
    """A proposal that did not collect its three signatures in time ends as expired."""
    while True:
        await asyncio.sleep(min(5.0, timeout_s / 2))
        for r in await pool.fetch(Q["stale_proposals"], timeout_s):
            p = TradeProposal.model_validate_json(r["payload"])
            async with pool.acquire() as conn, conn.transaction():
                if await cycle_decided(conn, r["correlation_id"]):
                    continue  # the executor decided it since the look
                await bus.publish("cycle.outcome", CycleOutcome(
                    symbol=p.symbol, bar_time=p.bar_time, outcome="expired", by="executor",
                    detail=f"fewer than three signatures within {timeout_s:.0f}s"),
                    from_agent="executor", correlation_id=r["correlation_id"], causation_id=r["id"],
                    conn=conn)
