"""What every command shares: verb registration, one-line errors, exit codes."""
from __future__ import annotations

import argparse
import importlib
from datetime import date, datetime, timezone
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from brain.errors import BrainError, one_line

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
# SQLSTATE of a table that does not exist (psycopg and asyncpg errors both carry .sqlstate).
UNDEFINED_TABLE = "42P01"


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
    except OSError as exc:  # a file it must write (a journal entry, a skill) or a socket
        print(f"{prog}: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if not _from_the_database(exc):
            raise
        if getattr(exc, "sqlstate", None) == UNDEFINED_TABLE:
            # A database never migrated (or behind this version): say what fixes it.
            print(f"{prog}: the database is not migrated, or is behind this version ({one_line(exc)}): "
                  "run `brain db upgrade` (the brain also migrates when it starts)", file=sys.stderr)
            return EXIT_ERROR
        # Whatever a command meets in the database (a server that refuses, a statement that
        # fails) is one line for the operator, not a traceback.
        print(f"{prog}: database error: {one_line(getattr(exc, 'orig', None) or exc)}", file=sys.stderr)
        return EXIT_ERROR


def _from_the_database(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("psycopg", "asyncpg", "sqlalchemy")


def bounded_int(low: int, high: int = 2**63 - 1) -> Callable[[str], int]:
    """An argparse type: an integer from low to high (ids fit a bigint), or a usage error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range ({low} to {high})")
        return value
    return parse


ROW_ID = bounded_int(1)


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


_progress_open = False  # a progress line on the terminal still waits for its end


def progress_line(text: str) -> None:
    """Progress on stderr: one line rewritten in place on a terminal, a line per report in a
    log (docker compose logs, a file), where carriage returns would run the reports together."""
    global _progress_open
    if sys.stderr.isatty():
        print(f"\r{text}", end="", file=sys.stderr, flush=True)
        _progress_open = True
    else:
        print(text, file=sys.stderr, flush=True)


def end_progress() -> None:
    """End the progress line on a terminal, so that what follows starts a line of its own."""
    global _progress_open
    if _progress_open:
        print(file=sys.stderr, flush=True)
        _progress_open = False


def print_progress(done: int, total: int) -> None:
    """A bar of bars replayed, for backtests and shadow experiments."""
    width = 30
    filled = int(width * done / max(1, total))
    progress_line(f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} bars")
