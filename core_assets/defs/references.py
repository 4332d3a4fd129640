"""Reference catalog assets: LiteLLM's price table and models.dev's catalog, reduced to facts about our
providers' models (exact id mapping, core_assets/references/README.md)."""

import dagster as dg
import pandas as pd

from core_assets.defs.metadata import md_table, warnings_md
from core_assets.defs.resources import DataSources
from core_assets.enrichment.quality import implausible_prices
from core_assets.references import litellm, models_dev
from core_assets.references.catalog import Catalog, load_catalog

GROUP = "references"
LITELLM_PRICE_MAGNITUDE_CHECK = "ref_litellm_price_magnitude"
MODELS_DEV_PRICE_MAGNITUDE_CHECK = "ref_models_dev_price_magnitude"


def _materialize(context: dg.AssetExecutionContext, catalog: Catalog, check: str):
    for warning in catalog.warnings:
        context.log.warning(warning)
    frame = catalog.frame()
    yield dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            "entries": catalog.parsed.entries,
            "matches": dg.MetadataValue.json(catalog.parsed.mapped),
            "source": catalog.source,
            "warnings": warnings_md(catalog.warnings),
        },
    )
    yield price_magnitude_result(frame, "facts", check)


def _magnitude_check(asset: str, check: str, catalog: str) -> list[dg.AssetCheckSpec]:
    # Evaluated in the asset's own step: the check judges the frame just built, and a separate step would
    # only load it again.
    return [dg.AssetCheckSpec(check, asset=asset, description=f"{catalog} prices per 1k tokens inside a plausible band.")]


@dg.asset(
    group_name=GROUP,
    kinds={"python", "pandas"},
    check_specs=_magnitude_check("ref_litellm_models", LITELLM_PRICE_MAGNITUDE_CHECK, "LiteLLM"),
)
def ref_litellm_models(context: dg.AssetExecutionContext, sources: DataSources):
    """One row per (provider_id, model_id) of ours that LiteLLM's `model_prices_and_context_window.json`
    describes, with its facts (prices converted from USD per token to USD per 1,000 tokens). Live URL
    `CORE_LITELLM_URL`; the bundled copy in demo mode, with `CORE_REFERENCES=offline`, or when the fetch fails."""
    yield from _materialize(context, load_catalog(litellm.NAME, demo=sources.demo), LITELLM_PRICE_MAGNITUDE_CHECK)


@dg.asset(
    group_name=GROUP,
    kinds={"python", "pandas"},
    check_specs=_magnitude_check("ref_models_dev_models", MODELS_DEV_PRICE_MAGNITUDE_CHECK, "models.dev"),
)
def ref_models_dev_models(context: dg.AssetExecutionContext, sources: DataSources):
    """One row per (provider_id, model_id) of ours that models.dev's `api.json` describes, with its facts
    (prices converted from USD per 1M tokens to USD per 1,000 tokens). Live URL `CORE_MODELS_DEV_URL`; the
    bundled copy in demo mode, with `CORE_REFERENCES=offline`, or when the fetch fails."""
    yield from _materialize(context, load_catalog(models_dev.NAME, demo=sources.demo), MODELS_DEV_PRICE_MAGNITUDE_CHECK)


def price_magnitude_result(frame: pd.DataFrame, column: str, check: str) -> dg.AssetCheckResult:
    """WARN for every text model whose per-1k price is outside the plausible band (a unit slip)."""
    findings = implausible_prices(zip(frame["provider_id"], frame["model_id"], frame[column], strict=True))
    return dg.AssetCheckResult(
        check_name=check,
        passed=not findings,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(findings)} implausible per-1k price(s)"
        if findings
        else "every price is plausible",
        metadata={"implausible": len(findings), "prices": md_table([f.row() for f in findings])},
    )
