"""The AI layer: `ai_data` for the fields of each model that neither its provider nor a reference catalog
states, by the inferencer `CORE_INFERENCER` selects (heuristic by default, or an LLM)."""

import dagster as dg
import pandas as pd

from core_assets.defs.metadata import warnings_md
from core_assets.defs.resources import DataSources, RegistryDatabase
from core_assets.enrichment.inference import infer_metadata, inferencer_from_env, merged_specs
from core_assets.enrichment.quality import coverage
from core_assets.references.catalog import References

GROUP = "enrichment"
WARNINGS_SHOWN = 20


@dg.asset(
    group_name=GROUP,
    kinds={"python", "pandas"},
    ins={
        "normalized_models": dg.AssetIn(),
        "ref_litellm_models": dg.AssetIn(),
        "ref_models_dev_models": dg.AssetIn(),
    },
)
def inferred_model_metadata(
    context: dg.AssetExecutionContext,
    normalized_models: pd.DataFrame,
    ref_litellm_models: pd.DataFrame,
    ref_models_dev_models: pd.DataFrame,
    registry_db: RegistryDatabase,
    sources: DataSources,
) -> dg.MaterializeResult:
    """One row per normalized model: (provider_id, model_id, ai_data), where ai_data holds the inferred
    fields that provider and references left unknown — never prices — with `source`, `model`,
    `prompt_version`, `confidence` and `input_hash`; None when nothing was inferred. LLM answers are
    cached in `ai_inference_cache`, so unchanged models are not asked about again."""
    references = References.from_frames(ref_litellm_models, ref_models_dev_models)
    inferencer = inferencer_from_env(demo=sources.demo)
    run = infer_metadata(normalized_models, references, inferencer, registry_db.engine())
    for warning in run.stats.warnings[:WARNINGS_SHOWN]:
        context.log.warning(warning)
    specs = merged_specs(normalized_models, references, run.frame)
    stats = run.stats
    return dg.MaterializeResult(
        value=run.frame,
        metadata={
            "dagster/row_count": len(run.frame),
            "inferencer": run.inferencer,
            "prompt_version": run.prompt_version,
            "models_inferred": run.inferred,
            "models_asked": run.asked,
            "cache_hits": run.cache_hits,
            "llm_calls": stats.calls,
            "llm_failed_calls": stats.failed_calls,
            "llm_tokens": stats.tokens,
            "llm_prompt_tokens": stats.prompt_tokens,
            "llm_completion_tokens": stats.completion_tokens,
            "rejected_answers": stats.rejected,
            "heuristic_fallbacks": stats.fallbacks,
            "coverage": dg.MetadataValue.json(coverage(specs)),
            "warnings": warnings_md(stats.warnings, WARNINGS_SHOWN),
        },
    )
