"""Cycle journal files are not flushed per cycle; the next start rewrites, from their rows,
recent files a crash left short or missing, and leaves whole ones alone."""
from __future__ import annotations

import os

from brain.journal import JournalEntry, render_markdown, write_entry_file
from tests.support.cycle import start_brain


def _entry(title: str) -> JournalEntry:
    return JournalEntry(kind="cycle", outcome="skip", title=title, symbol="AAPL",
                        sections=[("What happened", f"**skip** for {title}")])


def _filed(db, context, title: str, created_at: str = "now()"):
    """An entry as the recorder leaves it: its file (not flushed) and its row."""
    entry = _entry(title)
    body = render_markdown(entry)
    path = write_entry_file(context, entry, body, durable=False)
    db.sql(f"""INSERT INTO agent_journal (created_at, kind, symbol, outcome, title, body_md, file_path)
               VALUES ({created_at}, 'cycle', 'AAPL', 'skip', %s, %s, %s)""", (title, body, str(path)))
    return path, body


async def test_the_start_rewrites_recent_files_a_crash_left_short_or_missing(db, tmp_path):
    context = tmp_path / "context"
    whole, whole_body = _filed(db, context, "whole")
    short, short_body = _filed(db, context, "short")
    gone, gone_body = _filed(db, context, "gone")
    old, _ = _filed(db, context, "an hour older", created_at="now() - interval '1 hour'")
    # what a power loss can leave of files the kernel had not yet written back
    short.write_text(short_body[:10])
    gone.unlink()
    old.unlink()
    untouched = whole.stat().st_mtime_ns

    brain = await start_brain(db, tmp_path)
    await brain.close()

    assert short.read_text() == short_body
    assert gone.read_text() == gone_body
    assert whole.read_text() == whole_body and whole.stat().st_mtime_ns == untouched
    assert not old.exists(), "an entry written long before the last one reached the disk before any crash"
    assert not [p for p in short.parent.iterdir() if p.suffix == ".partial"]


def test_a_file_filed_without_flushing_is_whole_and_alone(tmp_path):
    entry = _entry("quick")
    path = write_entry_file(tmp_path, entry, durable=False)
    assert path.read_text() == render_markdown(entry)
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temp file is left behind"
    assert os.stat(path).st_nlink == 1
