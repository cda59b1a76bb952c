"""Build the router the settings describe."""
from __future__ import annotations

import os

import asyncpg

from brain.config import Settings
from brain.errors import ConfigError
from brain.router.prices import DEFAULT_TABLE, PriceTable
from brain.router.router import Router
from brain.router.routes import OfflineRoute, Route


def build_routes(settings: Settings) -> list[Route]:
    routes: list[Route] = []
    for name in settings.router_routes:
        if name == "offline":
            routes.append(OfflineRoute())
        elif name == "anthropic":
            from brain.router.api_routes import AnthropicRoute

            # The SDK reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself.
            routes.append(AnthropicRoute(settings.router_anthropic_model, settings.router_timeout_s))
        elif name == "openai":
            from brain.router.api_routes import OpenAIRoute

            routes.append(OpenAIRoute("openai", settings.router_openai_model, settings.router_timeout_s,
                                      api_key=os.environ.get("OPENAI_API_KEY")))  # see checked_prices
        elif name == "compatible":
            from brain.router.api_routes import OpenAIRoute

            routes.append(OpenAIRoute("compatible", settings.router_compatible_model, settings.router_timeout_s,
                                      base_url=settings.router_compatible_base_url,
                                      api_key=settings.router_compatible_api_key,
                                      zero_cost=settings.router_compatible_zero_cost))
        elif name in ("claude_cli", "codex_cli"):
            from brain.router.cli_routes import ClaudeCliRoute, CodexCliRoute

            routes.append(ClaudeCliRoute(settings.router_claude_cli, settings.router_anthropic_model,
                                         settings.router_timeout_s) if name == "claude_cli" else
                          CodexCliRoute(settings.router_codex_cli, settings.router_openai_model,
                                        settings.router_timeout_s))
    return routes


# The paid APIs' keys, read by their SDKs from the environment (never from a BRAIN_ setting,
# so they stay out of config files): a listed route without one could only fail every call.
API_KEYS = {"anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"), "openai": ("OPENAI_API_KEY",)}


def checked_prices(settings: Settings) -> PriceTable:
    """The price table, once every listed route has what it needs (a paid one its key and a
    price for its model, compatible its URL); ConfigError with one line otherwise. Checked where
    the brain starts, not in the settings: brainctl and the watchdog read the same settings."""
    for route in settings.router_routes:
        keys = API_KEYS.get(route, ())
        if keys and not any(os.environ.get(k) for k in keys):
            raise ConfigError(f"invalid setting BRAIN_ROUTER_ROUTES: the {route} route needs "
                              f"{' or '.join(keys)} in the environment")
    if "compatible" in settings.router_routes and not settings.router_compatible_base_url:
        raise ConfigError("invalid setting BRAIN_ROUTER_COMPATIBLE_BASE_URL: needed when the compatible route is "
                          "listed in BRAIN_ROUTER_ROUTES")
    prices = PriceTable(settings.router_price_table or DEFAULT_TABLE)
    for setting, model in _paid_models(settings):
        if not prices.knows(model):
            raise ConfigError(f"invalid setting {setting}: no price for {model!r} in the price table "
                              f"({settings.router_price_table or DEFAULT_TABLE}); the daily budget could not count it")
    return prices


def build_router(settings: Settings, pool: asyncpg.Pool, philosophy: str,
                 prices: PriceTable | None = None) -> Router:
    """prices: what checked_prices returned, when the caller checked before starting anything."""
    return Router(pool, build_routes(settings), philosophy, prices or checked_prices(settings),
                  settings.router_breaker_threshold, settings.router_breaker_cooldown_s,
                  settings.router_daily_budget_usd)


def _paid_models(settings: Settings) -> list[tuple[str, str]]:
    """The models the listed paid routes call by default, with the setting that names each."""
    paid = {"anthropic": ("BRAIN_ROUTER_ANTHROPIC_MODEL", settings.router_anthropic_model),
            "openai": ("BRAIN_ROUTER_OPENAI_MODEL", settings.router_openai_model)}
    if not settings.router_compatible_zero_cost:
        paid["compatible"] = ("BRAIN_ROUTER_COMPATIBLE_MODEL", settings.router_compatible_model)
    return [paid[r] for r in settings.router_routes if r in paid]
