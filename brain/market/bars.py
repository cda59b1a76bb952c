"""The bar model and the checks every bar passes before anything trades on it."""
from __future__ import annotations

import math
from datetime import datetime, timezone

from pydantic import Field, field_validator

from brain.messages import Payload, topic


class BarRejected(ValueError):
    """A bar that must not be traded on; the message says why."""


@topic("market.bar")
class Bar(Payload):
    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-_/]+$")
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: str = "replay"

    @field_validator("ts")
    @classmethod
    def _aware(cls, ts: datetime) -> datetime:
        return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def check_bar(bar: Bar, previous_ts: datetime | None = None) -> None:
    """Raise BarRejected naming the first rule the bar breaks."""
    prices = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close}
    for name, value in {**prices, "volume": bar.volume}.items():
        if not math.isfinite(value):
            raise BarRejected(f"{name} is not a finite number")
    for name, value in prices.items():
        if value <= 0:
            raise BarRejected(f"{name} must be positive (got {value})")
    if bar.volume < 0:
        raise BarRejected(f"volume must be >= 0 (got {bar.volume})")
    if bar.high < max(bar.open, bar.close):
        raise BarRejected(f"high {bar.high} is below max(open, close) {max(bar.open, bar.close)}")
    if bar.low > min(bar.open, bar.close):
        raise BarRejected(f"low {bar.low} is above min(open, close) {min(bar.open, bar.close)}")
    if previous_ts is not None and bar.ts <= previous_ts:
        raise BarRejected(f"time {bar.ts.isoformat()} is not after the previous bar {previous_ts.isoformat()}")
