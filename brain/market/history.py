"""Historical OHLCV: the bundled public-domain daily bars, or any CSV/Parquet file."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from brain.errors import BrainError, first_problem, one_line
from brain.market.bars import Bar, BarRejected, check_bar

BUNDLED = ("AAPL", "MSFT", "IBM", "GOOG")
COLUMNS = ("open", "high", "low", "close", "volume")


class HistoryError(BrainError):
    """Historical data could not be loaded."""


def bundled_frame(symbol: str) -> pd.DataFrame:
    """Daily OHLCV of a bundled symbol (bokeh-sampledata: AAPL, MSFT, IBM, GOOG, 2000-2013)."""
    from bokeh_sampledata import stocks

    if symbol not in BUNDLED:
        raise HistoryError(f"no bundled data for {symbol!r}; bundled symbols: {', '.join(BUNDLED)}")
    data = getattr(stocks, symbol)
    frame = pd.DataFrame({c: data[c] for c in COLUMNS},
                         index=pd.to_datetime(data["date"], utc=True))
    frame.index.name = "ts"
    return frame.astype(float)


def file_frames(path: Path) -> dict[str, pd.DataFrame]:
    """A CSV or Parquet file with columns symbol, ts (or date), open, high, low, close, volume."""
    if not path.exists():
        raise HistoryError(f"data file not found: {path}")
    try:
        raw = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as exc:
        raise HistoryError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    time_col = "ts" if "ts" in raw.columns else "date" if "date" in raw.columns else None
    missing = [c for c in ("symbol", *COLUMNS) if c not in raw.columns] + ([] if time_col else ["ts"])
    if missing:
        raise HistoryError(f"{path}: missing columns {', '.join(missing)}")
    try:
        raw["ts"] = pd.to_datetime(raw[time_col], utc=True)
    except (ValueError, TypeError) as exc:
        raise HistoryError(f"{path}: column {time_col}: {one_line(exc)}") from None
    frames = {}
    for symbol, group in raw.groupby("symbol"):
        try:
            frames[str(symbol)] = group.set_index("ts")[list(COLUMNS)].astype(float)
        except (ValueError, TypeError) as exc:
            raise HistoryError(f"{path}: {symbol}: {one_line(exc)}") from None
    return frames


@dataclass
class ValidatedHistory:
    """Bars that passed every check, per symbol, and the ones rejected with their reasons."""

    frames: dict[str, pd.DataFrame]
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # symbol, ts, reason


def validate_frames(frames: dict[str, pd.DataFrame], start: datetime | None = None,
                    end: datetime | None = None) -> ValidatedHistory:
    out, rejected = {}, []
    for symbol, frame in frames.items():
        frame = frame.sort_index(kind="stable")
        if start is not None:
            frame = frame[frame.index >= _utc(start)]
        if end is not None:
            frame = frame[frame.index < _utc(end)]
        keep, previous = [], None
        for pos, (ts, row) in enumerate(zip(frame.index, frame.itertuples(index=False))):
            try:
                bar = Bar(symbol=symbol, ts=ts.to_pydatetime(), open=row.open, high=row.high, low=row.low,
                          close=row.close, volume=row.volume)
                check_bar(bar, previous)
            except ValidationError as exc:  # a value no bar may hold (a symbol with a space, a NaN)
                rejected.append((symbol, ts.isoformat(), ": ".join(first_problem(exc))))
                continue
            except BarRejected as exc:
                rejected.append((symbol, ts.isoformat(), str(exc)))
                continue
            keep.append(pos)  # by position: a duplicated timestamp must not bring its twin back
            previous = bar.ts
        out[symbol] = frame.iloc[keep]
    return ValidatedHistory(out, rejected)


def _utc(when: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")


def load_history(symbols: Iterable[str] | None = None, path: Path | None = None,
                 start: datetime | None = None, end: datetime | None = None) -> ValidatedHistory:
    frames = file_frames(path) if path else {s: bundled_frame(s) for s in (symbols or BUNDLED)}
    if path and symbols:
        unknown = [s for s in symbols if s not in frames]
        if unknown:
            raise HistoryError(f"{path}: no rows for {', '.join(unknown)}")
        frames = {s: frames[s] for s in symbols}
    history = validate_frames(frames, start, end)
    if not any(len(f) for f in history.frames.values()):
        raise HistoryError("no bars in the selected range")
    return history


def cli_history(symbols: str | None, data: str | None, end: datetime | None) -> ValidatedHistory:
    """What a command's --symbols, --data and --end ask for: without --symbols, every symbol of
    the file, or the bundled ones. Bars before --start are loaded too (they warm the
    indicators up) and left out of the replay by the caller."""
    wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()] if symbols else None
    return load_history(wanted, Path(data) if data else None, None, end)


def bar_at(symbol: str, frame: pd.DataFrame, i: int, source: str = "replay") -> Bar:
    ts = frame.index[i]
    row = frame.iloc[i]
    return Bar(symbol=symbol, ts=ts.to_pydatetime().astimezone(timezone.utc), open=row["open"],
               high=row["high"], low=row["low"], close=row["close"], volume=row["volume"], source=source)
