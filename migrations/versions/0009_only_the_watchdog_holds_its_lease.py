"""brain_app cannot write the watchdog's lease either.

Revision ID: 0009
Revises: 0008
"""
from migrations.sqlfile import run_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
