"""The halt gate holds against everything brain_app can write.

Revision ID: 0008
Revises: 0007
"""
from migrations.sqlfile import run_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
