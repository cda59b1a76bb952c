"""`brain backtest` as a user runs it: real agents, real bus, real bars; figures re-derived."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from brain.market.history import bundled_frame
from tests.support.cycle import context_dir
from tests.support.paths import REPO


def backtest(db, tmp_path, context: Path, *args: str, timeout: float = 300, text: bool = True):
    """`brain backtest ARGS` as its own process, with the doctrine (or none) in context."""
    env = db.env(tmp_path / "home")
    (tmp_path / "home").mkdir()
    env.update(BRAIN_CONTEXT_DIR=str(context), BRAIN_SKILLS_DIR=str(REPO / "skills"))
    return subprocess.run([sys.executable, "-m", "brain.cli.brain_main", "backtest", *args], cwd=REPO, env=env,
                          capture_output=True, text=text, timeout=timeout)


@pytest.mark.slow
def test_backtest_reports_figures_that_re_derive(db, tmp_path):
    out = backtest(db, tmp_path, context_dir(tmp_path), "--symbols", "AAPL,MSFT", "--start", "2012-09-01",
                   "--split", "2012-12-01", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    o = r["overall"]
    assert o["return_pct"] == pytest.approx((o["end_equity"] / o["start_equity"] - 1) * 100, abs=1e-3)
    # Buy and hold from the bundled bars, computed here without the project's code.
    legs = []
    for sym in ("AAPL", "MSFT"):
        f = bundled_frame(sym)
        f = f[f.index >= "2012-09-01"]
        legs.append(f["close"].iloc[-1] / f["open"].iloc[0] - 1)
    assert o["buy_and_hold_pct"] == pytest.approx(100 * sum(legs) / 2, abs=1e-3)
    # Every started cycle is journaled, except an order still waiting for the next bar's open.
    assert 0 <= r["cycles"] - sum(r["outcomes"].values()) <= 4
    assert r["in_sample"]["trades"] + r["held_out"]["trades"] == o["trades"]
    assert r["held_out"]["start_equity"] == pytest.approx(r["in_sample"]["end_equity"], abs=0.01)
    assert "Held out" in (next((tmp_path / "context").glob("**/report.md"))).read_text()


def test_a_backtest_without_the_doctrine_is_a_one_line_error(db, tmp_path):
    (tmp_path / "empty").mkdir()
    before = db.sql("SELECT count(*) FROM pg_database WHERE datname LIKE 'brain_backtest%'")
    out = backtest(db, tmp_path, tmp_path / "empty", "--symbols", "AAPL", "--start", "2012-09-01", "--json",
                   timeout=120)
    assert out.returncode == 1 and out.stdout == "", out.stdout
    assert out.stderr.count("\n") == 1 and "brain: doctrine not found:" in out.stderr, out.stderr
    assert db.sql("SELECT count(*) FROM pg_database WHERE datname LIKE 'brain_backtest%'") == before, \
        "the scratch database is dropped"


@pytest.mark.slow
def test_progress_into_a_log_is_a_line_per_report(db, tmp_path):
    # stderr is a pipe here, as under docker compose logs: no carriage returns running the
    # reports together, each report a line of its own.
    # bytes, not text: text mode would turn the carriage returns into newlines
    out = backtest(db, tmp_path, context_dir(tmp_path), "--symbols", "AAPL,MSFT,IBM", "--start", "2011-01-01",
                   text=False)
    stderr = out.stderr.decode()
    assert out.returncode == 0, stderr[-2000:]
    assert "\r" not in stderr
    reports = [line for line in stderr.split("\n") if re.fullmatch(r"\[[#.]{30}\] \d+/\d+ bars", line)]
    assert reports, stderr[-2000:]
    assert "report: " in out.stdout.decode()


def _csv(tmp_path: Path, name: str, symbol: str = "SPY", rows: int = 160, date=None) -> Path:
    frame = bundled_frame("AAPL").iloc[-rows:].reset_index()
    frame.insert(0, "symbol", symbol)
    if date is not None:
        frame["ts"] = frame["ts"].astype(str)
        frame.loc[frame.index[5], "ts"] = date
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_data_file_is_replayed_for_its_own_symbols(db, tmp_path):
    data = _csv(tmp_path, "spy.csv")
    start = bundled_frame("AAPL").index[-40]  # the 120 bars before it warm the indicators up
    out = backtest(db, tmp_path, context_dir(tmp_path), "--data", str(data), "--start", start.strftime("%Y-%m-%d"),
                   "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert r["bars"] == 40 and r["cycles"] == 40


@pytest.mark.parametrize("name, kwargs, message", [
    ("dates.csv", {"date": "notadate"}, "brain: {path}: column ts: "),
    ("spaced.csv", {"symbol": "BRK B"}, "brain: no bars in the selected range"),
])
def test_a_bad_data_file_is_a_one_line_error(db, tmp_path, name, kwargs, message):
    data = _csv(tmp_path, name, **kwargs)
    out = backtest(db, tmp_path, context_dir(tmp_path), "--data", str(data), "--json", timeout=120)
    assert out.returncode == 1 and out.stderr.startswith(message.format(path=data)), out.stderr[-2000:]
    assert out.stderr.count("\n") == 1
