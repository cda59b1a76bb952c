"""Revisions keep their SQL in `<revision file stem>.up.sql` / `.down.sql` beside them."""
from pathlib import Path

from alembic import op


def run_sql(revision_file: str, direction: str) -> None:
    path = Path(revision_file).with_suffix(f".{direction}.sql")
    op.execute(path.read_text())
