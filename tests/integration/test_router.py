"""The router with the real anthropic and openai SDKs against a local server: answers,
costs, fallbacks, repairs, breakers and the budget. No network. (The CLI routes are in
test_router_cli_routes.py.)"""
from __future__ import annotations

import asyncio
from contextlib import contextmanager

import psycopg
import pytest

from brain.router import offline
from brain.router.answers import ModelAnswer, ModelFailure
from brain.router.api_routes import AnthropicRoute, OpenAIRoute
from brain.router.prices import PriceTable
from brain.router.routes import OfflineRoute, RouteError
from brain.db.urls import psycopg_conninfo
from brain.bench.model_server import ModelServer
from tests.support.router import GOOD, INPUTS, PHILOSOPHY, SKILL, call, ledger, make


@pytest.fixture
def server():
    with ModelServer() as s:
        s.answer = GOOD
        yield s



def anthropic(server, timeout=5.0):
    return AnthropicRoute("claude-sonnet-5-5", timeout, base_url=server.url, api_key="test-key")


def openai_route(server):
    return OpenAIRoute("openai", "gpt-5-mini", 5.0, base_url=server.url + "/v1", api_key="test-key")


@contextmanager
def db_lock(table: str, db):
    """Hold an exclusive lock on a table from another session while the block runs."""
    with psycopg.connect(psycopg_conninfo(db.url("admin"))) as other:
        other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield


def anthropic_route_unused():
    return AnthropicRoute("claude-sonnet-5-5", 1.0, base_url="http://127.0.0.1:9", api_key="unused")



async def test_anthropic_answer_is_validated_and_costed(pool, server, db):
    router = make(pool, [anthropic(server)])
    answer = await call(router, INPUTS, "c-1")
    assert isinstance(answer, ModelAnswer) and answer.data == GOOD and answer.route == "anthropic"
    [row] = ledger(db)
    route, model, outcome, err, inp, out, cread, cwrite, cost, skill_hash = row
    # The regime skill asks for Haiku 5.5: $0.10 in, $0.50 out, $0.125 cache write, $0.01 cache read per million.
    assert (route, model, outcome, err, skill_hash) == ("anthropic", "claude-haiku-5-5", "ok", None, SKILL.content_hash)
    assert cost == pytest.approx((inp * 0.10 + out * 0.50 + cread * 0.01 + cwrite * 0.125) / 1e6, abs=1e-12)
    assert cwrite > 0 and cread == 0
    sent = server.requests[0][1]
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"} and SKILL.text.strip() in sent["system"][0]["text"]
    assert sent["output_config"]["format"] == {"type": "json_schema", "schema": SKILL.output_schema}


async def test_repeated_calls_read_the_cached_prefix(pool, server, db):
    router = make(pool, [anthropic(server)])
    for i in range(10):
        await call(router, {**INPUTS, "bar": i}, f"c-{i}")
    rows = ledger(db)
    cache_read = sum(r[6] for r in rows)
    total_input = sum(r[4] + r[6] + r[7] for r in rows)
    assert cache_read / total_input >= 0.8


async def test_fallback_order_and_every_attempt_in_the_ledger(pool, server, db):
    server.modes = ["rate_limit"]
    router = make(pool, [anthropic(server), openai_route(server), OfflineRoute()])
    answer = await call(router, INPUTS, "c-1")
    assert isinstance(answer, ModelAnswer) and answer.route == "openai"
    assert [(r[0], r[2], r[3]) for r in ledger(db)] == [("anthropic", "failed", "rate_limit"), ("openai", "ok", None)]


async def test_overload_and_server_errors_are_route_failures(pool, server, db):
    server.modes = ["overloaded", "server_error"]
    offline.register("regime", lambda x: GOOD)
    router = make(pool, [anthropic(server), openai_route(server), OfflineRoute()])
    answer = await call(router, INPUTS, None)
    assert answer.route == "offline"
    assert [(r[0], r[3]) for r in ledger(db)] == [("anthropic", "overloaded"), ("openai", "server"), ("offline", None)]


async def test_each_api_route_sends_its_own_key_from_the_settings(pool, server, db, monkeypatch, tmp_path):
    from brain.router.factory import build_routes

    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-anthropic")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    for routes, extra, sent in ((["openai"], {}, "sk-openai"),
                                (["anthropic"], {}, "sk-anthropic"),
                                # a third party never gets the OpenAI key
                                (["compatible"], {"router_compatible_base_url": server.url + "/v1",
                                                  "router_compatible_api_key": "sk-router"}, "sk-router"),
                                (["compatible"], {"router_compatible_base_url": server.url + "/v1"}, "none")):
        settings = db.settings(tmp_path, router_routes=routes, **extra)
        answer = await call(make(pool, build_routes(settings)), INPUTS, None)
        assert isinstance(answer, ModelAnswer) and answer.route == routes[0]
        assert server.authorizations[-1] in (sent, f"Bearer {sent}")


async def test_a_failed_call_is_booked_under_the_model_its_route_called(pool, server, db):
    """The regime skill names a Claude model; the OpenAI route calls its own, and a failure it
    bills is priced as that model's, not as the skill's."""
    server.modes = ["server_error"] * 4
    router = make(pool, [openai_route(server)])
    assert SKILL.model.startswith("claude")
    assert isinstance(await call(router, INPUTS, None), ModelFailure)
    assert {r[1] for r in ledger(db)} == {"gpt-5-mini"}


async def test_a_hanging_route_times_out(pool, server, db):
    server.modes = ["hang"]
    server.hang_s = 3.0
    router = make(pool, [anthropic(server, timeout=0.5)])
    answer = await call(router, INPUTS, None)
    assert isinstance(answer, ModelFailure)
    assert ledger(db)[0][3] in ("timeout", "connection")


async def test_malformed_answers_get_one_repair_then_fail_closed(pool, server, db):
    server.modes = ["malformed", "malformed"]
    router = make(pool, [anthropic(server)])
    answer = await call(router, INPUTS, None)
    assert isinstance(answer, ModelFailure) and "invalid answer" in answer.attempts[0]
    assert [r[2] for r in ledger(db)] == ["invalid", "invalid"]
    repair = server.requests[1][1]["messages"][0]["content"]
    assert "previous answer was rejected" in repair
    server.modes = ["malformed"]
    fixed = await call(router, INPUTS, None)
    assert isinstance(fixed, ModelAnswer), "the repair attempt can succeed"


async def test_breaker_opens_half_opens_with_one_trial_and_closes(pool, server, db):
    offline.register("regime", lambda x: GOOD)
    router = make(pool, [anthropic(server), OfflineRoute()], breaker_threshold=2, breaker_cooldown_s=0.5)
    server.modes = ["server_error", "server_error"]
    for _ in range(2):
        assert (await call(router, INPUTS, None)).route == "offline"
    assert router.breakers["anthropic"].state == "open"
    sent = len(server.requests)
    assert (await call(router, INPUTS, None)).route == "offline"
    assert len(server.requests) == sent, "an open breaker sends nothing"
    state = db.sql("SELECT value->>'state' FROM app_state WHERE key = 'breaker:anthropic'")
    assert state == [("open",)]
    await asyncio.sleep(0.6)
    server.hang_s = 0.3
    server.modes = ["hang"]
    results = await asyncio.gather(*(call(router, INPUTS, None) for _ in range(4)))
    assert len(server.requests) == sent + 1, "half-open lets exactly one trial through"
    assert sorted(r.route for r in results) == ["anthropic", "offline", "offline", "offline"]
    assert router.breakers["anthropic"].state == "closed"


async def test_budget_reached_uses_only_zero_cost_routes(pool, server, db):
    offline.register("regime", lambda x: GOOD)
    db.sql("INSERT INTO llm_cost_ledger (agent, skill, skill_hash, route, model, cost_usd, outcome) "
           "VALUES ('x', 'regime', 'h', 'anthropic', 'claude-sonnet-5-5', 5.0, 'ok')")
    router = make(pool, [anthropic(server), OfflineRoute()], daily_budget_usd=5.0)
    answer = await call(router, INPUTS, None)
    assert answer.route == "offline" and server.requests == []
    assert [r[0] for r in ledger(db)] == ["anthropic", "offline"], "the paid route was not even tried"
    only_paid = make(pool, [anthropic(server)], daily_budget_usd=5.0)
    failure = await call(only_paid, INPUTS, None)
    assert isinstance(failure, ModelFailure) and "daily budget" in failure.attempts[0]


async def test_a_dated_snapshot_is_priced_as_its_model(pool, server, db):
    """The APIs answer with the dated snapshot that served the call: it costs what its model
    costs, not $0 (which would let spending pass the daily budget)."""
    server.snapshot = "-2026-08-07"
    router = make(pool, [openai_route(server)])
    answer = await call(router, INPUTS, None)
    [row] = ledger(db)
    assert row[1] == "gpt-5-mini-2026-08-07" and row[8] > 0 and answer.cost_usd == row[8]
    assert row[8] == pytest.approx(PriceTable().cost("gpt-5-mini", _usage(row)), abs=1e-12)


async def test_an_unpriced_model_counts_against_the_budget_and_is_refused_as_a_default(pool, server, db,
                                                                                      monkeypatch, tmp_path):
    from brain.errors import ConfigError
    from brain.router.factory import build_router

    router = make(pool, [OpenAIRoute("openai", "gpt-9-unpriced", 5.0, base_url=server.url + "/v1", api_key="k")])
    answer = await call(router, INPUTS, None)
    [row] = ledger(db)
    assert row[1] == "gpt-9-unpriced" and row[8] > 0 and answer.cost_usd == row[8]
    assert row[8] == pytest.approx(PriceTable().highest(_usage(row)), abs=1e-12)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    settings = db.settings(tmp_path, router_routes=["openai", "offline"], router_openai_model="gpt-9-unpriced")
    with pytest.raises(ConfigError, match="invalid setting BRAIN_ROUTER_OPENAI_MODEL: no price for 'gpt-9-unpriced'"):
        build_router(settings, pool, PHILOSOPHY)


def _usage(row):
    from brain.router.prices import Usage
    return Usage(input_tokens=row[4], output_tokens=row[5], cache_read_tokens=row[6], cache_write_tokens=row[7])


class _Broken(OfflineRoute):
    """A route that raises what no route should: a bug, a CLI path that is a directory."""
    name = "claude_cli"
    zero_cost = True

    async def complete(self, skill, prompt):
        raise PermissionError(13, "Permission denied", "/opt/claude")


async def test_a_route_that_raises_anything_is_a_booked_failure_and_the_next_route_answers(pool, db):
    offline.register("regime", lambda x: GOOD)
    router = make(pool, [_Broken(), OfflineRoute()], breaker_threshold=1, breaker_cooldown_s=0.1)
    answer = await call(router, INPUTS, None)
    assert isinstance(answer, ModelAnswer) and answer.route == "offline"
    assert [(r[0], r[2], r[3]) for r in ledger(db)] == [("claude_cli", "failed", "PermissionError"),
                                                         ("offline", "ok", None)]
    assert router.breakers["claude_cli"].state == "open"
    await asyncio.sleep(0.15)
    assert (await call(router, INPUTS, None)).route == "offline"  # the half-open trial fails too
    await asyncio.sleep(0.15)
    assert router.breakers["claude_cli"].allow(), "a failed trial does not leave the breaker shut for good"


async def test_a_non_finite_number_in_an_answer_is_invalid(pool, server, db):
    server.answer = {**GOOD, "confidence": float("nan")}
    router = make(pool, [anthropic(server)])
    failure = await call(router, INPUTS, None)
    assert isinstance(failure, ModelFailure)
    assert [r[2] for r in ledger(db)] == ["invalid", "invalid"], "the answer, then its repair"
    assert "confidence: not a finite number" in failure.attempts[0]


class _FailsThenHangs(OfflineRoute):
    name = "claude_cli"
    zero_cost = True

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, skill, prompt):
        self.calls += 1
        if self.calls == 1:
            raise RouteError("server", "down")
        await asyncio.Event().wait()  # a call that never returns, until it is cancelled


async def test_a_trial_cancelled_mid_call_lets_the_breaker_try_again(pool, db):
    route = _FailsThenHangs()
    router = make(pool, [route], breaker_threshold=1, breaker_cooldown_s=0.1)
    assert isinstance(await call(router, INPUTS, None), ModelFailure)
    assert router.breakers["claude_cli"].state == "open"
    await asyncio.sleep(0.15)
    trial = asyncio.ensure_future(router.call("regime", SKILL, INPUTS, None))
    await asyncio.sleep(0.05)
    assert route.calls == 2, "the half-open trial is in flight"
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert router.breakers["claude_cli"].allow(), "the abandoned trial no longer holds the breaker shut"
    await router.flush_ledger()
    assert [(r[0], r[2], r[3]) for r in ledger(db)] == [("claude_cli", "failed", "server"),
                                                       ("claude_cli", "failed", "cancelled")], "the cut call is booked"


async def test_ledger_rows_a_flush_could_not_write_are_kept_for_the_next(pool, db):
    router = make(pool, [OfflineRoute()])
    assert isinstance(await router.call("regime", SKILL, INPUTS, None), ModelAnswer)  # booked, not yet written
    with db_lock("llm_cost_ledger", db):
        flush = asyncio.ensure_future(router.flush_ledger())
        await asyncio.sleep(0.2)
        flush.cancel()  # a stop cuts the flush short while it waits
        with pytest.raises(asyncio.CancelledError):
            await flush
    assert ledger(db) == []
    await router.flush_ledger()
    assert [r[0] for r in ledger(db)] == ["offline"], "written by the next flush"


async def test_breakers_read_at_start_are_this_runs(pool, db):
    db.sql("INSERT INTO app_state (key, value) VALUES ('breaker:anthropic', '{\"state\": \"open\"}'), "
           "('breaker:codex_cli', '{\"state\": \"open\"}')", role="app")
    router = make(pool, [anthropic_route_unused(), OfflineRoute()])
    await router.publish_breakers()
    states = dict(db.sql("SELECT substr(key, 9), value->>'state' FROM app_state WHERE key LIKE 'breaker:%%'"))
    assert states == {"anthropic": "closed", "offline": "closed", "codex_cli": "off"}
