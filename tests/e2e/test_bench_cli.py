"""`brain bench bus` as a user runs it: a real process that prints every promised figure.
(How fast the machine is decides the values; here they only have to be measurements.)"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def brain(db, home, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brain.cli.brain_main", *args], cwd=REPO, env=db.env(home),
                          capture_output=True, text=True, timeout=timeout)


def test_bench_bus_prints_every_figure_and_leaves_no_database_behind(db, brain_home):
    databases = "SELECT count(*) FROM pg_database WHERE datname LIKE 'brain_bench%'"
    before = db.sql(databases)
    out = brain(db, brain_home, "bench", "bus", "-n", "200", "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert figures["messages"] == 200 and figures["rounds"] == 3
    assert len(figures["msgs_per_s_rounds"]) == len(figures["ceiling_rounds"]) == 3
    assert len(figures["producer_alone_rounds"]) == len(figures["batched_rounds"]) == 3
    for key in ("msgs_per_s", "ceiling_per_s", "batched_per_s", "p50_ms", "p99_ms", "producer_alone_per_s",
                "ceiling_unflushed_per_s", "ceiling_client_cpu_us", "producer_cpu_us", "consumer_cpu_us",
                "producer_alone_cpu_us"):
        assert figures[key] > 0, key
    # Derived figures follow from the printed ones (within their rounding to 3 places).
    assert figures["ratio"] == pytest.approx(figures["msgs_per_s"] / figures["ceiling_per_s"], abs=1e-3)
    assert figures["producer_alone_ratio"] == pytest.approx(
        figures["producer_alone_per_s"] / figures["ceiling_per_s"], abs=1e-3)
    assert figures["flush_share"] == pytest.approx(
        1 - figures["ceiling_per_s"] / figures["ceiling_unflushed_per_s"], abs=1e-3)
    assert figures["p50_ms"] <= figures["p99_ms"]
    # Only this run's messages were timed: one left behind by an earlier run would show
    # a latency of the whole time since it was sent.
    assert figures["p99_ms"] < 60_000
    assert "round 3/3: end to end" in out.stderr, "progress is shown while it runs"
    assert "round 3/3: producer alone" in out.stderr
    assert "round 3/3: the same commits without waiting for the flush" in out.stderr
    assert db.sql(databases) == before, "the scratch database was dropped"


def test_bench_bus_refuses_a_run_too_short_to_measure(db, brain_home):
    out = brain(db, brain_home, "bench", "bus", "-n", "10", timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "brain: -n must be at least 200"
