"""The claim leases newly taken-in messages as it inserts their deliveries.

Revision ID: 0006
Revises: 0005
"""
from migrations.sqlfile import run_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
