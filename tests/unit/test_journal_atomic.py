"""Journal files are written atomically: a process killed while writing many leaves only
whole files, and every entry renders as a readable postmortem."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO

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
