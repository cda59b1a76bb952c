"""Initial schema: bus, journal, ledger, state, halts, market data, orders, skills; roles and grants.

Revision ID: 0001
Revises:
"""
from migrations.sqlfile import run_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
