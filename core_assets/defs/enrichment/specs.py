"""`model_specs`: the merge of provider facts, reference catalogs, AI inferences and overrides."""

import dagster as dg
import pandas as pd

from core_assets import settings
from core_assets.defs.enrichment import checks
from core_assets.defs.metadata import md_table, validation_result
from core_assets.defs.resources import RegistryDatabase
from core_assets.enrichment.overrides import load_overrides
from core_assets.enrichment.quality import coverage
from core_assets.enrichment.specs import build_specs
from core_assets.records import facts_by_key
from core_assets.references.catalog import References
from core_assets.schemas import model_frame, validate

SPECS = dg.AssetKey("model_specs")
SPECS_SCHEMA_CHECK = "specs_schema"


@dg.asset(
    key=SPECS,
    group_name="enrichment",
    kinds={"python", "pandas"},
    ins={
        "normalized_models": dg.AssetIn("normalized_models"),
        "ref_litellm_models": dg.AssetIn("ref_litellm_models"),
        "ref_models_dev_models": dg.AssetIn("ref_models_dev_models"),
        "inferred_model_metadata": dg.AssetIn("inferred_model_metadata"),
    },
    check_specs=[
        dg.AssetCheckSpec(
            SPECS_SCHEMA_CHECK,
            asset=SPECS,
            blocking=True,
            description="Unique key, non-negative prices, output ≤ context, is_free consistent, valid status.",
        ),
        *checks.CHECK_SPECS,
    ],
)
def model_specs(
    context: dg.AssetExecutionContext,
    normalized_models: pd.DataFrame,
    ref_litellm_models: pd.DataFrame,
    ref_models_dev_models: pd.DataFrame,
    inferred_model_metadata: pd.DataFrame,
    registry_db: RegistryDatabase,
):
    """One row per model as the registry will hold it: the columns of `model_registry`, with `specs`
    merged by precedence (override > provider > LiteLLM > models.dev > AI) and `specs.provenance` naming
    the source of every field; `sources` keeps each source's facts where an override applies (for the
    stale-override check)."""
    overrides = load_overrides()
    frame = build_specs(
        normalized_models,
        references=References.from_frames(ref_litellm_models, ref_models_dev_models),
        inferred=facts_by_key(inferred_model_metadata, "ai_data"),
        overrides=overrides.facts_for,
        free_tier=settings.free_tier,
    )
    checked = frame[["provider_id", "model_id", "is_free", "cost_per_1k", "specs", "status"]]
    outcome = validate(model_frame(checked.to_dict("records")))
    figures = coverage(frame.loc[frame["status"] == "active", "specs"])
    context.log.info(f"model_specs: {len(frame)} models; coverage {figures}")
    yield dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            "free_models": int(frame["is_free"].sum()) if len(frame) else 0,
            "priced_models": int(frame["cost_per_1k"].notna().sum()) if len(frame) else 0,
            "active_overrides": len(overrides.active()),
            "coverage": dg.MetadataValue.json(figures),
            "fields_by_source": md_table(_fields_by_source(frame["specs"])),
            "preview": md_table(frame[["provider_id", "model_id", "name", "cost_per_1k", "status"]], limit=10),
        },
    )
    yield validation_result(SPECS_SCHEMA_CHECK, SPECS, outcome)
    yield from checks.evaluate(frame, registry_db, figures)


def _fields_by_source(specs: pd.Series) -> list[dict]:
    """How many values of each top-level field came from each source — where the registry's data comes from."""
    counts: dict[str, dict[str, int]] = {}
    for spec in specs:
        for field, source in (spec.get("provenance") or {}).items():
            if "." in field:
                continue
            counts.setdefault(field, {})
            counts[field][source] = counts[field].get(source, 0) + 1
    sources = sorted({s for by in counts.values() for s in by})
    return [{"field": f, **{s: by.get(s, 0) for s in sources}} for f, by in sorted(counts.items())]
