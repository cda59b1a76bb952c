"""Rewriting recent journal files from their rows after a crash.

Cycle entries are filed without waiting for the disk (a flush per cycle cost a fifth of the
backtest's throughput), so a power loss can leave a file written shortly before it short or
missing while its row survived. On start the brain rewrites such files from agent_journal,
which holds every entry's markdown: afterwards every row again points at its whole file.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from brain.journal.entry import write_via_temp
from brain.sql import queries_beside

Q = queries_beside(__file__, "repair.sql")
# The query the brain runs on start for the rows to repair from (brain.runtime reads it by this name).
RECENT = Q["recent_entries"]


def repair_recent_files(rows: Iterable[tuple[str, str]]) -> list[Path]:
    """Rewrite, from (file_path, body_md) rows, the files that are missing or not whole;
    returns the paths rewritten."""
    rewritten = []
    for file_path, body in rows:
        path = Path(file_path)
        try:
            if path.stat().st_size == len(body.encode("utf-8")):
                continue
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
        rewritten.append(write_via_temp(path.parent, body, True, _over(path)))
    return rewritten


def _over(path: Path) -> Callable[[str], Path]:
    """Put the written temp file in place of whatever is at path (a short file, or none)."""
    def put(tmp: str) -> Path:
        os.replace(tmp, path)
        return path
    return put
