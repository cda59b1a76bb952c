"""`brain bench bus` as a user runs it: a real process that prints every promised figure.
(How fast the machine is decides the values; here they only have to be measurements.)"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

from tests.support.paths import REPO


def brain(db, home, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brain.cli.brain_main", *args], cwd=REPO, env=db.env(home),
                          capture_output=True, text=True, timeout=timeout)


def test_bench_bus_prints_every_figure_and_leaves_no_database_behind(db, brain_home):
    databases = "SELECT count(*) FROM pg_database WHERE datname LIKE 'brain_bench%'"
    before = db.sql(databases)
    out = brain(db, brain_home, "bench", "bus", "-n", "200", "--rounds", "3", "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert figures["messages"] == 200 and figures["rounds"] == 3
    rounds = {key: figures[key] for key in ("ratio_rounds", "ceiling_rounds", "ceiling_unflushed_rounds",
                                             "msgs_per_s_rounds", "producer_alone_rounds", "batched_rounds")}
    assert all(len(values) == 3 for values in rounds.values()), rounds
    for key in ("msgs_per_s", "ceiling_per_s", "batched_per_s", "p50_ms", "p99_ms", "producer_alone_per_s",
                "ceiling_unflushed_per_s", "ceiling_client_cpu_us", "producer_cpu_us", "consumer_cpu_us",
                "producer_alone_cpu_us"):
        assert figures[key] > 0, key
    # Rates are medians over the rounds; a figure against the ceiling is the median of each
    # round's own ratio (within the rounding of the printed rates).
    ceilings = figures["ceiling_rounds"]

    def per_round(key: str) -> float:
        return statistics.median(r / c for r, c in zip(figures[key], ceilings))

    assert figures["msgs_per_s"] == statistics.median(figures["msgs_per_s_rounds"])
    assert figures["ceiling_per_s"] == statistics.median(ceilings)
    assert figures["ratio_rounds"] == pytest.approx([m / c for m, c in zip(figures["msgs_per_s_rounds"], ceilings)],
                                                    abs=1e-3)
    assert figures["ratio"] == pytest.approx(per_round("msgs_per_s_rounds"), abs=1e-3)
    assert figures["ratio"] == statistics.median(figures["ratio_rounds"])
    assert figures["producer_alone_ratio"] == pytest.approx(per_round("producer_alone_rounds"), abs=1e-3)
    assert figures["batched_vs_ceiling"] == pytest.approx(per_round("batched_rounds"), abs=1e-2)
    assert figures["flush_share"] == pytest.approx(
        statistics.median(1 - c / u for c, u in zip(ceilings, figures["ceiling_unflushed_rounds"])), abs=1e-3)
    assert figures["p50_ms"] <= figures["p99_ms"]
    # Only this run's messages were timed: one left behind by an earlier run would show
    # a latency of the whole time since it was sent.
    assert figures["p99_ms"] < 60_000
    assert "round 3/3: end to end" in out.stderr, "progress is shown while it runs"
    assert "round 3/3: producer alone" in out.stderr
    assert "round 3/3: the ceiling's commits without waiting for the flush" in out.stderr
    assert db.sql(databases) == before, "the scratch database was dropped"


def test_bench_bus_refuses_a_run_too_short_to_measure(db, brain_home):
    out = brain(db, brain_home, "bench", "bus", "-n", "10", timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "brain: -n must be at least 200"
    out = brain(db, brain_home, "bench", "bus", "--rounds", "2", timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "brain: --rounds must be at least 3 (figures are medians over the rounds)"
