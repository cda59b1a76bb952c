"""The claim takes its snapshot while it holds the consumer's cursor, so the cursor never moves back.

Revision ID: 0007
Revises: 0006
"""
from migrations.sqlfile import run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
