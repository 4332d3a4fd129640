"""Provider snapshots: every fetch attempt is recorded; the latest good one per provider is "in force".

Outcomes: `ok` (a new response, payload stored), `unchanged` (same sha256 as the snapshot in force; the
payload is not stored twice), `failed`, `skipped`, and `suspect` (the shrink guard: a successful response
listing far fewer models than the registry holds — stored for inspection, never put in force).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

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


def active_counts(conn: sa.Connection, providers: list[str]) -> dict[str, int]:
    rows = conn.execute(
        sa.select(model_registry.c.provider_id, sa.func.count())
        .where(model_registry.c.provider_id.in_(providers), model_registry.c.status != "missing")
        .group_by(model_registry.c.provider_id)
    ).all()
    return {p: 0 for p in providers} | {p: n for p, n in rows}


def is_suspect(model_count: int, active_before: int, ratio: float) -> bool:
    """The shrink guard (SPEC §7): a successful fetch with zero models, or fewer than `ratio` of the
    provider's active rows, is not trusted."""
    if ratio <= 0 or active_before == 0:
        return False
    return model_count == 0 or model_count < ratio * active_before


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
) -> RecordedFetch:
    """Store one fetch attempt and decide whether its payload goes in force."""
    fetched_at = fetched_at or utcnow()
    with engine.begin() as conn:
        active_before = active_counts(conn, [provider])[provider]
        if outcome == "ok":
            if is_suspect(model_count or 0, active_before, shrink_ratio):
                outcome = "suspect"
                reason = (
                    f"{provider} listed {model_count} models but the registry holds {active_before} active; "
                    f"kept the previous snapshot (shrink guard, threshold {shrink_ratio:.0%})"
                )
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


def snapshots_in_force(engine: Engine, providers: list[str]) -> dict[str, SnapshotInForce]:
    """The latest good snapshot of each provider that has one, with its payload."""
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
            sa.select(snaps.id, snaps.provider, snaps.fetched_at, snaps.sha256, snaps.payload).join(
                latest_ok, latest_ok.c.id == snaps.id
            )
        ).all()
    return {
        row.provider: SnapshotInForce(
            provider=row.provider,
            snapshot_id=row.id,
            fetched_at=_aware(row.fetched_at),
            confirmed_at=_aware(confirmed.get(row.provider) or row.fetched_at),
            sha256=row.sha256,
            payload=row.payload,
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
