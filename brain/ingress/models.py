"""Request bodies. Every field is checked here; a bad body is a 422 naming the field."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel, ConfigDict, Field, field_validator

ID = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
# Clocks and bar stamps differ a little; a bar further ahead than this is a mistake, and
# stored it would make every real bar of its symbol look out of order.
AHEAD = timedelta(days=1)


def _a_real_time(ts: datetime) -> datetime:
    ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    if ts < EARLIEST:
        raise ValueError(f"must not be before {EARLIEST:%Y-%m-%d}")
    if ts > datetime.now(timezone.utc) + AHEAD:
        raise ValueError("must not be more than a day ahead of now")
    return ts


class BarIn(Strict):
    client_id: str = ID
    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-_/]+$")
    ts: datetime
    # strict: a number must be sent as a number (true or "11" is refused, not read as 1.0 or 11.0)
    open: float = Field(gt=0, strict=True)
    high: float = Field(gt=0, strict=True)
    low: float = Field(gt=0, strict=True)
    close: float = Field(gt=0, strict=True)
    volume: float = Field(ge=0, strict=True)

    _f = field_validator("open", "high", "low", "close", "volume")(_finite)

    _ts = field_validator("ts")(_a_real_time)


class HeartbeatIn(Strict):
    client_id: str = ID
    source: str = Field(default="bridge", max_length=64)


class FillIn(Strict):
    client_id: str = ID
    client_order_id: str = ID
    broker_fill_id: str = ID
    qty: float = Field(gt=0, strict=True)
    price: float = Field(gt=0, strict=True)
    commission: float = Field(default=0.0, ge=0, strict=True)
    ts: datetime

    _f = field_validator("qty", "price", "commission")(_finite)
    _ts = field_validator("ts")(_a_real_time)


class ContextIn(Strict):
    client_id: str = ID
    source: str = Field(min_length=1, max_length=64)
    symbol: str | None = Field(default=None, max_length=32)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000)
