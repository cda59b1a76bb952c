"""brainctl on a database that was never migrated: one line that names the fix, not the
database's own words about a missing relation."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import REPO


@pytest.mark.parametrize("args", [["costs"], ["status"], ["journal"], ["halts"], ["bus", "backlog"]])
def test_a_read_on_an_unmigrated_database_says_so_and_names_the_fix(empty_db, brain_home, args):
    out = subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", *args], cwd=REPO, env=empty_db.env(brain_home),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stdout == ""
    [line] = out.stderr.splitlines()
    assert line.startswith("brainctl: the database is not migrated, or is behind this version (")
    assert line.endswith("run `brain db upgrade` (the brain also migrates when it starts)")
    assert "does not exist" in line
