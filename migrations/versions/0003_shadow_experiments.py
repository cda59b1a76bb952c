"""Shadow experiments: a recommendation's variant replayed beside the live configuration.

Revision ID: 0003
Revises: 0002
"""
from migrations.sqlfile import run_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
