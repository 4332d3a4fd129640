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


def _materialize(context: dg.AssetExecutionContext, catalog: Catalog) -> dg.MaterializeResult:
    for warning in catalog.warnings:
        context.log.warning(warning)
    frame = catalog.frame()
    return dg.MaterializeResult(
        value=frame,
        metadata={
            "dagster/row_count": len(frame),
            "entries": catalog.parsed.entries,
            "matches": dg.MetadataValue.json(catalog.parsed.mapped),
            "source": catalog.source,
            "warnings": warnings_md(catalog.warnings),
        },
    )


@dg.asset(group_name=GROUP, kinds={"python", "pandas"})
def ref_litellm_models(context: dg.AssetExecutionContext, sources: DataSources) -> dg.MaterializeResult:
    """One row per (provider_id, model_id) of ours that LiteLLM's `model_prices_and_context_window.json`
    describes, with its facts (prices converted from USD per token to USD per 1,000 tokens). Live URL
    `CORE_LITELLM_URL`; the bundled copy in demo mode, with `CORE_REFERENCES=offline`, or when the fetch fails."""
    return _materialize(context, load_catalog(litellm.NAME, demo=sources.demo))


@dg.asset(group_name=GROUP, kinds={"python", "pandas"})
def ref_models_dev_models(context: dg.AssetExecutionContext, sources: DataSources) -> dg.MaterializeResult:
    """One row per (provider_id, model_id) of ours that models.dev's `api.json` describes, with its facts
    (prices converted from USD per 1M tokens to USD per 1,000 tokens). Live URL `CORE_MODELS_DEV_URL`; the
    bundled copy in demo mode, with `CORE_REFERENCES=offline`, or when the fetch fails."""
    return _materialize(context, load_catalog(models_dev.NAME, demo=sources.demo))


def price_magnitude_result(frame: pd.DataFrame, column: str) -> dg.AssetCheckResult:
    """WARN for every text model whose per-1k price is outside the plausible band (a unit slip)."""
    findings = implausible_prices(zip(frame["provider_id"], frame["model_id"], frame[column], strict=True))
    return dg.AssetCheckResult(
        passed=not findings,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(findings)} implausible per-1k price(s)"
        if findings
        else "every price is plausible",
        metadata={"implausible": len(findings), "prices": md_table([f.row() for f in findings])},
    )


@dg.asset_check(asset=ref_litellm_models, name=LITELLM_PRICE_MAGNITUDE_CHECK)
def ref_litellm_price_magnitude(ref_litellm_models: pd.DataFrame) -> dg.AssetCheckResult:
    """LiteLLM prices per 1k tokens inside a plausible band."""
    return price_magnitude_result(ref_litellm_models, "facts")


@dg.asset_check(asset=ref_models_dev_models, name=MODELS_DEV_PRICE_MAGNITUDE_CHECK)
def ref_models_dev_price_magnitude(ref_models_dev_models: pd.DataFrame) -> dg.AssetCheckResult:
    """models.dev prices per 1k tokens inside a plausible band."""
    return price_magnitude_result(ref_models_dev_models, "facts")
