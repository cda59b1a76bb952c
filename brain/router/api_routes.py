"""The HTTP routes: Anthropic Messages, OpenAI Chat Completions, and any OpenAI-compatible
endpoint (Ollama, LM Studio, OpenRouter) by base URL. SDK retries are off: the router is the
only retry loop, so a rate limit moves to the next route instead of sleeping here."""
from __future__ import annotations

from brain.router.prices import Usage
from brain.router.routes import Prompt, Reply, RouteError, claude_family, openai_family
from brain.skills.skill import Skill


def _classify_anthropic(exc: Exception) -> RouteError:
    import anthropic

    if isinstance(exc, anthropic.RateLimitError):
        return RouteError("rate_limit", str(exc)[:300])
    if isinstance(exc, anthropic.APITimeoutError):
        return RouteError("timeout", "request timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return RouteError("connection", str(exc)[:300])
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code == 529:
            return RouteError("overloaded", str(exc)[:300])
        if exc.status_code >= 500:
            return RouteError("server", f"HTTP {exc.status_code}")
        return RouteError("bad_request", f"HTTP {exc.status_code}: {str(exc)[:300]}")
    return RouteError("server", f"{type(exc).__name__}: {exc}"[:300])


class AnthropicRoute:
    name = "anthropic"
    zero_cost = False

    def __init__(self, default_model: str, timeout_s: float, base_url: str | None = None,
                 api_key: str | None = None) -> None:
        import anthropic

        self.default_model = default_model
        self.client = anthropic.AsyncAnthropic(base_url=base_url, api_key=api_key, max_retries=0,
                                               timeout=timeout_s)

    def model_for(self, prompt: Prompt) -> str:
        return claude_family(prompt, self.default_model)

    async def complete(self, skill: Skill, prompt: Prompt) -> Reply:
        model = self.model_for(prompt)
        try:
            msg = await self.client.messages.create(
                model=model, max_tokens=prompt.max_tokens,
                # The doctrine + skill block is identical across calls: cache it.
                system=[{"type": "text", "text": prompt.system, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": prompt.user}],
                # Structured output: the API constrains the answer to the skill's schema.
                output_config={"format": {"type": "json_schema", "schema": prompt.schema}},
            )
        except Exception as exc:
            raise _classify_anthropic(exc) from None
        u = msg.usage
        usage = Usage(u.input_tokens or 0, u.output_tokens or 0, getattr(u, "cache_read_input_tokens", 0) or 0,
                      getattr(u, "cache_creation_input_tokens", 0) or 0)
        text = "".join(getattr(b, "text", "") or "" for b in msg.content)
        return Reply(text, None, usage, msg.model or model)


def _classify_openai(exc: Exception) -> RouteError:
    import openai

    if isinstance(exc, openai.RateLimitError):
        return RouteError("rate_limit", str(exc)[:300])
    if isinstance(exc, openai.APITimeoutError):
        return RouteError("timeout", "request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return RouteError("connection", str(exc)[:300])
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return RouteError("overloaded" if exc.status_code in (503, 529) else "server", f"HTTP {exc.status_code}")
        return RouteError("bad_request", f"HTTP {exc.status_code}: {str(exc)[:300]}")
    return RouteError("server", f"{type(exc).__name__}: {exc}"[:300])


class OpenAIRoute:
    zero_cost = False

    def __init__(self, name: str, default_model: str, timeout_s: float, base_url: str | None = None,
                 api_key: str | None = None, zero_cost: bool = False) -> None:
        import openai

        self.name = name
        self.zero_cost = zero_cost
        self.default_model = default_model
        # The SDK insists on a key; a local endpoint that wants none ignores this placeholder.
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "none", max_retries=0,
                                         timeout=timeout_s)

    def model_for(self, prompt: Prompt) -> str:
        return openai_family(prompt, self.default_model)

    async def complete(self, skill: Skill, prompt: Prompt) -> Reply:
        model = self.model_for(prompt)
        try:
            resp = await self.client.chat.completions.create(
                model=model, max_tokens=prompt.max_tokens, temperature=prompt.temperature,
                messages=[{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": skill.name.replace("-", "_"), "schema": prompt.schema,
                                                 "strict": True}},
            )
        except Exception as exc:
            raise _classify_openai(exc) from None
        u = resp.usage
        cached = 0
        if u is not None and getattr(u, "prompt_tokens_details", None) is not None:
            cached = u.prompt_tokens_details.cached_tokens or 0  # type: ignore[union-attr]  # the getattr above checks it
        usage = Usage((u.prompt_tokens if u else 0) - cached, u.completion_tokens if u else 0, cached, 0)
        choice = resp.choices[0] if resp.choices else None
        if choice is None or choice.message is None:
            raise RouteError("server", "no choices in the response", usage)
        if getattr(choice.message, "refusal", None):
            raise RouteError("refused", choice.message.refusal[:300], usage)  # type: ignore[index]  # the getattr above checks it
        return Reply(choice.message.content or "", None, usage, resp.model or model)
