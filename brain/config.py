"""The one settings object: environment (BRAIN_*, DATABASE_URL) over a YAML file over defaults.

Hard risk limits are deliberately NOT here: they are constants in code (brain/risk/limits.py)
so that no configuration can raise them.
"""
from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from brain.errors import ConfigError, one_line
from brain.strategy import DEFAULT, TUNABLE

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


# The longest a notification may ask consumers to keep looking for messages published
# without one; a consumer whose listener reconnects keeps looking this long.
BUS_NOTIFY_WINDOW_MAX_MS = 50
ROUTES = ("claude_cli", "codex_cli", "anthropic", "openai", "compatible", "offline")
# A list setting from the environment: a JSON list, or names separated by commas.
NameList = Annotated[list[str], NoDecode]


def _name_list(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ValueError('not a JSON list (write ["a", "b"], or a, b)') from None
    return [part.strip() for part in text.split(",") if part.strip()]


def _config_file() -> Path:
    explicit = os.environ.get("BRAIN_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("BRAIN_HOME", ".brain")) / "config.yaml"


class Settings(BaseSettings):
    """Every tunable of the service. Env var names are BRAIN_<FIELD> unless noted."""

    model_config = SettingsConfigDict(env_prefix="BRAIN_", extra="forbid", populate_by_name=True)

    # --- storage -------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="Admin/owner URL; unset means the embedded server under home.",
    )
    app_database_url: str | None = None
    watchdog_database_url: str | None = None
    operator_database_url: str | None = None
    home: Path = Path(".brain")
    skills_dir: Path = Path("skills")
    context_dir: Path = Path("context")

    # --- bus -----------------------------------------------------------------------
    bus_lease_s: float = Field(default=30.0, gt=0)
    # A handler at work keeps its lease renewed (a model call can outlast a lease) for up to
    # this long; one still running then is taken for hung, and its message is redone.
    bus_handler_max_s: float = Field(default=1800.0, gt=0)
    bus_max_attempts: int = Field(default=5, ge=1)
    bus_backoff_base_s: float = Field(default=0.5, gt=0)
    bus_backoff_max_s: float = Field(default=60.0, gt=0)
    bus_poll_interval_s: float = Field(default=2.0, gt=0)
    bus_claim_batch: int = Field(default=200, ge=1, le=5000)
    bus_ack_window_ms: float = Field(default=3.0, ge=0, le=1000)
    bus_claim_pause_ms: float = Field(default=1.0, ge=0, le=1000)
    # A producer publishing a stream (on average more than seven messages per window) wakes
    # consumers once per window, not once per message (0: a notification for every message).
    # See Bus._publish_alone.
    bus_notify_window_ms: int = Field(default=10, ge=0, le=BUS_NOTIFY_WINDOW_MAX_MS)

    # --- liveness --------------------------------------------------------------------
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    heartbeat_stale_s: float = Field(default=5.0, gt=0)

    # --- ingress ----------------------------------------------------------------------
    ingress_host: str = "127.0.0.1"
    ingress_port: int = Field(default=8377, ge=0, le=65535)   # 0: no ingress, no dashboard
    ingress_token: str | None = None

    # --- model router ---------------------------------------------------------------
    # Routes in priority order; a route not listed is switched off. Names: claude_cli,
    # codex_cli, anthropic, openai, compatible, offline. The default needs no model at all.
    router_routes: NameList = ["offline"]
    router_anthropic_model: str = "claude-sonnet-5-5"
    router_openai_model: str = "gpt-5-mini"
    # e.g. http://127.0.0.1:11434/v1 (Ollama); needed when the compatible route is listed
    router_compatible_base_url: str | None = None
    # Sent to that endpoint only (OpenRouter needs one; a local server none). Never OPENAI_API_KEY.
    router_compatible_api_key: str | None = None
    router_compatible_model: str = "llama3.1"
    router_compatible_zero_cost: bool = True           # a local model costs nothing per token
    router_claude_cli: str = "claude"
    router_codex_cli: str = "codex"
    router_timeout_s: float = Field(default=60.0, gt=0)
    router_breaker_threshold: int = Field(default=3, ge=1)
    router_breaker_cooldown_s: float = Field(default=60.0, gt=0)
    router_daily_budget_usd: float = Field(default=10.0, ge=0)
    router_price_table: Path | None = None

    # --- broker ------------------------------------------------------------------------
    # paper: simulated from bars, the default. ib: Interactive Brokers through IB Gateway or
    # TWS (paper account first); the brain and the watchdog each hold their own client id.
    broker: Literal["paper", "ib"] = "paper"
    ib_host: str = "127.0.0.1"
    ib_port: int = Field(default=4002, ge=1, le=65535)        # 4002: IB Gateway paper; TWS paper 7497
    ib_client_id: int = Field(default=11, ge=0)
    ib_watchdog_client_id: int = Field(default=12, ge=0)
    ib_account: str = ""                                      # empty: the gateway's only account
    ib_symbols: NameList = ["AAPL", "MSFT", "IBM", "GOOG"]
    ib_bar_seconds: int = 300                                 # 60, 300, 900, 1800 or 3600
    ib_history: str = Field(default="10 D", pattern=r"^\d+ [SDWMY]$")   # IB duration for the warm-up

    # --- trading cycle ---------------------------------------------------------------
    paper_starting_cash: float = Field(default=100_000.0, gt=0)
    paper_slippage_bps: float = Field(default=2.0, ge=0, le=500)
    paper_commission_per_share: float = Field(default=0.005, ge=0)
    paper_commission_min: float = Field(default=1.0, ge=0)
    signature_timeout_s: float = Field(default=120.0, gt=0)
    # The strategy's tunables (brain/strategy.py); bounded, and none of them a risk limit.
    strategy_stop_atr: float = Field(default=DEFAULT.stop_atr, ge=TUNABLE["strategy_stop_atr"][0],
                                     le=TUNABLE["strategy_stop_atr"][1])
    strategy_target_atr: float = Field(default=DEFAULT.target_atr, ge=TUNABLE["strategy_target_atr"][0],
                                       le=TUNABLE["strategy_target_atr"][1])
    strategy_align_threshold: float = Field(default=DEFAULT.align_threshold,
                                            ge=TUNABLE["strategy_align_threshold"][0],
                                            le=TUNABLE["strategy_align_threshold"][1])
    optimizer_hour_utc: int = Field(default=22, ge=0, le=23)   # the nightly postmortem

    # --- watchdog -----------------------------------------------------------------------
    # Timings only: the limits themselves (drawdown, daily loss) are constants in code.
    watchdog_interval_s: float = Field(default=1.0, gt=0)
    # How long a second watchdog stands by after the acting one stopped renewing the watch
    # (it died or hangs); at least three checks, and longer than a failing page (about 18 s).
    watchdog_lease_s: float = Field(default=30.0, gt=0)
    broker_stale_s: float = Field(default=5.0, gt=0)
    market_data_stale_s: float = Field(default=600.0, gt=0)   # daily replays and closed markets are slow
    backlog_age_s: float = Field(default=300.0, gt=0)
    max_margin_utilisation: float = Field(default=1.0, gt=0)   # gross exposure / equity
    page_webhook_url: str | None = None                        # generic JSON POST, or a Telegram sendMessage URL
    page_telegram_chat_id: str | None = None

    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("ib_bar_seconds")
    @classmethod
    def _ib_bar_size(cls, seconds: int) -> int:
        allowed = (60, 300, 900, 1800, 3600)
        if seconds not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))} (IB's bar sizes)")
        return seconds

    @field_validator("router_routes", "ib_symbols", mode="before")
    @classmethod
    def _lists_from_text(cls, value: Any) -> Any:
        return _name_list(value)

    @field_validator("database_url", "app_database_url", "watchdog_database_url", "operator_database_url")
    @classmethod
    def _a_postgres_url(cls, url: str | None) -> str | None:
        # An empty value is a mistake (an unset variable passed through), not a request for
        # the embedded server: that is what leaving DATABASE_URL unset means.
        if url is not None and not re.match(r"postgres(ql)?(\+\w+)?://", url):
            raise ValueError("not a postgresql:// URL (unset it to use the embedded server)")
        if url is not None:
            try:
                urlsplit(url).port
            except ValueError:  # a password holding / # ? @ ends the user part early
                raise ValueError("not a URL that parses: a password with / # ? @ : or % in it must be "
                                 "percent-encoded (or made of letters and digits)") from None
        return url

    @field_validator("ib_symbols")
    @classmethod
    def _ib_symbols(cls, symbols: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in symbols if s.strip()]
        if not cleaned:
            raise ValueError("at least one symbol is needed")
        return cleaned

    @field_validator("ib_watchdog_client_id")
    @classmethod
    def _own_client_id(cls, client_id: int, info: ValidationInfo) -> int:
        # IB drops the older of two connections with one client id: the watchdog must not be
        # able to knock the brain off the gateway, nor the other way round.
        if client_id == info.data.get("ib_client_id"):
            raise ValueError(f"must differ from BRAIN_IB_CLIENT_ID ({client_id})")
        return client_id

    @property
    def book(self) -> str:
        """The key of the active broker's book in `accounts` and `positions`."""
        return self.broker

    @field_validator("router_routes")
    @classmethod
    def _known_routes(cls, routes: list[str]) -> list[str]:
        unknown = [r for r in routes if r not in ROUTES]
        if unknown:
            raise ValueError(f"unknown route {unknown[0]!r}; known routes: {', '.join(ROUTES)}")
        if not routes:
            raise ValueError("at least one route is needed (offline needs no model)")
        return routes

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, file_secret_settings]
        path = _config_file()
        if path.exists():
            sources.append(_MappingYaml(settings_cls, yaml_file=path))
        return tuple(sources)


class _MappingYaml(YamlConfigSettingsSource):
    """The YAML file, which must hold a mapping of settings (or nothing)."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        data = super()._read_file(file_path)
        if not isinstance(data, dict):
            raise ConfigError(f"config file {file_path} must be a mapping of settings, not a {type(data).__name__}")
        return data


def doctrine_path(settings: Settings) -> Path:
    """The trading doctrine every agent's prompt starts from; without it nothing may trade."""
    path = settings.context_dir / "philosophy.md"
    if not path.is_file():
        raise ConfigError(f"doctrine not found: {path} (set BRAIN_CONTEXT_DIR to the folder holding philosophy.md)")
    return path


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "settings"
    if err["type"] == "extra_forbidden":  # only the YAML file can carry a name we do not know
        return f"unknown setting {loc!r} in {_config_file()}"
    env = loc.upper() if loc.upper() == "DATABASE_URL" else f"BRAIN_{loc.upper()}"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid setting {env}: {err['msg']}{more}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; a bad value raises ConfigError with one line naming the setting."""
    explicit = os.environ.get("BRAIN_CONFIG")
    if explicit and not Path(explicit).is_file():
        raise ConfigError(f"invalid setting BRAIN_CONFIG: no such file: {explicit}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    except ConfigError:
        raise
    except Exception as exc:
        source = re.search(r'field "(\w+)" from source "EnvSettingsSource"', str(exc))
        if source:  # a structured value in the environment that does not parse
            raise ConfigError(f"invalid setting BRAIN_{source[1].upper()}: {one_line(exc)}") from None
        raise ConfigError(f"cannot read config file {_config_file()}: {one_line(exc)}") from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
