"""Realistic model_registry rows written straight to the table, for tests of the read side."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core_assets.db.tables import model_registry, sync_runs
from core_assets.records import CAPABILITIES

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def model_row(
    provider_id: str,
    model_id: str,
    *,
    cost: str | None = None,
    output_cost: str | None = None,
    free_kind: str | None = None,
    context: int | None = None,
    max_output: int | None = None,
    capabilities: dict[str, bool | None] | None = None,
    status: str = "active",
    aliases: list[str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """One registry row as the pipeline writes it; prices in USD per 1k tokens, given as strings."""
    caps: dict[str, bool | None] = dict.fromkeys(CAPABILITIES)
    caps.update(capabilities or {})
    specs = {
        "context_window": context,
        "max_output_tokens": max_output,
        "input_cost_per_1k": float(cost) if cost is not None else None,
        "output_cost_per_1k": float(output_cost) if output_cost is not None else None,
        "modalities": {"input": ["text"], "output": ["text"]},
        "capabilities": caps,
        "family": None,
        "parameter_size": None,
        "deprecation_date": "2026-12-31" if status == "deprecated" else None,
        "successor": None,
        "aliases": aliases or [],
        "free_kind": free_kind,
        "provenance": {"context_window": "provider", "input_cost_per_1k": "litellm"},
    }
    return {
        "provider_id": provider_id,
        "model_id": model_id,
        "name": name or model_id,
        "is_free": free_kind is not None,
        "cost_per_1k": Decimal(cost) if cost is not None else None,
        "provider_data": {"id": model_id},
        "ai_data": None,
        "specs": specs,
        "status": status,
        "first_seen_at": NOW,
        "last_seen_at": NOW,
        "updated_at": NOW,
        "content_hash": hashlib.sha256(f"{provider_id}/{model_id}".encode()).hexdigest(),
        "snapshot_id": None,
    }


def insert_rows(engine: Engine, rows: list[dict[str, Any]], *, sync: bool = True) -> None:
    """Insert rows and, like a registry materialization, append a sync_runs row."""
    with engine.begin() as conn:
        if rows:
            conn.execute(model_registry.insert(), rows)
        if sync:
            conn.execute(sa.insert(sync_runs).values(run_id="test", finished_at=NOW, summary={}))


def replace_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Swap the whole registry for `rows`, as a sync would."""
    with engine.begin() as conn:
        conn.execute(model_registry.delete())
    insert_rows(engine, rows)
