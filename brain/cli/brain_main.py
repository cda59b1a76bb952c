"""`brain`: run the service, migrate the database, benchmark, backtest."""
from __future__ import annotations

from collections.abc import Sequence

from brain.cli.common import build_parser, dispatch

VERBS = [
    ("up", "brain.cli.cmd_up", "embedded or configured Postgres, migrations, watchdog and brain with the replay"),
    ("run", "brain.cli.cmd_run", "run the brain process alone"),
    ("backtest", "brain.cli.cmd_backtest", "the same agents and bus over history, with a report"),
    ("shadow", "brain.cli.cmd_shadow", "replay an optimizer recommendation beside the live configuration"),
    ("db", "brain.cli.cmd_db", "database migrations: upgrade, downgrade, current"),
    ("bench", "brain.cli.cmd_bench", "benchmarks that print the figures the project promises"),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("brain", "The trading brain service.", VERBS)
    return dispatch("brain", parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
