"""The merge behind `model_specs`: one registry row per model, every field with the source it came from.

Precedence (SPEC §2): manual override > provider API > reference catalogs (LiteLLM, then models.dev) >
AI-inferred > unknown. A field is taken from the first source, in that order, that knows it (a value that
is not None). Capabilities are merged key by key, so a provider's `tools: true` and LiteLLM's
`vision: true` both survive. Prices are never taken from an AI source.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from core_assets.records import CAPABILITIES, FREE_TIER, PRICE_FIELDS, SPEC_FIELDS, ZERO_PRICED_FREE_KINDS

OVERRIDE = "override"
PROVIDER = "provider"
LITELLM = "litellm"
MODELS_DEV = "models.dev"
AI_PREFIX = "ai:"

# Reference catalogs in the order they are consulted (LiteLLM is keyed by the providers' own ids, so
# it is the more exact of the two; models.dev fills what LiteLLM lacks).
REFERENCE_ORDER = (LITELLM, MODELS_DEV)

# Fields that only the provider, the operator or configuration may state: a catalog or a model cannot
# know the account's free tier or the provider's own alias list.
PROVIDER_ONLY = frozenset({"free_kind", "aliases"})


def _known(value: Any) -> bool:
    return value is not None and value != [] and value != {}


def merge_facts(sources: Iterable[tuple[str, dict[str, Any] | None]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge facts from sources given in precedence order into (specs, provenance).

    `specs` has every key of SPEC_FIELDS (None where unknown); `provenance` maps each known field — and
    each known capability as `capabilities.<name>` — to the source that supplied it."""
    specs: dict[str, Any] = {name: None for name in SPEC_FIELDS}
    capabilities: dict[str, bool | None] = dict.fromkeys(CAPABILITIES)
    provenance: dict[str, str] = {}
    # Capability flags supplied per source, sources in precedence order.
    flags_by_source: dict[str, int] = {}
    for source, facts in sources:
        if not facts:
            continue
        from_ai = source.startswith(AI_PREFIX)
        for name in SPEC_FIELDS:
            value = facts.get(name)
            if value is None:  # most fields of most sources: the cheapest test first
                continue
            if name == "capabilities":
                for cap, flag in (value or {}).items():
                    if flag is not None and capabilities.get(cap) is None:
                        capabilities[cap] = bool(flag)
                        provenance[f"capabilities.{cap}"] = source
                        flags_by_source[source] = flags_by_source.get(source, 0) + 1
                    else:
                        capabilities.setdefault(cap, None)
                continue
            if specs[name] is not None or not _known(value):
                continue
            if from_ai and name in PRICE_FIELDS:
                continue
            if name in PROVIDER_ONLY and source not in (PROVIDER, OVERRIDE):
                continue
            specs[name] = value
            provenance[name] = source
    specs["capabilities"] = capabilities
    context, output = specs["context_window"], specs["max_output_tokens"]
    if isinstance(context, int) and isinstance(output, int) and output > context:
        # Two sources disagree so that the output limit exceeds the window; the window is the harder fact.
        specs["max_output_tokens"] = None
        provenance.pop("max_output_tokens", None)
    if specs["free_kind"] in ZERO_PRICED_FREE_KINDS and (priced := [f for f in PRICE_FIELDS if specs[f]]):
        if any(provenance[f] in (PROVIDER, OVERRIDE) for f in priced):
            # The provider or the operator states a price: the model costs money, whatever its id says.
            specs["free_kind"] = None
            provenance.pop("free_kind", None)
        else:
            # A catalog's price for a model that is free by definition is its paid sibling's price.
            for field in priced:
                specs[field] = None
                provenance.pop(field)
    if flags_by_source:
        # The source that supplied most capability flags (ties: the higher-precedence one).
        provenance["capabilities"] = max(flags_by_source, key=flags_by_source.__getitem__)
    return specs, provenance


def registry_fields(
    specs: dict[str, Any], provenance: dict[str, str], *, free_tier: bool
) -> tuple[dict[str, Any], bool, Decimal | None, str]:
    """Derive the registry's top-level columns from merged specs: (specs with provenance, is_free,
    cost_per_1k, status)."""
    specs = dict(specs)
    if specs.get("free_kind") is None and free_tier:
        specs["free_kind"] = FREE_TIER
        provenance = {**provenance, "free_kind": "config"}
    is_free = specs.get("free_kind") is not None
    cost = specs.get("input_cost_per_1k")
    cost_per_1k = Decimal(str(cost)) if cost is not None else None
    status = "deprecated" if specs.get("deprecation_date") else "active"
    specs["provenance"] = provenance
    return specs, is_free, cost_per_1k, status
