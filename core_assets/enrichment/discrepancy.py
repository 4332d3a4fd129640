"""Where the sources disagree: for each model, the price and context window that its provider API,
LiteLLM and models.dev state, listed when they differ by more than a tolerance.

No public catalog publishes this; it is how a stale catalog or a provider's quiet price change shows up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from core_assets.enrichment.merge import PROVIDER, REFERENCE_ORDER
from core_assets.references.catalog import References
from core_assets.units import to_decimal

# 5% absorbs "128k" written as 128,000 by one source and 131,072 by another, and price rounding.
DEFAULT_TOLERANCE = Decimal("0.05")
COMPARED_FIELDS = ("input_cost_per_1k", "output_cost_per_1k", "context_window")
SOURCES = (PROVIDER, *REFERENCE_ORDER)
COLUMNS = ["provider_id", "model_id", "field", *SOURCES, "spread"]


@dataclass(frozen=True)
class Discrepancy:
    provider_id: str
    model_id: str
    field: str
    values: dict[str, Decimal]
    # max / min - 1; None when one source says 0 and another does not.
    spread: Decimal | None


def spread(values: list[Decimal]) -> Decimal | None:
    low, high = min(values), max(values)
    if low == high:
        return Decimal(0)
    return None if low == 0 else high / low - 1


def model_discrepancies(
    provider_id: str,
    model_id: str,
    sources: dict[str, dict[str, Any] | None],
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> list[Discrepancy]:
    """Disagreements for one model, given its facts per source name."""
    found = []
    for field in COMPARED_FIELDS:
        values = {
            source: number
            for source in SOURCES
            if (number := to_decimal((sources.get(source) or {}).get(field))) is not None
        }
        if len(values) < 2:
            continue
        gap = spread(list(values.values()))
        if gap is None or gap > tolerance:
            found.append(Discrepancy(provider_id, model_id, field, values, gap))
    return found


def find_discrepancies(
    models: pd.DataFrame, references: References, tolerance: Decimal = DEFAULT_TOLERANCE
) -> list[Discrepancy]:
    """Disagreements for every row of the normalized_models frame."""
    found = []
    for provider_id, model_id, facts in zip(
        models["provider_id"], models["model_id"], models["facts"], strict=True
    ):
        facts = facts or {}
        sources = {
            PROVIDER: facts,
            **dict(references.sources(provider_id, model_id, facts.get("aliases") or ())),
        }
        found += model_discrepancies(provider_id, model_id, sources, tolerance)
    return found


def report_frame(discrepancies: list[Discrepancy]) -> pd.DataFrame:
    """One row per (model, field) in disagreement: each source's value (None = not stated) and the spread."""
    rows = [
        (
            d.provider_id,
            d.model_id,
            d.field,
            *(_number(d.values.get(source)) for source in SOURCES),
            None if d.spread is None else round(float(d.spread), 4),
        )
        for d in discrepancies
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _number(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)
