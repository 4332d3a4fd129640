"""The registry database's tables (SPEC §3). One definition serves SQLite and PostgreSQL: JSON columns
become JSONB and prices NUMERIC on PostgreSQL. The migrations create exactly these tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# USD per 1,000 tokens; 12 decimal places keep per-token prices such as 1e-9 exact.
Price = sa.Numeric(24, 12)
Timestamp = sa.DateTime(timezone=True)

REGISTRY_TABLE = "model_registry"
STATUSES = ("active", "deprecated", "missing")

model_registry = sa.Table(
    REGISTRY_TABLE,
    metadata,
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
    # sha256 of the row's content; a re-sync compares it instead of rewriting unchanged rows.
    sa.Column("content_hash", sa.String(64), nullable=False),
    # The snapshot the row was last built from: lineage from a row back to the raw response.
    sa.Column("snapshot_id", sa.Integer),
    sa.CheckConstraint("status IN ('active', 'deprecated', 'missing')", name="ck_model_registry_status"),
    sa.CheckConstraint("cost_per_1k IS NULL OR cost_per_1k >= 0", name="ck_model_registry_cost"),
)

# One row (id = 1): the orchestrator's settings, read as `orchestrator_config.active_table_name`.
orchestrator_config = sa.Table(
    "orchestrator_config",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("active_table_name", sa.String(128), nullable=False, server_default=REGISTRY_TABLE),
    sa.Column("updated_at", Timestamp),
)

active_table_log = sa.Table(
    "active_table_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("switched_at", Timestamp, nullable=False),
    sa.Column("from_table", sa.Text),
    sa.Column("to_table", sa.Text, nullable=False),
    sa.Column("actor", sa.Text),
)

provider_snapshots = sa.Table(
    "provider_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("fetched_at", Timestamp, nullable=False),
    sa.Column("sha256", sa.String(64)),
    sa.Column("http_status", sa.Integer),
    # The untouched response; NULL when identical to the previous good snapshot (outcome 'unchanged').
    sa.Column("payload", JSONDoc),
    # ok | unchanged | failed | skipped | suspect
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("model_count", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("run_id", sa.String(64)),
    sa.Index("ix_provider_snapshots_provider_id", "provider", "id"),
)

model_price_history = sa.Table(
    "model_price_history",
    metadata,
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
    sa.Index("ix_model_price_history_model", "provider_id", "model_id", "valid_from"),
)

ai_inference_cache = sa.Table(
    "ai_inference_cache",
    metadata,
    sa.Column("provider_id", sa.String(64), primary_key=True),
    sa.Column("model_id", sa.String(512), primary_key=True),
    sa.Column("input_hash", sa.String(64), primary_key=True),
    sa.Column("inferencer", sa.String(64), primary_key=True),
    sa.Column("prompt_version", sa.String(32), primary_key=True),
    sa.Column("result", JSONDoc, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64)),
    sa.Column("finished_at", Timestamp, nullable=False),
    # Per provider: fetched / new / changed / missing / outcome, as shown by `core-registry sync`.
    sa.Column("summary", JSONDoc, nullable=False),
)

table_usage = sa.Table(
    "table_usage",
    metadata,
    sa.Column("table_name", sa.String(128), primary_key=True),
    sa.Column("reads", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("fallbacks", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_used_at", Timestamp),
)

# Ranked candidate models per task profile of routing.yaml, rewritten by the model_routing asset.
model_routing = sa.Table(
    "model_routing",
    metadata,
    sa.Column("profile", sa.String(64), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("provider_id", sa.String(64), nullable=False),
    sa.Column("model_id", sa.String(512), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("cost_per_1k", Price),
    sa.Column("context_window", sa.BigInteger),
    sa.Column("table_used", sa.String(128), nullable=False),
    sa.Column("computed_at", Timestamp, nullable=False),
)

CORE_TABLES = frozenset(metadata.tables) | {"alembic_version"}
