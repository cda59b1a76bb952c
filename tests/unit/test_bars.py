"""Every bar is checked before anything trades on it; bad bars are rejected with a reason."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from brain.market.bars import Bar, BarRejected, check_bar
from brain.market.history import load_history, validate_frames

T0 = datetime(2013, 1, 2, tzinfo=timezone.utc)


def bar(**kw) -> Bar:
    base = dict(symbol="AAPL", ts=T0, open=10.0, high=11.0, low=9.5, close=10.5, volume=1000.0)
    base.update(kw)
    return Bar(**base)


@pytest.mark.parametrize("kw, reason", [
    (dict(close=float("nan")), "close is not a finite number"),
    (dict(volume=float("inf")), "volume is not a finite number"),
    (dict(volume=-1.0), "volume must be >= 0"),
    (dict(high=10.2), "high 10.2 is below max(open, close)"),
    (dict(low=10.2), "low 10.2 is above min(open, close)"),
    (dict(open=0.0), "open must be positive"),
])
def test_bad_bars_are_rejected_with_the_rule_they_break(kw, reason):
    with pytest.raises(BarRejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_bar(bar(**kw))


def test_time_must_strictly_increase():
    with pytest.raises(BarRejected, match="not after the previous bar"):
        check_bar(bar(), previous_ts=T0)
    check_bar(bar(), previous_ts=datetime(2013, 1, 1, tzinfo=timezone.utc))


def test_bundled_history_is_real_and_clean():
    h = load_history(["AAPL", "GOOG"])
    assert len(h.frames["AAPL"]) == 3270 and h.rejected == []
    first = h.frames["AAPL"].iloc[0]
    assert (first["open"], first["close"]) == (118.56, 130.31)   # AAPL on 2000-03-01


def test_rejected_rows_are_counted_and_skipped():
    import pandas as pd

    idx = pd.to_datetime(["2013-01-02", "2013-01-03", "2013-01-03", "2013-01-04"], utc=True)
    frame = pd.DataFrame({"open": [10, 10, 10, 10], "high": [11, 11, 11, 9], "low": [9, 9, 9, 9],
                          "close": [10, 10, 10, 10], "volume": [1, 1, 1, 1]}, index=idx, dtype=float)
    h = validate_frames({"X": frame})
    assert len(h.frames["X"]) == 2
    assert [r[2].split(" ")[0] for r in h.rejected] == ["time", "high"]
