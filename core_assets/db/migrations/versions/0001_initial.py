"""The registry schema of SPEC §3.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Tables that already exist (a database created by the earlier seed system) are left in place; the
next revision repairs their contents.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Price = sa.Numeric(24, 12)
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    def create(name, *columns):
        if name not in existing:
            op.create_table(name, *columns)

    create(
        "model_registry",
        sa.Column("provider_id", sa.String(64), primary_key=True),
        sa.Column("model_id", sa.String(512), primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("is_free", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("cost_per_1k", Price),
        sa.Column("provider_data", JSONDoc),
        sa.Column("ai_data", JSONDoc),
        sa.Column("specs", JSONDoc),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("first_seen_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("snapshot_id", sa.Integer),
        sa.CheckConstraint("status IN ('active', 'deprecated', 'missing')", name="ck_model_registry_status"),
        sa.CheckConstraint("cost_per_1k IS NULL OR cost_per_1k >= 0", name="ck_model_registry_cost"),
    )
    create(
        "orchestrator_config",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("active_table_name", sa.String(128), nullable=False, server_default="model_registry"),
        sa.Column("updated_at", Timestamp),
    )
    create(
        "active_table_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("switched_at", Timestamp, nullable=False),
        sa.Column("from_table", sa.Text),
        sa.Column("to_table", sa.Text, nullable=False),
        sa.Column("actor", sa.Text),
    )
    create(
        "provider_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("fetched_at", Timestamp, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("http_status", sa.Integer),
        sa.Column("payload", JSONDoc),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("model_count", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("run_id", sa.String(64)),
    )
    if "provider_snapshots" not in existing:
        op.create_index("ix_provider_snapshots_provider_id", "provider_snapshots", ["provider", "id"])
    create(
        "model_price_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(512), nullable=False),
        sa.Column("input_cost_per_1k", Price),
        sa.Column("output_cost_per_1k", Price),
        sa.Column("is_free", sa.Boolean, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("valid_from", Timestamp, nullable=False),
        sa.Column("valid_to", Timestamp),
        sa.Column("run_id", sa.String(64)),
    )
    if "model_price_history" not in existing:
        op.create_index(
            "ix_model_price_history_model", "model_price_history", ["provider_id", "model_id", "valid_from"]
        )
    create(
        "ai_inference_cache",
        sa.Column("provider_id", sa.String(64), primary_key=True),
        sa.Column("model_id", sa.String(512), primary_key=True),
        sa.Column("input_hash", sa.String(64), primary_key=True),
        sa.Column("inferencer", sa.String(64), primary_key=True),
        sa.Column("prompt_version", sa.String(32), primary_key=True),
        sa.Column("result", JSONDoc, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    create(
        "sync_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64)),
        sa.Column("finished_at", Timestamp, nullable=False),
        sa.Column("summary", JSONDoc, nullable=False),
    )
    create(
        "table_usage",
        sa.Column("table_name", sa.String(128), primary_key=True),
        sa.Column("reads", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("fallbacks", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_used_at", Timestamp),
    )
