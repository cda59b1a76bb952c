"""`brain bench bus|...`: measure on the configured (or embedded) server and print the figures."""
from __future__ import annotations

import argparse
import sys

BENCHES = ("bus", "cycle", "watchdog", "cache")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", choices=BENCHES, help="what to measure")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument("-n", type=int, default=3000, help="bus: messages per throughput run (default 3000)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="bus: rounds of every run, compared by their medians (default 7)")
    parser.add_argument("--injections", type=int, default=20, help="watchdog: breaches to inject (default 20)")


def run(args: argparse.Namespace) -> int:
    from brain import aio

    from brain.bench.scratch import scratch_database
    from brain.cli.common import print_json
    from brain.config import doctrine_path, settings
    from brain.db.urls import admin_url

    if args.n < 200:
        print("brain: -n must be at least 200", file=sys.stderr)
        return 2
    if args.rounds < 3:
        print("brain: --rounds must be at least 3 (figures are medians over the rounds)", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    cfg = settings()
    if args.which == "cycle":
        from brain.bench.cycle import run_cycle_bench

        figures = run_cycle_bench(cfg, progress)
    elif args.which == "cache":
        from brain.bench.cache import run_cache_bench
        from brain.db.urls import with_user

        with scratch_database(admin_url(cfg), "brain_bench") as url:
            figures = aio.run(run_cache_bench(with_user(url, "brain_app"), cfg.skills_dir,
                                              doctrine_path(cfg).read_text()))
    elif args.which == "watchdog":
        from brain.bench.watchdog import run_watchdog_bench

        with scratch_database(admin_url(cfg), "brain_bench") as url:
            figures = run_watchdog_bench(url, cfg, injections=args.injections, progress=progress)
    else:
        with scratch_database(admin_url(cfg), "brain_bench") as url:
            from brain.bench.bus import run_bus_bench

            figures = aio.run(run_bus_bench(url, cfg, n=args.n, rounds=args.rounds, progress=progress))
    if args.json:
        print_json(figures)
    else:
        width = max(map(len, figures))
        for key, value in figures.items():
            print(f"{key:>{width}}: {value}")
    return 0
