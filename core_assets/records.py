"""The common shape every source is turned into before the merge.

A provider normalizer, a reference catalog and an inferencer each answer with *facts*: a dict whose keys
are a subset of SPEC_FIELDS (SPEC §3 `specs` keys). A fact that a source does not know is absent or None;
`capabilities` is a dict of tri-state values (True / False / None = unknown — unknown is never False).
The merge (core_assets.enrichment.merge) picks each field from the highest-precedence source that knows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

SPEC_FIELDS: tuple[str, ...] = (
    "context_window",
    "max_output_tokens",
    "input_cost_per_1k",
    "output_cost_per_1k",
    "modalities",
    "capabilities",
    "family",
    "parameter_size",
    "deprecation_date",
    "successor",
    "aliases",
    "free_kind",
)

PRICE_FIELDS: tuple[str, ...] = ("input_cost_per_1k", "output_cost_per_1k")

# The capability keys every registry row carries; sources may add others (e.g. "fim", "ocr", "audio").
CAPABILITIES: tuple[str, ...] = ("chat", "tools", "vision", "json_mode", "reasoning", "embeddings")

# free_kind values: why a (provider, model) pair costs nothing at the margin (SPEC §4).
FREE_VARIANT = "free_variant"  # OpenRouter `:free` id
ZERO_PRICE = "zero_price"  # OpenRouter text model whose every listed price is 0
LOCAL = "local"  # a model running on the operator's own Ollama
FREE_TIER = "free_tier"  # the operator declared the account's free tier (CORE_<PROVIDER>_FREE_TIER=1)
FREE_KINDS = (FREE_VARIANT, ZERO_PRICE, LOCAL, FREE_TIER)
# Free kinds whose marginal price is zero by definition; a free tier keeps the list price.
ZERO_PRICED_FREE_KINDS = (FREE_VARIANT, ZERO_PRICE, LOCAL)

Key = tuple[str, str]  # (provider_id, model_id)


@dataclass
class NormalizedModel:
    """One (provider_id, model_id) as its provider's API describes it, in common units."""

    provider_id: str
    model_id: str
    name: str | None
    # The provider's item, unmodified (Ollama: {"tag": <api/tags item>, "show": <api/show answer>}).
    provider_data: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "model_id": self.model_id,
            "name": self.name,
            "provider_data": self.provider_data,
            "facts": self.facts,
        }


class PayloadError(ValueError):
    """A provider answered with something that is not the API's shape; the message says what is wrong."""


def facts_by_key(frame: pd.DataFrame | None, column: str = "facts") -> dict[Key, dict[str, Any]]:
    """{(provider_id, model_id): facts} from a frame of a reference or inference asset."""
    if frame is None or frame.empty:
        return {}
    return {
        (p, m): value
        for p, m, value in zip(frame["provider_id"], frame["model_id"], frame[column], strict=True)
        if value
    }


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """A JSON-shaped `value` with `change` applied to every string in it, dict keys included."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {change(k) if isinstance(k, str) else k: map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, change) for v in value]
    return value
