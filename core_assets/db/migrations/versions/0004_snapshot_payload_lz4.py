"""Provider snapshot payloads compressed with lz4 on PostgreSQL.

A snapshot is one jsonb value holding the provider's whole answer: about 130 MB at 100,000 models, which
pglz (the default) takes about 10 s to compress and lz4 about 3 s. A server built without lz4 keeps pglz;
SQLite does not compress.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _lz4_available(bind) -> bool:
    return bool(
        bind.execute(
            sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _lz4_available(bind):
        op.execute("ALTER TABLE provider_snapshots ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE provider_snapshots ALTER COLUMN payload SET COMPRESSION default")
