"""`model_specs`: the merge of provider facts, reference catalogs, AI inferences and overrides."""

import dagster as dg
import pandas as pd

from core_assets import settings
from core_assets.defs.metadata import validation_result
from core_assets.enrichment.specs import build_specs
from core_assets.schemas import model_frame, validate

SPECS = dg.AssetKey("model_specs")
SPECS_SCHEMA_CHECK = "specs_schema"

@dg.asset(
    key=SPECS,
    group_name="enrichment",
    kinds={"python", "pandas"},
    ins={"normalized_models": dg.AssetIn("normalized_models")},
    check_specs=[
        dg.AssetCheckSpec(
            SPECS_SCHEMA_CHECK,
            asset=SPECS,
            blocking=True,
            description="Unique key, non-negative prices, output ≤ context, is_free consistent, valid status.",
        )
    ],
)
def model_specs(context: dg.AssetExecutionContext, normalized_models: pd.DataFrame):
    """One row per model as the registry will hold it: the columns of `model_registry`, with `specs`
    merged by precedence (override > provider > LiteLLM > models.dev > AI) and `specs.provenance` naming
    the source of every field; `sources` keeps each source's facts for checks and reports."""
    frame = build_specs(normalized_models, free_tier=settings.free_tier)
    outcome = validate(model_frame(frame.to_dict("records")))
    yield dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            "free_models": int(frame["is_free"].sum()) if len(frame) else 0,
            "priced_models": int(frame["cost_per_1k"].notna().sum()) if len(frame) else 0,
        },
    )
    yield validation_result(SPECS_SCHEMA_CHECK, SPECS, outcome)
