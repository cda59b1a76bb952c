"""`brain backtest [--symbols] [--start] [--end] [--split] [--data] [--json]`."""
from __future__ import annotations

import argparse

from brain.cli.common import utc_date_arg


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", default=None,
                        help="comma-separated (default: every symbol of --data, or the bundled AAPL,MSFT,IBM,GOOG)")
    parser.add_argument("--start", type=utc_date_arg, default=None, help="first replayed bar (earlier bars warm up)")
    parser.add_argument("--end", type=utc_date_arg, default=None, help="stop before this date")
    parser.add_argument("--split", type=utc_date_arg, default=None,
                        help="walk-forward: report in-sample (before) and held-out (from this date) separately")
    parser.add_argument("--data", default=None, help="a CSV or Parquet of OHLCV instead of the bundled bars")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, timezone

    from brain import aio
    from brain.backtest.run import run_backtest
    from brain.cli.common import end_progress, print_progress
    from brain.logs import setup_logging
    from brain.config import settings
    from brain.errors import BrainError
    from brain.market.history import cli_history

    cfg = settings()
    setup_logging("WARNING")
    if args.split and args.start and args.split <= args.start:
        raise BrainError("--split must come after --start")
    history = cli_history(args.symbols, args.data, args.end)
    report_dir = cfg.context_dir / "backtests" / datetime.now(timezone.utc).strftime("%Y-%m-%d-%H%M%S")
    report_dir.mkdir(parents=True, exist_ok=True)
    result = aio.run(run_backtest(cfg, history, args.start, args.split, report_dir,
                                  progress=None if args.json else print_progress))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        end_progress()
        print((report_dir / "report.md").read_text())
        print(f"report: {report_dir / 'report.md'}")
    return 0
