"""Journal files are written atomically: a process killed while writing many leaves only
whole files, and every entry renders as a readable postmortem."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.support.paths import REPO

WRITER = """
import sys
from pathlib import Path
from brain.journal import JournalEntry, write_entry_file
body = "x" * 200_000  # big enough that a write is not instant
n = 0
while True:
    e = JournalEntry(kind="cycle", outcome="skip", title=f"entry {n}", symbol="AAPL",
                     sections=[("What happened", body), ("End", f"END OF ENTRY {n}")])
    write_entry_file(Path(sys.argv[1]), e)
    n += 1
    print(n, flush=True)
"""


def test_sigkill_while_writing_leaves_only_whole_files(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE)
    for _ in range(30):
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    files = list((tmp_path / "journal").glob("*/*.md"))
    assert len(files) >= 30
    for f in files:
        text = f.read_text()
        assert text.startswith("# entry ") and "END OF ENTRY" in text, f"{f.name} is not whole"
    # A temp file may be left behind by the kill; it never looks like an entry.
    leftovers = [p for p in (tmp_path / "journal").glob("*/*") if p.suffix != ".md"]
    assert all(p.name.startswith(".tmp-") and p.suffix == ".partial" for p in leftovers)


def test_entry_and_skill_files_are_readable_like_any_other(tmp_path, monkeypatch):
    """mkstemp's files are the owner's alone; a journal entry is for whoever reads the journal,
    and a rewritten skill file keeps the mode it had."""
    import stat

    from brain.journal import JournalEntry, write_entry_file
    from brain.optimizer.run import write_atomically

    import brain.journal.entry as entry

    monkeypatch.setattr(entry, "_UMASK", 0o022)  # the usual one, whatever this process's is
    old = os.umask(0o022)
    try:
        path = write_entry_file(tmp_path, JournalEntry(kind="cycle", outcome="skip", title="t", sections=[]))
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        skill = tmp_path / "SKILL.md"
        skill.write_text("old")
        skill.chmod(0o664)
        write_atomically(skill, "new")
        assert skill.read_text() == "new" and stat.S_IMODE(skill.stat().st_mode) == 0o664
    finally:
        os.umask(old)
