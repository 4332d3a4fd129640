"""Checks on `model_specs` that need the merged specs, the registry database or the overrides file:
price magnitude, price jumps since the last sync, context windows of chat models, stale overrides, coverage.
All warn; none blocks the registry update.

They are evaluated in the `model_specs` step itself (`CHECK_SPECS`, `evaluate`): as separate check steps
each would unpickle the whole frame again and pay Dagster's per-step cost, for no gain — they judge the
frame the step has just built. The price-jump check reads the registry before `model_registry`, downstream,
writes the new prices."""

import dagster as dg
import pandas as pd

from core_assets.defs.metadata import md_table
from core_assets.defs.resources import RegistryDatabase
from core_assets.enrichment.overrides import load_overrides, upstream_specs
from core_assets.enrichment.quality import (
    context_gaps,
    coverage,
    implausible_prices,
    previous_prices,
    price_jumps,
)

SPECS = dg.AssetKey("model_specs")
PRICE_MAGNITUDE_CHECK = "model_specs_price_magnitude"
PRICE_JUMP_CHECK = "model_specs_price_jump"
CONTEXT_WINDOW_CHECK = "model_specs_context_window"
STALE_OVERRIDES_CHECK = "model_specs_stale_overrides"
COVERAGE_CHECK = "model_specs_coverage"


def _specs_rows(model_specs: pd.DataFrame):
    return zip(model_specs["provider_id"], model_specs["model_id"], model_specs["specs"], strict=True)


def _warn(check: str, passed: bool, description: str, metadata: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=SPECS,
        check_name=check,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def model_specs_price_magnitude(model_specs: pd.DataFrame) -> dg.AssetCheckResult:
    """Every text model's per-1k price lies in a plausible band; one outside is a per-token/per-1M unit slip."""
    findings = implausible_prices(_specs_rows(model_specs))
    return _warn(
        PRICE_MAGNITUDE_CHECK,
        not findings,
        f"{len(findings)} implausible per-1k price(s)" if findings else "every price is plausible",
        {"implausible": len(findings), "prices": md_table([f.row() for f in findings])},
    )


def model_specs_price_jump(model_specs: pd.DataFrame, registry_db: RegistryDatabase) -> dg.AssetCheckResult:
    """No price moved by more than 50% since the last sync (old and new values listed)."""
    findings = price_jumps(_specs_rows(model_specs), previous_prices(registry_db.engine()))
    return _warn(
        PRICE_JUMP_CHECK,
        not findings,
        f"{len(findings)} price(s) changed by more than 50%" if findings else "no price jumped",
        {"jumps": len(findings), "changes": md_table([f.row() for f in findings])},
    )


def model_specs_context_window(model_specs: pd.DataFrame) -> dg.AssetCheckResult:
    """Every active chat model has a context window."""
    rows = zip(
        model_specs["provider_id"],
        model_specs["model_id"],
        model_specs["specs"],
        model_specs["status"],
        strict=True,
    )
    gaps = context_gaps(rows)
    return _warn(
        CONTEXT_WINDOW_CHECK,
        not gaps,
        f"{len(gaps)} active chat model(s) without a context window"
        if gaps
        else "every active chat model has one",
        {"gaps": len(gaps), "models": md_table([g.row() for g in gaps], limit=50)},
    )


def model_specs_stale_overrides(model_specs: pd.DataFrame) -> dg.AssetCheckResult:
    """No active override sets a value that the model's other sources now give anyway."""
    overrides = load_overrides()
    overridden = {(o.provider_id, o.model_id) for o in overrides.entries}
    upstream = {
        (p, m): upstream_specs(sources)
        for p, m, sources in zip(
            model_specs["provider_id"], model_specs["model_id"], model_specs["sources"], strict=True
        )
        if (p, m) in overridden and sources  # `sources` is kept only where an override applies
    }
    stale = overrides.stale(upstream)
    rows = [
        {
            "entry": s.override.entry,
            "provider_id": s.override.provider_id,
            "model_id": s.override.model_id,
            "field": s.field,
            "value": str(s.value),
            "reason": s.override.reason,
        }
        for s in stale
    ]
    return _warn(
        STALE_OVERRIDES_CHECK,
        not stale,
        f"{len(stale)} override field(s) now equal the upstream value; remove them"
        if stale
        else "no stale override",
        {
            "stale": len(stale),
            "active_overrides": len(overrides.active()),
            "expired_overrides": len(overrides.expired()),
            "fields": md_table(rows),
        },
    )


def model_specs_coverage(model_specs: pd.DataFrame, shares: dict | None = None) -> dg.AssetCheckResult:
    """Reports the share of active models with a price, a context window and each capability known."""
    if shares is None:  # the step passes the figures it has already computed for its own metadata
        shares = coverage(model_specs.loc[model_specs["status"] == "active", "specs"])
    return dg.AssetCheckResult(
        asset_key=SPECS,
        check_name=COVERAGE_CHECK,
        passed=True,
        description="coverage of active models",
        metadata={
            key: dg.MetadataValue.float(float(value)) if key != "models" else value
            for key, value in shares.items()
        },
    )


CHECK_SPECS = [
    dg.AssetCheckSpec(name, asset=SPECS, description=(function.__doc__ or "").strip())
    for name, function in (
        (PRICE_MAGNITUDE_CHECK, model_specs_price_magnitude),
        (PRICE_JUMP_CHECK, model_specs_price_jump),
        (CONTEXT_WINDOW_CHECK, model_specs_context_window),
        (STALE_OVERRIDES_CHECK, model_specs_stale_overrides),
        (COVERAGE_CHECK, model_specs_coverage),
    )
]


def evaluate(
    model_specs: pd.DataFrame, registry_db: RegistryDatabase, coverage_shares: dict
) -> list[dg.AssetCheckResult]:
    """Every check above, on the frame `model_specs` has just built (and its coverage figures)."""
    return [
        model_specs_price_magnitude(model_specs),
        model_specs_price_jump(model_specs, registry_db),
        model_specs_context_window(model_specs),
        model_specs_stale_overrides(model_specs),
        model_specs_coverage(model_specs, coverage_shares),
    ]
