"""Per-agent working notes under context/<agent>/notes.md: dated paragraphs, appended.

One write per note with O_APPEND, so concurrent writers never interleave within a note and
a crash leaves the file as it was plus whole notes only up to the last full write."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path


def append_note(context_dir: Path, agent: str, text: str) -> Path:
    folder = context_dir / agent
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "notes.md"
    note = f"\n## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n{text.strip()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, note)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path
