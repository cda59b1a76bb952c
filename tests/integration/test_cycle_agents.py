"""The agents on real bars through the real bus: a filled path, a veto from each signer,
a skip, no order without three approvals, none while halted, none twice."""
from __future__ import annotations

import asyncio

import pytest

from brain.topics import TradeProposal
from tests.support.cycle import outcome_of, publish_bar, start_brain, states


@pytest.fixture
async def brain(db, tmp_path):
    b = await start_brain(db, tmp_path)
    yield b
    await b.close()


def first(kind: str, rows):
    for bar, state in rows:
        if state is not None and (state.signalled_side is not None) == (kind == "signal"):
            return bar, state
    raise AssertionError("no such bar in the window")


async def test_a_skip_and_a_placed_order_on_real_bars(brain, db):
    rows = states("AAPL", "2013-01-02", "2013-01-31")
    bar, state = first("quiet", rows)
    assert await outcome_of(db, await publish_bar(brain, bar, state)) == "skip"
    # AAPL on 2013-01-15: trending down, composite -0.59, a sell signal every signer approves.
    bar, state = next((b, s) for b, s in rows if b.ts.strftime("%Y-%m-%d") == "2013-01-15")
    assert state.signalled_side == "sell"
    corr = await publish_bar(brain, bar, state)
    assert await outcome_of(db, corr) == "placed"
    [(coid, side, qty, stop)] = db.sql("SELECT client_order_id, side, qty, stop_price FROM orders "
                                       "WHERE intent = 'open' AND correlation_id = %s", (corr,))
    assert side == "sell" and qty >= 1
    sigs = db.sql("SELECT payload->>'signer', payload->>'verdict' FROM agent_messages "
                  "WHERE topic = 'trade.signature' AND correlation_id = %s ORDER BY 1", (corr,))
    assert sigs == [("double_checker", "approve"), ("fact_checker", "approve"), ("risk_gate", "approve")]
    assert db.sql("SELECT count(*) FROM orders WHERE parent_client_order_id = %s AND order_type = 'stop'",
                  (coid,)) == [(1,)], "the stop is attached at placement"


async def inject(brain, db, bar, state, **changes) -> str:
    """A proposal as the Strategist would make it for this bar, with some fields altered."""
    corr = await publish_bar(brain, bar, state)
    await outcome_of(db, corr)  # let the real cycle end first
    state_id = db.sql("SELECT id FROM agent_messages WHERE topic = 'market.state' AND correlation_id = %s", (corr,))[0][0]
    atr = state.indicators["atr"]
    side = changes.pop("side", state.signalled_side or "buy")
    stop = state.close - 2 * atr if side == "buy" else state.close + 2 * atr
    tp = state.close + 3 * atr if side == "buy" else state.close - 3 * atr
    base = dict(proposal_id=f"{corr}:v9", symbol=bar.symbol, bar_time=bar.ts, state_message_id=state_id, side=side,
                entry=state.close, stop=round(stop, 4), take_profit=round(tp, 4), confidence=0.6, edge=1.5,
                size_factor=1.0, regime=state.computed_regime, stance="risk_on", rationale="injected",
                numbers={"close": state.close, "atr": atr, "entry": state.close, "stop": round(stop, 4),
                         "take_profit": round(tp, 4), "composite": state.composite})
    base.update(changes)
    corr2 = corr + "#injected"
    await brain.bus.publish("trade.proposal", TradeProposal(**base), from_agent="test", correlation_id=corr2)
    return corr2


async def test_each_signer_can_veto(brain, db):
    rows = states("AAPL", "2013-01-02", "2013-01-31")
    days = {b.ts.strftime("%Y-%m-%d"): (b, s) for b, s in rows if s is not None}
    # Risk Gate: a stop 30% away is not a stop.
    bar, state = days["2013-01-15"]
    corr = await inject(brain, db, bar, state, stop=round(state.close * 1.3, 4))
    assert await outcome_of(db, corr) == "veto"
    # FactChecker: a cited close that is not the stored close.
    bar, state = days["2013-01-16"]
    corr2 = await inject(brain, db, bar, state, numbers={"close": state.close + 5})
    assert await outcome_of(db, corr2) == "veto"
    # DoubleChecker: a buy against its own reading of a falling market.
    bar, state = days["2013-01-17"]
    corr3 = await inject(brain, db, bar, state, side="buy")
    assert await outcome_of(db, corr3) == "veto"
    vetoes = dict(db.sql("""SELECT correlation_id, string_agg(payload->>'signer', ',' ORDER BY payload->>'signer')
                             FROM agent_messages WHERE topic = 'trade.signature' AND payload->>'verdict' = 'veto'
                              AND correlation_id LIKE '%%#injected' GROUP BY 1"""))
    assert "risk_gate" in vetoes[corr] and "fact_checker" in vetoes[corr2] and "double_checker" in vetoes[corr3]
    assert db.sql("SELECT count(*) FROM orders WHERE correlation_id LIKE '%%#injected'") == [(0,)]
    journal = db.sql("SELECT body_md FROM agent_journal WHERE correlation_id = %s", (corr2,))[0][0]
    assert "Signature: fact_checker" in journal and "cited" in journal


async def test_no_order_while_halted_and_never_twice(brain, db):
    rows = states("AAPL", "2013-01-02", "2013-01-31")
    days = {b.ts.strftime("%Y-%m-%d"): (b, s) for b, s in rows if s is not None}
    db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (2, 'test', 'test halt', 'watchdog')",
           role="watchdog")
    bar, state = days["2013-01-15"]
    corr = await publish_bar(brain, bar, state)
    assert await outcome_of(db, corr) == "halted"
    assert db.sql("SELECT count(*) FROM orders") == [(0,)]
    db.sql("UPDATE halts SET resumed_at = now(), resumed_by = 'ops', resume_reason = 'test'", role="operator")
    bar, state = days["2013-01-16"]
    corr = await inject(brain, db, bar, state, side="sell")
    await outcome_of(db, corr)
    orders = db.sql("SELECT client_order_id FROM orders WHERE intent = 'open'")
    # Redeliver every signature of every proposal: the executor must not place anything new.
    db.sql("UPDATE agent_deliveries SET state = 'pending', attempts = 0 WHERE consumer = 'executor'")
    for _ in range(100):
        if db.sql("SELECT count(*) FROM agent_deliveries WHERE consumer = 'executor' AND state <> 'done'") == [(0,)]:
            break
        await asyncio.sleep(0.05)
    assert db.sql("SELECT client_order_id FROM orders WHERE intent = 'open'") == orders
    for (coid,) in orders:
        [(n,)] = db.sql("""SELECT count(*) FROM agent_messages s JOIN orders o ON o.correlation_id = s.correlation_id
                            WHERE s.topic = 'trade.signature' AND s.payload->>'verdict' = 'approve'
                              AND o.client_order_id = %s""", (coid,))
        assert n == 3, "an order exists only with three approvals"


async def test_malformed_model_answers_become_vetoes_and_skips(db, tmp_path, monkeypatch):
    from brain.bench.model_server import ModelServer

    with ModelServer() as server:
        server.modes = ["malformed"] * 100
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
        brain = await start_brain(db, tmp_path, router_routes=["anthropic"])
        try:
            rows = states("AAPL", "2013-01-02", "2013-01-31")
            days = {b.ts.strftime("%Y-%m-%d"): (b, s) for b, s in rows if s is not None}
            bar, state = days["2013-01-15"]
            corr = await publish_bar(brain, bar, state)
            assert await outcome_of(db, corr) == "skip"
            [(reason,)] = db.sql("SELECT payload->>'reason' FROM agent_messages WHERE topic = 'trade.skip' "
                                 "AND correlation_id = %s", (corr,))
            assert "stance risk_off" in reason  # the regime failed closed to risk_off
            bar, state = days["2013-01-16"]
            corr2 = await inject(brain, db, bar, state, side="sell")
            assert await outcome_of(db, corr2) == "veto"
            verdicts = db.sql("SELECT payload->>'signer', payload->>'verdict', payload->'reasons'->>0 FROM agent_messages"
                              " WHERE topic = 'trade.signature' AND correlation_id = %s ORDER BY 1", (corr2,))
            assert [v[1] for v in verdicts] == ["veto", "veto", "veto"]
            assert all("model failure, failing closed" in v[2] for v in verdicts)
        finally:
            await brain.close()
    invalid = db.sql("SELECT count(*) FROM llm_cost_ledger WHERE outcome = 'invalid'")[0][0]
    assert invalid >= 8, "every attempt, repair included, is in the ledger"


async def test_live_bars_become_states_and_cycles(brain, db):
    """Bars arriving one by one (as from the ingress) get their signals from the stored history."""
    from brain.market.history import bar_at, bundled_frame

    frame = bundled_frame("IBM").loc["2012-06-01":"2013-01-10"]
    async with brain.pool.acquire() as conn:
        for i in range(len(frame) - 1):
            b = bar_at("IBM", frame, i, source="ingress")
            await conn.execute("INSERT INTO bars (symbol, ts, open, high, low, close, volume, source) "
                               "VALUES ($1,$2,$3,$4,$5,$6,$7,'ingress')", b.symbol, b.ts, b.open, b.high, b.low,
                               b.close, b.volume)
    last = bar_at("IBM", frame, len(frame) - 1, source="ingress")
    async with brain.pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO bars (symbol, ts, open, high, low, close, volume, source) "
                           "VALUES ($1,$2,$3,$4,$5,$6,$7,'ingress')", last.symbol, last.ts, last.open, last.high,
                           last.low, last.close, last.volume)
        await brain.bus.publish("market.bar", last, from_agent="ingress", conn=conn,
                                correlation_id=f"IBM@{last.ts.isoformat()}")
    corr = f"IBM@{last.ts.isoformat()}"
    assert await outcome_of(db, corr) in ("skip", "veto", "placed", "halted")
    [(rsi,)] = db.sql("SELECT (payload->'indicators'->>'rsi')::float8 FROM agent_messages "
                      "WHERE topic = 'market.state' AND correlation_id = %s", (corr,))
    assert 0 < rsi < 100


async def test_signatures_committed_out_of_order_are_decided_exactly_once(brain, db):
    """Message ids are handed out before commit: the signature with the highest id can commit
    first. The executor must still decide, once, on whichever delivery sees all three."""
    from datetime import datetime, timezone

    from brain.agents import executor
    from brain.topics import TradeSignature
    from brain.bus import Delivery

    corr = "AAPL@2013-01-15T00:00:00+00:00#ordering"
    when = datetime(2013, 1, 15, tzinfo=timezone.utc)
    # Addressed to no running consumer: the test plays the executor's deliveries itself.
    proposal = TradeProposal(proposal_id=f"{corr}:v1", symbol="AAPL", bar_time=when, state_message_id=1, side="sell",
                             entry=70.0, stop=72.0, take_profit=67.0, confidence=0.6, edge=1.5, size_factor=1.0,
                             regime="trending_down", stance="neutral", rationale="test", numbers={"close": 70.0})
    pid = await brain.bus.publish("trade.proposal", proposal, from_agent="test", correlation_id=corr, to_agent="nobody")

    def signature(signer: str, verdict: str) -> TradeSignature:
        return TradeSignature(proposal_id=proposal.proposal_id, proposal_message_id=pid, signer=signer,
                              verdict=verdict, reasons=["test"], qty=10 if signer == "risk_gate" else None)

    async def publish(sig, conn=None) -> int:
        return await brain.bus.publish("trade.signature", sig, from_agent=sig.signer, correlation_id=corr,
                                       causation_id=pid, to_agent="nobody", conn=conn)

    def delivery(mid: int, sig) -> Delivery:
        return Delivery("executor", mid, "trade.signature", sig, sig.signer, "nobody", corr, pid, 1, when)

    handle = executor.make_handler(brain.ctx, require_watchdog=False)
    sigs = [signature("risk_gate", "approve"), signature("fact_checker", "approve"),
            signature("double_checker", "veto")]
    first = await publish(sigs[0])
    async with brain.pool.acquire() as slow, slow.transaction():
        middle = await publish(sigs[1], conn=slow)      # gets its id now, commits last
        newest = await publish(sigs[2])
        assert first < middle < newest
        assert await handle(delivery(newest, sigs[2])) is None, "two of three are visible"
    decisions = []
    for mid, sig in ((middle, sigs[1]), (newest, sigs[2]), (middle, sigs[1])):  # the last is a redelivery
        result = await handle(delivery(mid, sig))
        async with brain.pool.acquire() as conn, conn.transaction():
            outputs = await result.in_tx(conn)
            await brain.bus.publish_many(outputs, conn=conn)
        decisions += [o.payload.outcome for o in outputs]
    assert decisions == ["veto"]
    assert db.sql("SELECT count(*) FROM agent_messages WHERE topic = 'cycle.outcome' AND correlation_id = %s",
                  (corr,)) == [(1,)]


async def test_an_entry_not_yet_filled_counts_against_the_position_limits(brain, db):
    """Paper entries fill at the next bar's open: until then `positions` does not show them, and
    the limits must count them anyway."""
    from brain.agents import executor
    from brain.topics import TradeSignature
    from brain.bus import Delivery

    rows = states("AAPL", "2013-01-02", "2013-01-31")
    days = {b.ts.strftime("%Y-%m-%d"): (b, s) for b, s in rows if s is not None}
    bar, state = days["2013-01-15"]
    assert await outcome_of(db, await publish_bar(brain, bar, state)) == "placed"
    assert db.sql("SELECT count(*) FROM positions") == [(0,)], "the entry is working, not filled"

    def gate_reason(corr):
        return db.sql("SELECT payload->>'verdict', payload->'reasons'->>0 FROM agent_messages "
                      "WHERE topic = 'trade.signature' AND payload->>'signer' = 'risk_gate' AND correlation_id = %s",
                      (corr,))

    bar, state = days["2013-01-16"]
    corr = await inject(brain, db, bar, state, side="sell")
    assert await outcome_of(db, corr) == "veto"
    assert gate_reason(corr) == [("veto", "already holding or entering AAPL")]

    for n in range(4):  # four more entries working: five in all, the cap
        db.sql("INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty, status) "
               "VALUES (%s, %s, 'buy', 'open', 'market', 1, 'working')", (f"other-{n}", f"X{n}"), role="app")
    msft = {b.ts.strftime("%Y-%m-%d"): (b, s) for b, s in states("MSFT", "2013-01-02", "2013-01-31") if s}
    bar, state = msft["2013-01-15"]
    corr = await inject(brain, db, bar, state, side="sell")
    assert await outcome_of(db, corr) == "veto"
    assert gate_reason(corr) == [("veto", "5 positions open or entering, the cap is 5")]

    # The executor checks again at placement: here the gate signed before the book filled up.
    when = bar.ts
    corr = "GOOG@2013-01-15T00:00:00+00:00#late"
    proposal = TradeProposal(proposal_id=f"{corr}:v1", symbol="GOOG", bar_time=when, state_message_id=1,
                             side="sell", entry=700.0, stop=720.0, take_profit=670.0, confidence=0.6, edge=1.5,
                             size_factor=1.0, regime="trending_down", stance="neutral", rationale="test",
                             numbers={"close": 700.0})
    pid = await brain.bus.publish("trade.proposal", proposal, from_agent="test", correlation_id=corr, to_agent="nobody")
    sigs = [TradeSignature(proposal_id=proposal.proposal_id, proposal_message_id=pid, signer=s, verdict="approve",
                           reasons=["test"], qty=10 if s == "risk_gate" else None)
            for s in ("risk_gate", "fact_checker", "double_checker")]
    mids = [await brain.bus.publish("trade.signature", s, from_agent=s.signer, correlation_id=corr, causation_id=pid,
                                    to_agent="nobody") for s in sigs]
    result = await executor.make_handler(brain.ctx, require_watchdog=False)(
        Delivery("executor", mids[-1], "trade.signature", sigs[-1], "double_checker", "nobody", corr, pid, 1, when))
    async with brain.pool.acquire() as conn, conn.transaction():
        [outcome] = await result.in_tx(conn)
    assert (outcome.payload.outcome, outcome.payload.by) == ("veto", "executor")
    assert outcome.payload.detail == "5 positions open or entering, the cap is 5"
    assert db.sql("SELECT count(*) FROM orders WHERE symbol = 'GOOG'") == [(0,)]


def _aapl_sell_day():
    """AAPL's bar and state on 2013-01-15: a sell signal every signer approves."""
    rows = states("AAPL", "2013-01-02", "2013-01-31")
    return next((b, s) for b, s in rows if b.ts.strftime("%Y-%m-%d") == "2013-01-15")


def _skip_reason(db, corr):
    [(reason,)] = db.sql("SELECT payload->>'reason' FROM agent_messages WHERE topic = 'trade.skip' "
                         "AND correlation_id = %s", (corr,))
    return reason


async def test_a_bracket_below_zero_is_a_skip_before_any_model_call(brain, db):
    bar, state = _aapl_sell_day()
    assert state.signalled_side == "sell"
    wild = state.model_copy(update={"indicators": {**state.indicators, "atr": state.close * 0.4}})
    corr = await publish_bar(brain, bar, wild)
    assert await outcome_of(db, corr) == "skip"
    assert "the take-profit would be at" in _skip_reason(db, corr)
    assert db.sql("SELECT count(*) FROM llm_cost_ledger WHERE agent = 'strategist' AND correlation_id = %s",
                  (corr,)) == [(0,)]


async def test_a_strategist_answer_past_a_proposals_bounds_is_a_skip(db, tmp_path, monkeypatch):
    """A hand-edited skill schema lets a size factor of 1.5 by; the proposal's bounds, in code, do not."""
    import shutil

    from brain.bench.model_server import ModelServer
    from tests.support.paths import REPO

    skills = tmp_path / "skills"
    shutil.copytree(REPO / "skills", skills)
    regime = skills / "regime" / "SKILL.md"
    regime.write_text(regime.read_text().replace("route_preference: [claude_cli, anthropic, openai, offline]",
                                                 "route_preference: [offline]"))
    strategist = skills / "strategist" / "SKILL.md"
    text = strategist.read_text()
    assert '"size_factor": {"type": "number", "minimum": 0, "maximum": 1,' in text
    strategist.write_text(text.replace('"size_factor": {"type": "number", "minimum": 0, "maximum": 1,',
                                       '"size_factor": {"type": "number", "minimum": 0, "maximum": 3,'))
    with ModelServer() as server:
        server.answer = {"action": "propose", "side": "sell", "confidence": 0.6, "edge": 1.5, "size_factor": 1.5,
                         "rationale": "bigger", "skip_reason": None}
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
        brain = await start_brain(db, tmp_path, router_routes=["offline", "anthropic"], skills_dir=skills)
        try:
            bar, state = _aapl_sell_day()
            corr = await publish_bar(brain, bar, state)
            assert await outcome_of(db, corr) == "skip"
            assert _skip_reason(db, corr).startswith(
                "model failure, failing closed: the answer is outside what the code takes: size_factor:")
        finally:
            await brain.close()
    assert db.sql("SELECT count(*) FROM orders") == [(0,)]


async def test_a_cycle_whose_entry_a_halt_cancels_is_journaled(brain, db, tmp_path):
    import psycopg

    from watchdog_proc.actions import raise_halt
    from watchdog_proc.checks import L3, Breach

    bar, state = _aapl_sell_day()
    corr = await publish_bar(brain, bar, state)
    assert await outcome_of(db, corr) == "placed"
    with psycopg.connect(db.url("watchdog"), autocommit=True) as conn:
        raise_halt(conn, db.settings(tmp_path / "wd"), Breach("brain_heartbeat", L3, "drill"))
    for _ in range(200):
        if db.sql("SELECT 1 FROM agent_journal WHERE correlation_id = %s", (corr,)):
            break
        await asyncio.sleep(0.05)
    [(outcome, body)] = db.sql("SELECT outcome, body_md FROM agent_journal WHERE correlation_id = %s", (corr,))
    assert outcome == "halted" and "cancelled by an L3 halt" in body
