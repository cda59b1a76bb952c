"""IB reports a fill's commission after the fill itself: the brain may update that column.

Revision ID: 0002
Revises: 0001
"""
from migrations.sqlfile import run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
