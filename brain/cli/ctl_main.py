"""`brainctl`: the operator's tool. Connects as brain_operator."""
from __future__ import annotations

from collections.abc import Sequence

from brain.cli.common import build_parser, dispatch

VERBS = [
    ("status", "brain.cli.ctl_status", "trading state, halts, heartbeats, breakers, P&L, positions, spend"),
    ("halts", "brain.cli.ctl_halts", "active halts (--all: every halt)"),
    ("halt", "brain.cli.ctl_halt", "raise a halt by hand"),
    ("resume", "brain.cli.ctl_resume", "lift a halt after reading why it was raised"),
    ("journal", "brain.cli.ctl_journal", "list and read journal entries"),
    ("costs", "brain.cli.ctl_costs", "model spend from the ledger"),
    ("skills", "brain.cli.ctl_skills", "validate skill files, show their history"),
    ("optimize", "brain.cli.ctl_optimize", "the Self-Optimizer: ask for a report, list reports, apply one"),
    ("bus", "brain.cli.ctl_bus", "the message bus: backlog, replay a time window, dead letters"),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("brainctl", "Operator control of the trading brain.", VERBS)
    return dispatch("brainctl", parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
