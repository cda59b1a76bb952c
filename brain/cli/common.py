"""What every command shares: verb registration, one-line errors, exit codes."""
from __future__ import annotations

import argparse
import importlib
from datetime import date, datetime, timezone
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from brain.errors import BrainError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser(prog: str, description: str, verbs: Sequence[tuple[str, str, str]]) -> argparse.ArgumentParser:
    """verbs: (name, module, help). Each module has configure(parser) and run(args) -> int.

    configure() must stay import-light so that --help is fast; run() imports what it needs.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    for name, module_name, help_text in verbs:
        module = importlib.import_module(module_name)
        verb_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(verb_parser)
        verb_parser.set_defaults(_run=module.run)
    return parser


def dispatch(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or EXIT_OK)
    except BrainError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`brainctl journal | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def date_arg(text: str) -> date:
    """An argparse type: YYYY-MM-DD, or a usage error naming the value."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def utc_date_arg(text: str) -> datetime:
    """YYYY-MM-DD as midnight UTC."""
    day = date_arg(text)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))
