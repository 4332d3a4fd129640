"""Seed `orchestrator_config` and migrate the legacy active table `unified_models`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The seed design pointed `active_table_name` at `unified_models`, a table that never existed; every
reader then fell back silently. The registry table is `model_registry`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(
        sa.text("UPDATE orchestrator_config SET active_table_name = 'model_registry' "
                "WHERE active_table_name = 'unified_models'")
    )
    if bind.execute(sa.text("SELECT count(*) FROM orchestrator_config")).scalar() == 0:
        bind.execute(
            sa.text("INSERT INTO orchestrator_config (id, active_table_name, updated_at) "
                    "VALUES (1, 'model_registry', CURRENT_TIMESTAMP)")
        )
