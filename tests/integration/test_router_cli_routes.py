"""The subscription routes (the claude and codex command-line tools) through the router, as real
subprocesses of small stand-ins for the CLIs."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from brain.router.answers import ModelFailure
from brain.router.cli_routes import ClaudeCliRoute, CodexCliRoute
from tests.support.paths import REPO
from tests.support.router import GOOD, INPUTS, call, ledger, make

FAKE_BIN = REPO / "tests" / "fakes" / "bin"


@pytest.fixture
def fake_path(monkeypatch):
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CLAUDE_ANSWER", json.dumps(GOOD))
    monkeypatch.setenv("FAKE_CODEX_ANSWER", json.dumps(GOOD))


async def test_claude_cli_success_and_rate_limit_with_exit_zero(pool, db, fake_path, monkeypatch):
    router = make(pool, [ClaudeCliRoute("claude", "claude-sonnet-5-5", 20), CodexCliRoute("codex", "gpt-5", 20)])
    answer = await call(router, INPUTS, None)
    assert answer.route == "claude_cli" and answer.data == GOOD and answer.cost_usd == 0
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "rate_limit")
    answer = await call(router, INPUTS, None)
    assert answer.route == "codex_cli"
    rows = ledger(db)
    assert (rows[1][0], rows[1][3]) == ("claude_cli", "rate_limit") and rows[2][6] == 2000  # codex cached tokens
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "usage_limit")
    monkeypatch.setenv("FAKE_CODEX_MODE", "failed")
    failure = await call(router, INPUTS, None)
    assert isinstance(failure, ModelFailure)
    assert [r[3] for r in ledger(db)[-2:]] == ["usage_limit", "server"]


async def test_claude_cli_invalid_schema_is_a_failure(pool, db, fake_path, monkeypatch):
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "invalid")
    router = make(pool, [ClaudeCliRoute("claude", "claude-sonnet-5-5", 20)])
    assert isinstance(await call(router, INPUTS, None), ModelFailure)
    assert [r[2] for r in ledger(db)] == ["invalid", "invalid"]


async def test_a_cli_that_does_not_answer_in_time_is_ended_with_what_it_started(pool, db, fake_path, monkeypatch,
                                                                              tmp_path):
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_CODEX_MODE", "hang")
    monkeypatch.setenv("FAKE_CODEX_CHILD_PID_FILE", str(pid_file))
    router = make(pool, [CodexCliRoute("codex", "gpt-5", 1)])
    started = asyncio.get_running_loop().time()
    failure = await call(router, INPUTS, None)
    assert isinstance(failure, ModelFailure) and ledger(db)[0][3] == "timeout"
    assert asyncio.get_running_loop().time() - started < 5, "the timeout holds although the CLI's child lives on"
    assert not _running(int(pid_file.read_text())), "what the CLI started is ended with it"


def _running(pid: int) -> bool:
    """Alive, as opposed to gone or dead and not yet reaped (a zombie, which kill(0) still finds)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_missing_cli_is_unavailable_not_a_crash(pool, db):
    router = make(pool, [ClaudeCliRoute("/nonexistent/claude", "claude-sonnet-5-5", 5)])
    failure = await call(router, INPUTS, None)
    assert isinstance(failure, ModelFailure) and ledger(db)[0][3] == "unavailable"
