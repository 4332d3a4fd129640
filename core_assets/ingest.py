"""From the snapshots in force to `normalized_models` rows: one per (provider_id, model_id), common units."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core_assets.db.snapshots import SnapshotInForce
from core_assets.providers import get_provider
from core_assets.records import PRICE_FIELDS, ZERO_PRICED_FREE_KINDS, NormalizedModel, PayloadError

NORMALIZED_COLUMNS = ["provider_id", "model_id", "name", "provider_data", "facts", "snapshot_id", "fetched_at"]


@dataclass
class NormalizedBatch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    # Per provider: when its snapshot in force was last confirmed upstream (becomes last_seen_at).
    confirmed_at: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    # Facts a provider states that contradict each other, dropped before they reach the merge.
    inconsistencies: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=NORMALIZED_COLUMNS)
        frame.attrs["confirmed_at"] = dict(self.confirmed_at)
        return frame


def sanitize(model: NormalizedModel) -> list[dict[str, Any]]:
    """Drop the provider facts that cannot be true together, and say which. Some providers list a
    completion limit above the context window (e.g. 16,384 of 8,192); the smaller, structural limit is
    kept. A model free by its id (`:free`) that lists a price is not counted free: calling it may cost."""
    facts = model.facts
    problems = []
    context, output = facts.get("context_window"), facts.get("max_output_tokens")
    if isinstance(context, int) and isinstance(output, int) and output > context:
        facts["max_output_tokens"] = None
        problems.append(f"max_output_tokens {output} > context_window {context}; max_output_tokens dropped")
    if facts.get("free_kind") in ZERO_PRICED_FREE_KINDS and any(facts.get(f) for f in PRICE_FIELDS):
        problems.append(f"free ({facts['free_kind']}) but priced; not counted free")
        facts["free_kind"] = None
    return [{"provider_id": model.provider_id, "model_id": model.model_id, "problem": p} for p in problems]


def normalize_snapshots(
    snapshots: dict[str, SnapshotInForce], parsed: Mapping[str, tuple[str, list[NormalizedModel]]] | None = None
) -> NormalizedBatch:
    """Rows of every snapshot in force. `parsed` (provider → (sha256, models)) holds what this run's fetch
    already normalized: a snapshot with that sha256 is the same payload, so its models are used as they are."""
    batch = NormalizedBatch()
    parsed = parsed or {}
    for provider, snap in snapshots.items():
        sha256, models = parsed.get(provider, (None, None))
        try:
            if models is None or sha256 != snap.sha256:
                models = get_provider(provider).normalize(snap.payload)
        except PayloadError as exc:
            # A snapshot was validated when it was fetched; this means the normalizer changed since.
            batch.errors[provider] = f"snapshot {snap.snapshot_id} no longer normalizes: {exc}"
            continue
        batch.confirmed_at[provider] = snap.confirmed_at
        batch.counts[provider] = len(models)
        for model in models:
            batch.inconsistencies.extend(sanitize(model))
            batch.rows.append({
                **model.as_row(),
                "snapshot_id": snap.snapshot_id,
                "fetched_at": snap.fetched_at,
            })
    return batch
