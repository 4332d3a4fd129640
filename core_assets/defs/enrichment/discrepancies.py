"""The discrepancy report: where provider API, LiteLLM and models.dev disagree on price or context window."""

import dagster as dg
import pandas as pd

from core_assets.defs.metadata import md_table
from core_assets.enrichment.discrepancy import DEFAULT_TOLERANCE, find_discrepancies, report_frame
from core_assets.references.catalog import References

GROUP = "enrichment"


@dg.asset(
    group_name=GROUP,
    kinds={"python", "pandas"},
    ins={
        "normalized_models": dg.AssetIn(),
        "ref_litellm_models": dg.AssetIn(),
        "ref_models_dev_models": dg.AssetIn(),
    },
)
def model_discrepancies(
    normalized_models: pd.DataFrame, ref_litellm_models: pd.DataFrame, ref_models_dev_models: pd.DataFrame
) -> dg.MaterializeResult:
    """One row per (provider_id, model_id, field) where the sources that state the field's value differ by
    more than 5%: the provider's, LiteLLM's and models.dev's value (None = not stated) and the spread
    (max / min - 1; None when one source says 0). Fields: input and output price per 1k, context window."""
    references = References.from_frames(ref_litellm_models, ref_models_dev_models)
    frame = report_frame(find_discrepancies(normalized_models, references))
    return dg.MaterializeResult(
        value=frame,
        metadata={
            "dagster/row_count": len(frame),
            "models": int(frame[["provider_id", "model_id"]].drop_duplicates().shape[0]),
            "by_field": dg.MetadataValue.json({k: int(v) for k, v in frame["field"].value_counts().items()}),
            "tolerance": float(DEFAULT_TOLERANCE),
            "report": md_table(frame, limit=50, empty="No disagreements beyond the tolerance."),
        },
    )
