"""Building `model_specs` rows: each normalized model merged with its references, AI inferences and
overrides into the registry's columns (SPEC §3)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from core_assets.enrichment.merge import AI_PREFIX, OVERRIDE, PROVIDER, merge_facts, registry_fields
from core_assets.records import SPEC_FIELDS, Key
from core_assets.references.catalog import References

SPECS_COLUMNS = [
    "provider_id", "model_id", "name", "is_free", "cost_per_1k", "provider_data", "ai_data", "specs", "status",
    "snapshot_id", "sources",
]


def ai_facts(ai_data: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    """The source name and the SPEC facts an inferencer's `ai_data` carries."""
    if not ai_data:
        return None, None
    return f"{AI_PREFIX}{ai_data.get('source', 'heuristic')}", {k: ai_data.get(k) for k in SPEC_FIELDS if k in ai_data}


def build_specs(
    normalized: pd.DataFrame,
    *,
    references: References | None = None,
    inferred: Mapping[Key, dict] | None = None,
    overrides: Callable[[str, str], dict | None] | None = None,
    free_tier: Callable[[str], bool] = lambda provider: False,
) -> pd.DataFrame:
    """One registry row per normalized model, with `specs.provenance` and the facts of every source."""
    references = references or References({})
    inferred = inferred or {}
    tiers = {provider: free_tier(provider) for provider in set(normalized["provider_id"])}
    rows = []
    for rec in normalized.to_dict("records"):
        key = (rec["provider_id"], rec["model_id"])
        ai_data = inferred.get(key)
        ai_source, ai_known = ai_facts(ai_data)
        facts = rec["facts"] or {}
        sources: dict[str, dict | None] = {
            OVERRIDE: overrides(*key) if overrides else None,
            PROVIDER: facts,
            # Catalogs may list a model only under an alias its provider declares (Mistral's -latest ids).
            **dict(references.sources(*key, facts.get("aliases") or ())),
        }
        if ai_source:
            sources[ai_source] = ai_known
        specs, provenance = merge_facts(sources.items())
        specs, is_free, cost_per_1k, status = registry_fields(specs, provenance, free_tier=tiers[key[0]])
        rows.append({
            "provider_id": key[0],
            "model_id": key[1],
            "name": rec.get("name") or key[1],
            "is_free": is_free,
            "cost_per_1k": cost_per_1k,
            "provider_data": rec["provider_data"],
            "ai_data": ai_data or None,
            "specs": specs,
            "status": status,
            "snapshot_id": rec.get("snapshot_id"),
            # Each source's facts, for the stale-override check: kept only where an override applies, as
            # at 100,000 models a copy of every source's facts is a large share of the frame to store.
            "sources": {name: facts for name, facts in sources.items() if facts} if sources[OVERRIDE] else None,
        })
    frame = pd.DataFrame(rows, columns=SPECS_COLUMNS)
    frame.attrs = dict(normalized.attrs)
    return frame
