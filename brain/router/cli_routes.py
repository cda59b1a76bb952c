"""Subscription routes: the `claude` and `codex` command-line tools run as subprocesses.

Failures are read from what the tools print, not from their exit codes: `claude -p` reports a
rate or usage limit inside its JSON result and may still exit 0."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import tempfile

from brain.router.prices import Usage
from brain.router.routes import Prompt, Reply, RouteError, claude_family, openai_family
from brain.skills.skill import Skill

LIMIT = re.compile(r"rate.?limit|usage limit|limit reached|too many requests|quota", re.IGNORECASE)
OVERLOAD = re.compile(r"overloaded|529", re.IGNORECASE)


async def _run(argv: list[str], timeout_s: float) -> tuple[int, str, str]:
    try:
        # In a process group of its own, so that a timeout or a cancellation can end whatever
        # the CLI started too: the npm `codex` is a wrapper running the real binary as its
        # child, and a child left alive keeps the pipes open and the call waiting on them.
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    start_new_session=True)
    except FileNotFoundError:
        raise RouteError("unavailable", f"{argv[0]} is not installed or not on PATH") from None
    answered = False
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
        answered = True
    except TimeoutError:
        raise RouteError("timeout", f"{argv[0]} did not answer within {timeout_s:.0f}s") from None
    finally:
        if not answered:  # timed out or cancelled: nothing it started may outlive the call
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
    assert proc.returncode is not None  # communicate() returned: the process has exited
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class ClaudeCliRoute:
    name = "claude_cli"
    zero_cost = True   # a subscription: tokens are recorded, the marginal cost is nil

    def __init__(self, executable: str, default_model: str, timeout_s: float) -> None:
        self.executable, self.default_model, self.timeout_s = executable, default_model, timeout_s

    def model_for(self, prompt: Prompt) -> str:
        return claude_family(prompt, self.default_model)

    async def complete(self, skill: Skill, prompt: Prompt) -> Reply:
        model = self.model_for(prompt)
        argv = [self.executable, "-p", prompt.user, "--output-format", "json", "--model", model,
                "--system-prompt", prompt.system, "--json-schema", json.dumps(prompt.schema),
                "--tools", "", "--max-turns", "1"]
        code, out, err = await _run(argv, self.timeout_s)
        try:
            result = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
        except json.JSONDecodeError:
            result = None
        if not isinstance(result, dict):
            detail = (err or out).strip().splitlines()[-1:] or [f"exit {code}"]
            raise RouteError("server", f"claude printed no JSON result: {detail[0][:200]}")
        u = result.get("usage") or {}
        usage = Usage(u.get("input_tokens", 0), u.get("output_tokens", 0), u.get("cache_read_input_tokens", 0),
                      u.get("cache_creation_input_tokens", 0))
        text = str(result.get("result") or "")
        if result.get("is_error") or result.get("subtype") != "success":
            status = result.get("api_error_status")
            if status == 429 or LIMIT.search(text):
                raise RouteError("usage_limit" if "usage" in text.lower() else "rate_limit", text[:300], usage)
            if status == 529 or OVERLOAD.search(text):
                raise RouteError("overloaded", text[:300], usage)
            raise RouteError("server", f"{result.get('subtype')}: {text[:300]}", usage)
        if isinstance(result.get("structured_output"), dict):
            return Reply(None, result["structured_output"], usage, model)
        return Reply(text, None, usage, model)


class CodexCliRoute:
    name = "codex_cli"
    zero_cost = True

    def __init__(self, executable: str, default_model: str, timeout_s: float) -> None:
        self.executable, self.default_model, self.timeout_s = executable, default_model, timeout_s

    def model_for(self, prompt: Prompt) -> str:
        return openai_family(prompt, self.default_model)

    async def complete(self, skill: Skill, prompt: Prompt) -> Reply:
        model = self.model_for(prompt)
        fd, schema_path = tempfile.mkstemp(suffix=".json", prefix="codex-schema-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(prompt.schema, f)
            argv = [self.executable, "exec", "--json", "--output-schema", schema_path, "--sandbox", "read-only",
                    "--skip-git-repo-check", "-m", model, f"{prompt.system}\n\n---\n\n{prompt.user}"]
            code, out, err = await _run(argv, self.timeout_s)
        finally:
            os.unlink(schema_path)
        text, usage, failure = None, Usage(), None
        for line in out.splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = event.get("type")
            if kind == "item.completed" and (event.get("item") or {}).get("type") == "agent_message":
                text = event["item"].get("text", "")
            elif kind == "turn.completed":
                u = event.get("usage") or {}
                cached = u.get("cached_input_tokens", 0)
                usage = Usage(u.get("input_tokens", 0) - cached, u.get("output_tokens", 0), cached, 0)
            elif kind == "turn.failed":
                failure = str((event.get("error") or {}).get("message", "turn failed"))
            elif kind == "error":
                failure = str(event.get("message", "error"))
        if failure:
            if LIMIT.search(failure):
                raise RouteError("usage_limit" if "usage" in failure.lower() else "rate_limit", failure[:300], usage)
            raise RouteError("server", failure[:300], usage)
        if text is None:
            raise RouteError("server", f"codex gave no answer (exit {code}): {(err or out).strip()[-200:]}", usage)
        return Reply(text, None, usage, model)
