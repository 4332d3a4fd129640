"""Provider snapshots: every fetch attempt is recorded; the latest good one per provider is "in force".

Outcomes: `ok` (a new response, payload stored), `unchanged` (same sha256 as the snapshot in force; the
payload is not stored twice), `failed`, `skipped`, and `suspect` (the shrink guard: a successful response
listing far fewer models than the registry holds, or keeping few of them — stored for inspection, never
put in force).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core_assets.db.engine import write_transaction
from core_assets.db.tables import model_registry, provider_snapshots

GOOD = ("ok", "unchanged")


@dataclass
class SnapshotInForce:
    """The latest good snapshot of a provider: its payload and when it was last confirmed upstream."""

    provider: str
    snapshot_id: int
    fetched_at: datetime
    confirmed_at: datetime
    sha256: str
    payload: Any


@dataclass
class RecordedFetch:
    snapshot_id: int
    outcome: str
    reason: str | None
    active_before: int


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_suspect(model_count: int, active_before: int, ratio: float) -> bool:
    """The shrink guard (SPEC §7): a successful fetch with zero models, or fewer than `ratio` of the
    provider's active rows, is not trusted."""
    if ratio <= 0 or active_before == 0:
        return False
    return model_count == 0 or model_count < ratio * active_before


def active_ids(conn: sa.Connection, provider: str) -> set[str]:
    reg = model_registry.c
    rows = conn.execute(sa.select(reg.model_id).where(reg.provider_id == provider, reg.status != "missing"))
    return set(rows.scalars())


def guard_reason(
    provider: str, model_ids: Collection[str] | None, model_count: int, active: set[str], ratio: float
) -> str | None:
    """Why a successful fetch is suspect, or None. Beyond the count (`is_suspect`), a listing that keeps
    fewer than `ratio` of the active ids — a catalog renamed wholesale, or swapped for another
    account's — would mark most of the registry missing at once; it is held back the same way."""
    threshold = f"kept the previous snapshot (shrink guard, threshold {ratio:.0%})"
    if is_suspect(model_count, len(active), ratio):
        return f"{provider} listed {model_count} models but the registry holds {len(active)} active; {threshold}"
    kept = len(active.intersection(model_ids)) if model_ids is not None else len(active)
    if is_suspect(kept, len(active), ratio):
        return f"{provider} listed {model_count} models but only {kept} of the {len(active)} active ones; {threshold}"
    return None


def record_fetch(
    engine: Engine,
    *,
    provider: str,
    outcome: str,
    payload: Any,
    sha256: str | None,
    http_status: int | None,
    model_count: int | None,
    reason: str | None,
    duration_ms: int | None,
    run_id: str | None,
    shrink_ratio: float,
    fetched_at: datetime | None = None,
    model_ids: Collection[str] | None = None,
) -> RecordedFetch:
    """Store one fetch attempt and decide whether its payload goes in force. `model_ids` (the ids the
    answer lists) lets the shrink guard also catch a catalog whose ids changed wholesale."""
    fetched_at = fetched_at or utcnow()
    with write_transaction(engine) as conn:
        active = active_ids(conn, provider)
        active_before = len(active)
        if outcome == "ok":
            suspicion = guard_reason(provider, model_ids, model_count or 0, active, shrink_ratio)
            if suspicion:
                outcome, reason = "suspect", suspicion
            else:
                in_force = conn.execute(
                    sa.select(provider_snapshots.c.sha256)
                    .where(provider_snapshots.c.provider == provider, provider_snapshots.c.outcome == "ok")
                    .order_by(provider_snapshots.c.id.desc())
                    .limit(1)
                ).scalar()
                if in_force == sha256:
                    outcome, payload = "unchanged", None
        snapshot_id = conn.execute(
            provider_snapshots.insert()
            .values(
                provider=provider,
                fetched_at=fetched_at,
                sha256=sha256,
                http_status=http_status,
                payload=payload if outcome in ("ok", "suspect") else None,
                outcome=outcome,
                model_count=model_count,
                error=reason,
                duration_ms=duration_ms,
                run_id=run_id,
            )
            .returning(provider_snapshots.c.id)
        ).scalar_one()
    return RecordedFetch(snapshot_id, outcome, reason, active_before)


def stores_payload_verbatim(engine: Engine) -> bool:
    """Whether a payload read back equals the one written, key order included (SQLite keeps the JSON text;
    PostgreSQL's jsonb orders keys its own way)."""
    return engine.dialect.name != "postgresql"


def snapshots_in_force(
    engine: Engine, providers: list[str], *, held: Mapping[str, str] | None = None
) -> dict[str, SnapshotInForce]:
    """The latest good snapshot of each provider that has one, with its payload — except where `held`
    (provider → sha256 of a payload the caller has in memory) names that very payload: its payload is
    then None, and the caller uses its own copy instead of reading it back."""
    held = held or {}
    snaps = provider_snapshots.c
    with engine.connect() as conn:
        latest_ok = (
            sa.select(snaps.provider, sa.func.max(snaps.id).label("id"))
            .where(snaps.provider.in_(providers), snaps.outcome == "ok")
            .group_by(snaps.provider)
            .subquery()
        )
        confirmed = dict(
            conn.execute(
                sa.select(snaps.provider, sa.func.max(snaps.fetched_at))
                .where(snaps.provider.in_(providers), snaps.outcome.in_(GOOD))
                .group_by(snaps.provider)
            ).all()
        )
        rows = conn.execute(
            sa.select(snaps.id, snaps.provider, snaps.fetched_at, snaps.sha256).join(
                latest_ok, latest_ok.c.id == snaps.id
            )
        ).all()
        wanted = [row.id for row in rows if row.sha256 is None or held.get(row.provider) != row.sha256]
        payloads = (
            dict(conn.execute(sa.select(snaps.id, snaps.payload).where(snaps.id.in_(wanted))).all())
            if wanted
            else {}
        )
    return {
        row.provider: SnapshotInForce(
            provider=row.provider,
            snapshot_id=row.id,
            fetched_at=_aware(row.fetched_at),
            confirmed_at=_aware(confirmed.get(row.provider) or row.fetched_at),
            sha256=row.sha256,
            payload=payloads.get(row.id),
        )
        for row in rows
    }


def latest_attempts(engine: Engine, providers: list[str]) -> dict[str, dict[str, Any]]:
    """The most recent fetch attempt of each provider (whatever its outcome)."""
    snaps = provider_snapshots.c
    with engine.connect() as conn:
        latest = (
            sa.select(sa.func.max(snaps.id).label("id")).where(snaps.provider.in_(providers)).group_by(snaps.provider)
        ).subquery()
        rows = conn.execute(
            sa.select(snaps.id, snaps.provider, snaps.fetched_at, snaps.outcome, snaps.error, snaps.model_count).join(
                latest, latest.c.id == snaps.id
            )
        ).all()
    return {row.provider: dict(row._mapping) for row in rows}
