"""A cycle's model calls found by index; the claim leaves expired leases to a slow reclaim.

Revision ID: 0005
Revises: 0004
"""
from migrations.sqlfile import run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
