"""`brain shadow REPORT_ID N [--symbols] [--start] [--split] [--end] [--data] [--json]`: a shadow
experiment. The recommendation's variant and the live configuration are replayed over the
same bars through the same agents (offline route), each in a scratch database; the verdict
is judged on the held-out period from --split. The result goes to the next optimizer report."""
from __future__ import annotations

import argparse

from brain.cli.common import ROW_ID, utc_date_arg


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report_id", type=ROW_ID)
    parser.add_argument("number", type=ROW_ID, help="the recommendation's number in that report")
    parser.add_argument("--symbols", default=None,
                        help="comma-separated (default: every symbol of --data, or the bundled AAPL,MSFT,IBM,GOOG)")
    parser.add_argument("--start", type=utc_date_arg, default=utc_date_arg("2011-01-03"),
                        help="first replayed bar (default 2011-01-03; earlier bars warm up)")
    parser.add_argument("--split", type=utc_date_arg, default=utc_date_arg("2012-07-02"),
                        help="the held-out period starts here (default 2012-07-02)")
    parser.add_argument("--end", type=utc_date_arg, default=None, help="stop before this date")
    parser.add_argument("--data", default=None, help="a CSV or Parquet of OHLCV instead of the bundled bars")
    parser.add_argument("--operator", default=None, help="who asked (default: the login name)")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    import getpass
    import json
    from pathlib import Path

    from brain import aio
    from brain.cli.common import end_progress, print_progress
    from brain.logs import setup_logging
    from brain.config import settings
    from brain.db import migrate
    from brain.db.urls import admin_url
    from brain.errors import BrainError
    from brain.market.history import cli_history
    from brain.optimizer.shadow import run_shadow

    cfg = settings()
    setup_logging("WARNING")
    if args.split <= args.start:
        raise BrainError("--split must come after --start: the held-out period follows the in-sample one")
    if args.end is not None and args.end <= args.split:
        raise BrainError("--end must come after --split, or there is no held-out period")
    history = cli_history(args.symbols, args.data, args.end)
    migrate.upgrade(admin_url(cfg))

    result = aio.run(run_shadow(cfg, args.report_id, args.number, history, args.start, args.split,
                                args.operator or getpass.getuser(), progress=None if args.json else print_progress))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        end_progress()
        print(Path(result["file"]).read_text())
        print(f"experiment {result['experiment_id']}: {result['file']} (in the next optimizer report)")
    return 0
