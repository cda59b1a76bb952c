"""The recorder: when a cycle ends (cycle.outcome), read everything the cycle said from the
bus log and the ledger, and write the journal entry a person can follow as a postmortem."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


from brain.agents.context import AgentContext
from brain.bus import Delivery, Handler, HandlerResult, Outgoing
from brain.db.types import Conn, Queryable
from brain.journal import JournalEntry, record_entry
from brain.sql import queries_beside

Q = queries_beside(__file__, "recorder.sql")
INDICATOR_ORDER = ("rsi", "macd_hist", "bb_pct_b", "adx", "ema_fast", "ema_slow", "ema_cross", "roc", "roc_pct",
                   "vwap", "volume_ratio", "realized_vol", "vol_pct", "atr")


def _fmt(v: object) -> str:
    return f"{v:,.4f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def _call(c: dict[str, Any] | None) -> str:
    if not c:
        return "no model call"
    return f"route `{c['route']}`, model `{c['model']}`, skill `{c['skill']}` ({c['skill_hash'][:12]}), ${c['cost_usd']:.4f}"


def build_entry(correlation_id: str | None, messages: list[dict[str, Any]], calls: list[dict[str, Any]]) -> JournalEntry:
    by_topic: dict[str, list[Any]] = {}  # payloads as JSON
    for m in messages:
        by_topic.setdefault(m["topic"], []).append(m["payload"])
    outcome = by_topic["cycle.outcome"][-1]
    state = (by_topic.get("market.state") or [None])[0]
    regime = (by_topic.get("regime.assessment") or [None])[0]
    proposal = (by_topic.get("trade.proposal") or [None])[0]
    signatures = by_topic.get("trade.signature", [])
    order = (by_topic.get("order.placed") or [None])[0]
    fill = (by_topic.get("order.filled") or [None])[0]
    symbol = outcome["symbol"]
    sections: list[tuple[str, str]] = []
    sections.append(("What happened", f"**{outcome['outcome']}** by {outcome['by']}: {outcome['detail']}"))
    if state:
        rows = [f"| close | {_fmt(state['close'])} |", f"| computed regime | {state['computed_regime']} |",
                f"| composite | {_fmt(state['composite'])} |",
                f"| signalled side | {state['signalled_side'] or 'none'} |"]
        rows += [f"| {k} | {_fmt(state['indicators'][k])} |" for k in INDICATOR_ORDER if k in state["indicators"]]
        sections.append(("The numbers (computed by code)", "| number | value |\n|---|---|\n" + "\n".join(rows)))
    if regime:
        sections.append(("Regime", f"{regime['regime']} with stance **{regime['stance']}** (confidence "
                                   f"{_fmt(regime['confidence'])}). {regime['rationale']}\n\n{_call(regime.get('call'))}"))
    if proposal:
        sections.append(("Proposal (Strategist)",
                         f"{proposal['side'].upper()} {symbol} at {_fmt(proposal['entry'])}, stop {_fmt(proposal['stop'])}, "
                         f"take-profit {_fmt(proposal['take_profit'])}; confidence {_fmt(proposal['confidence'])}, "
                         f"edge {_fmt(proposal['edge'])}R, size factor {_fmt(proposal['size_factor'])}.\n\n"
                         f"{proposal['rationale']}\n\nNumbers cited: "
                         + ", ".join(f"{k} {_fmt(v)}" for k, v in proposal["numbers"].items())
                         + f"\n\n{_call(proposal.get('call'))}"))
    for skip in by_topic.get("trade.skip", []):
        sections.append((f"Skip ({skip['by'].capitalize()})", f"{skip['reason']}\n\n{_call(skip.get('call'))}"))
    for s in signatures:
        seen = ", ".join(f"{k} {_fmt(v)}" for k, v in list(s["numbers_seen"].items())[:12])
        qty = f" for {_fmt(s['qty'])} shares" if s.get("qty") else ""
        sections.append((f"Signature: {s['signer']}",
                         f"**{s['verdict']}**{qty}. " + " ".join(s["reasons"]) +
                         (f"\n\nNumbers seen: {seen}" if seen else "") + f"\n\n{_call(s.get('call'))}"))
    if order:
        sections.append(("Order", f"{order['side']} {_fmt(order['qty'])} {symbol}, client order id "
                                  f"`{order['client_order_id']}`, stop {_fmt(order['stop'])} attached, take-profit "
                                  f"{_fmt(order['take_profit'])}; status {order['status']}."))
    if fill:
        sections.append(("Fill", f"{fill['side']} {_fmt(fill['qty'])} at {_fmt(fill['price'])} "
                                 f"(commission {_fmt(fill['commission'])}) on {fill['at']}."))
    total = sum(c["cost_usd"] for c in calls)
    if calls:
        lines = ["| agent | skill (hash) | route | model | tokens in/out/cached | cost | latency | outcome |",
                 "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {c['agent']} | {c['skill']} ({c['skill_hash'][:8]}) | {c['route']} | {c['model']} | "
                  f"{c['input_tokens']}/{c['output_tokens']}/{c['cache_read_tokens']} | ${c['cost_usd']:.4f} | "
                  f"{c['latency_ms']:.0f} ms | {c['outcome']}{' (' + c['error_class'] + ')' if c['error_class'] else ''} |"
                  for c in calls]
        sections.append((f"Model calls (total ${total:.4f})", "\n".join(lines)))
    title = f"{symbol} {outcome['bar_time'][:10]}: {outcome['outcome']}"
    facts = {"outcome": outcome, "state": state, "regime": regime, "proposal": proposal, "signatures": signatures,
             "order": order, "fill": fill, "model_calls": calls, "cost_usd": total}
    return JournalEntry(kind="cycle", outcome=outcome["outcome"], title=title, symbol=symbol,
                        correlation_id=correlation_id, sections=sections, facts=facts)


async def record_cycle(conn: Queryable, context_dir: Path, correlation_id: str | None) -> int:
    messages = [{"id": r["id"], "topic": r["topic"], "payload": json.loads(r["payload"])}
                for r in await conn.fetch(Q["cycle_messages"], correlation_id)]
    calls = [dict(r) for r in await conn.fetch(Q["cycle_calls"], correlation_id)]
    entry = build_entry(correlation_id, messages, calls)
    # Not flushed to disk per cycle: the start after a crash rewrites recent files from their
    # rows (brain.journal.repair).
    return await record_entry(conn, context_dir, entry, durable=False)


def make_handler(ctx: AgentContext) -> Handler:
    async def handle(d: Delivery) -> HandlerResult:
        await ctx.router.flush_ledger()  # the cycle's model calls must be in the ledger it quotes

        async def record(conn: Conn) -> list[Outgoing]:
            # The row commits with the ack, so a redelivered outcome is journaled once.
            await record_cycle(conn, ctx.context_dir, d.correlation_id)
            return []

        return HandlerResult(in_tx=record)

    return handle
