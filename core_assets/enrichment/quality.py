"""The rules behind the enrichment checks, as plain functions over facts and specs (SPEC §2, issue 3).

- price magnitude: a per-1k price outside a plausible band is the classic unit slip (per token or per 1M
  stored as per 1k);
- price jump: a price that moved by more than half since the last sync;
- context gaps: an active chat model without a context window;
- coverage: the share of models with a price, a context window and each capability known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core_assets.db.tables import model_registry
from core_assets.records import CAPABILITIES
from core_assets.units import to_decimal

Key = tuple[str, str]

# USD per 1,000 tokens. The dearest text models today cost about $0.15 (input) and $0.60 (output) per 1k;
# the cheapest paid ones about $0.00001. A value 1000× outside either side is a unit slip.
PRICE_BANDS = {
    "input_cost_per_1k": (Decimal("0.000001"), Decimal("1")),
    "output_cost_per_1k": (Decimal("0.000001"), Decimal("4")),
}
PRICE_JUMP = Decimal("0.5")


@dataclass(frozen=True)
class Finding:
    provider_id: str
    model_id: str
    detail: dict[str, Any]

    def row(self) -> dict[str, Any]:
        return {"provider_id": self.provider_id, "model_id": self.model_id, **self.detail}


def is_text_model(specs: Mapping[str, Any]) -> bool:
    """Text out, or not known otherwise; image, audio and video output is priced per token differently."""
    outputs = (specs.get("modalities") or {}).get("output")
    return not outputs or set(outputs) <= {"text"}


def implausible_prices(rows: Iterable[tuple[str, str, Mapping[str, Any]]]) -> list[Finding]:
    """Text models whose per-1k price lies outside PRICE_BANDS. `rows`: (provider_id, model_id, facts or specs)."""
    found = []
    for provider_id, model_id, specs in rows:
        if not specs or not is_text_model(specs):
            continue
        for field, (low, high) in PRICE_BANDS.items():
            price = to_decimal(specs.get(field))
            if price is not None and price != 0 and not low <= price <= high:
                detail = {"field": field, "per_1k": float(price), "plausible": f"{low}–{high}"}
                found.append(Finding(provider_id, model_id, detail))
    return found


def price_jumps(
    current: Iterable[tuple[str, str, Mapping[str, Any]]], previous: Mapping[Key, Mapping[str, Any]]
) -> list[Finding]:
    """Prices that changed by more than PRICE_JUMP (50%) against `previous` (the last sync's prices by key)."""
    found = []
    for provider_id, model_id, specs in current:
        before = previous.get((provider_id, model_id))
        if not before or not specs:
            continue
        for field in PRICE_BANDS:
            old, new = to_decimal(before.get(field)), to_decimal(specs.get(field))
            if old is None or new is None or old == new:
                continue
            change = None if old == 0 else (new - old) / old
            if change is None or abs(change) > PRICE_JUMP:
                label = "from 0" if change is None else f"{float(change):+.0%}"
                found.append(
                    Finding(
                        provider_id,
                        model_id,
                        {"field": field, "old": float(old), "new": float(new), "change": label},
                    )
                )
    return found


def previous_prices(engine: Engine) -> dict[Key, dict[str, Any]]:
    """The registry's current prices (the last sync's), read before this sync writes new ones."""
    table = model_registry
    # Only the one specs field, extracted by the database: parsing 100,000 whole specs documents takes seconds.
    query = sa.select(
        table.c.provider_id, table.c.model_id, table.c.cost_per_1k, table.c.specs["output_cost_per_1k"]
    ).where(table.c.status != "missing")
    with engine.connect() as conn:
        return {
            (provider_id, model_id): {"input_cost_per_1k": cost, "output_cost_per_1k": output}
            for provider_id, model_id, cost, output in conn.execute(query)
        }


def context_gaps(rows: Iterable[tuple[str, str, Mapping[str, Any], str]]) -> list[Finding]:
    """Active chat models without a context window. `rows`: (provider_id, model_id, specs, status)."""
    return [
        Finding(provider_id, model_id, {})
        for provider_id, model_id, specs, status in rows
        if status == "active"
        and (specs.get("capabilities") or {}).get("chat") is True
        and specs.get("context_window") is None
    ]


def coverage(specs_list: Iterable[Mapping[str, Any]]) -> dict[str, float | int]:
    """Share (0..1) of the given models with a price, a context window and each capability known."""
    specs_list = list(specs_list)
    total = len(specs_list)
    if not total:
        return {}

    def share(count: int) -> float:
        return round(count / total, 4)

    result = {
        "models": total,
        "price": share(sum(s.get("input_cost_per_1k") is not None for s in specs_list)),
        "context_window": share(sum(s.get("context_window") is not None for s in specs_list)),
    }
    for cap in CAPABILITIES:
        known = sum((s.get("capabilities") or {}).get(cap) is not None for s in specs_list)
        result[f"capabilities.{cap}"] = share(known)
    return result
