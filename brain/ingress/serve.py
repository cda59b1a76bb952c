"""Serving the ingress app inside the brain's event loop."""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import asyncpg

from brain.config import Settings
from brain.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

    from brain.broker.base import Broker
    from brain.bus import Bus


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(settings: Settings) -> None:
    if not is_loopback(settings.ingress_host) and not settings.ingress_token:
        raise ConfigError(f"refusing to serve ingress on {settings.ingress_host} without BRAIN_INGRESS_TOKEN "
                          "(only loopback may go without a token)")


def make_server(settings: Settings, pool: asyncpg.Pool, bus: Bus, broker: Broker | None = None) -> uvicorn.Server:
    """A uvicorn server for the ingress app; run it with `await server.serve()` and stop it
    with `server.should_exit = True` (which closes its socket cleanly)."""
    import uvicorn

    from brain.ingress.app import create_app

    check_binding(settings)
    config = uvicorn.Config(create_app(settings, pool, bus, broker), host=settings.ingress_host, port=settings.ingress_port,
                            log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # the brain owns SIGTERM/SIGINT; uvicorn no longer reads it
    return server
