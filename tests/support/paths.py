"""Where the repository is: the working folder of the processes the tests start, and the
home of skills/, context/ and the embedded PostgreSQL under .brain-test/."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
