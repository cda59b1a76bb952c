"""The executor's lookups of a proposal's signatures and of stale proposals: index exactly those rows.

Revision ID: 0004
Revises: 0003
"""
from migrations.sqlfile import run_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
