"""The model_routing table: ranked candidate models per task profile.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_routing",
        sa.Column("profile", sa.String(64), primary_key=True),
        sa.Column("rank", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(512), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("cost_per_1k", sa.Numeric(24, 12)),
        sa.Column("context_window", sa.BigInteger),
        sa.Column("table_used", sa.String(128), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
