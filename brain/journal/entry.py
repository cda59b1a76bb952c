"""Journal entries: rendering, atomic files, and the agent_journal row."""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from brain.db.types import Queryable
from brain.sql import queries_beside

if TYPE_CHECKING:
    import psycopg

Q = queries_beside(__file__, "entry.sql")


class JournalEntry(BaseModel):
    kind: str                                  # cycle, halt, resume, optimizer, apply, ...
    outcome: str                               # filled, veto, skip, expired, halted, error, ...
    title: str
    symbol: str | None = None
    correlation_id: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    sections: list[tuple[str, str]] = []       # (heading, markdown body)
    facts: dict[str, Any] = {}


def render_markdown(entry: JournalEntry) -> str:
    head = [f"# {entry.title}", "",
            f"- when: {entry.created_at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
            f"- kind: {entry.kind}", f"- outcome: **{entry.outcome}**"]
    if entry.symbol:
        head.append(f"- symbol: {entry.symbol}")
    if entry.correlation_id:
        head.append(f"- cycle: `{entry.correlation_id}`")
    body = ["\n".join(head)]
    for heading, text in entry.sections:
        body.append(f"## {heading}\n\n{text.strip()}")
    return "\n\n".join(body) + "\n"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)[:40] or "_"


def write_entry_file(context_dir: Path, entry: JournalEntry, text: str | None = None, durable: bool = True) -> Path:
    """Write the entry under journal/YYYY-MM-DD/ atomically: a temp file in the same folder,
    flushed to disk, then renamed, so a crash leaves either the whole file or none. Not
    durable: not flushed, so a killed process still leaves whole files only, but a power loss
    may leave a recent file short or missing (repair_recent_files rewrites it from its row)."""
    when = entry.created_at.astimezone(timezone.utc)
    folder = context_dir / "journal" / f"{when:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{when:%H-%M-%S}-{_safe(entry.symbol or 'ALL')}-{_safe(entry.outcome)}"
    text = render_markdown(entry) if text is None else text

    def link(tmp: str) -> Path:
        n, target = 1, folder / f"{stem}.md"
        while True:
            try:
                os.link(tmp, target)  # never overwrites: a name collision takes the next suffix
                os.unlink(tmp)
                return target
            except FileExistsError:
                n += 1
                target = folder / f"{stem}-{n}.md"

    return write_via_temp(folder, text, durable, link)


# Read once, at import: asking for it sets it, which is not safe while other threads make files.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def readable_like_any_file(fd: int, replacing: Path | None = None) -> None:
    """mkstemp makes a file only its owner may read; an entry or a skill file is for whoever
    reads the journal or runs the brain: the mode the file it replaces had, or the umask's."""
    if replacing is not None and replacing.exists():
        os.fchmod(fd, stat.S_IMODE(replacing.stat().st_mode))
    else:
        os.fchmod(fd, 0o666 & ~_UMASK)


def write_via_temp(folder: Path, text: str, durable: bool, put: Callable[[str], Path],
                   replacing: Path | None = None) -> Path:
    """Write text to a temp file in folder (flushed to disk when durable), then hand its name
    to put, which gives it its real name; a failure on the way leaves no temp file behind.
    The file gets the mode of the one it is replacing, or the umask's."""
    # Not named *.md: a temp file a crash leaves behind must never look like an entry.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".partial")
    readable_like_any_file(fd, replacing)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        return put(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _row(entry: JournalEntry, body: str, path: Path) -> tuple:
    return (entry.created_at, entry.kind, entry.correlation_id, entry.symbol, entry.outcome, entry.title, body,
            json.dumps(entry.facts, default=str), str(path))


async def record_entry(conn: Queryable, context_dir: Path, entry: JournalEntry, durable: bool = True) -> int:
    """File and row (asyncpg connection). The file comes first: a row never points at nothing
    (not durable: until the next start, which rewrites recent files from their rows)."""
    import asyncio

    body = render_markdown(entry)
    if durable:  # the flush to disk waits on the device: off the event loop
        path = await asyncio.to_thread(write_entry_file, context_dir, entry, body, durable)
    else:
        # Unflushed, the write is a few system calls. A worker thread costs more than that on
        # a busy loop: it waits for the interpreter lock at every step, and the recorder
        # falls behind the cycles it records.
        path = write_entry_file(context_dir, entry, body, durable=False)
    return await conn.fetchval(Q["insert_entry"], *_row(entry, body, path))


def record_entry_sync(conn: psycopg.Connection[Any], context_dir: Path, entry: JournalEntry) -> int:
    """The same for a psycopg connection."""
    body = render_markdown(entry)
    path = write_entry_file(context_dir, entry, body)
    row = conn.execute(Q["insert_entry_sync"], _row(entry, body, path)).fetchone()
    assert row is not None  # INSERT ... RETURNING: one row
    return row[0]
