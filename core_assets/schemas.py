"""pandera schemas, one per layer, validated as asset checks (PUDL's pattern).

Each layer's rows are first flattened into plain columns (`model_frame`) so that the rules read like the
contract: unique key, non-negative prices, output ≤ context, is_free consistent with zero prices, valid
status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from core_assets.db.tables import STATUSES
from core_assets.records import FREE_TIER, ZERO_PRICED_FREE_KINDS
from core_assets.settings import PROVIDERS


def _num(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def model_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Flatten rows (with `facts` or `specs`) into the columns the schemas check."""
    flat = []
    for row in rows:
        spec = row.get("specs") if row.get("specs") is not None else row.get("facts") or {}
        free_kind = spec.get("free_kind")
        flat.append({
            "provider_id": row.get("provider_id"),
            "model_id": row.get("model_id"),
            "context_window": _num(spec.get("context_window")),
            "max_output_tokens": _num(spec.get("max_output_tokens")),
            "input_cost_per_1k": _num(spec.get("input_cost_per_1k")),
            "output_cost_per_1k": _num(spec.get("output_cost_per_1k")),
            "cost_per_1k": _num(row.get("cost_per_1k")),
            "free_kind": free_kind,
            "is_free": bool(row["is_free"]) if "is_free" in row else free_kind is not None,
            "status": row.get("status", "active"),
        })
    columns = ["provider_id", "model_id", "context_window", "max_output_tokens", "input_cost_per_1k",
               "output_cost_per_1k", "cost_per_1k", "free_kind", "is_free", "status"]
    frame = pd.DataFrame(flat, columns=columns)
    for col in ("context_window", "max_output_tokens", "input_cost_per_1k", "output_cost_per_1k", "cost_per_1k"):
        frame[col] = frame[col].astype("float64")
    frame["is_free"] = frame["is_free"].astype(bool)
    return frame


class ModelFrameSchema(pa.DataFrameModel):
    """The rules every layer of the registry keeps."""

    provider_id: Series[str] = pa.Field(isin=list(PROVIDERS))
    model_id: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 512})
    context_window: Series[float] = pa.Field(nullable=True, ge=1)
    max_output_tokens: Series[float] = pa.Field(nullable=True, ge=1)
    input_cost_per_1k: Series[float] = pa.Field(nullable=True, ge=0)
    output_cost_per_1k: Series[float] = pa.Field(nullable=True, ge=0)
    cost_per_1k: Series[float] = pa.Field(nullable=True, ge=0)
    free_kind: Series[str] = pa.Field(nullable=True, isin=[*ZERO_PRICED_FREE_KINDS, FREE_TIER])
    is_free: Series[bool]
    status: Series[str] = pa.Field(isin=list(STATUSES))

    class Config:
        unique = ["provider_id", "model_id"]
        strict = True
        coerce = False

    @pa.dataframe_check(error="max_output_tokens exceeds context_window")
    def output_within_context(cls, df: pd.DataFrame) -> Series[bool]:
        return ~(df["max_output_tokens"] > df["context_window"])

    @pa.dataframe_check(error="is_free disagrees with free_kind")
    def free_flag_matches_kind(cls, df: pd.DataFrame) -> Series[bool]:
        return df["is_free"] == df["free_kind"].notna()

    @pa.dataframe_check(error="a free model (free variant, zero price or local) has a non-zero price")
    def free_means_zero_price(cls, df: pd.DataFrame) -> Series[bool]:
        zero_free = df["free_kind"].isin(ZERO_PRICED_FREE_KINDS)
        priced = (df["input_cost_per_1k"].fillna(0) != 0) | (df["output_cost_per_1k"].fillna(0) != 0)
        return ~(zero_free & priced)


@dataclass
class ValidationOutcome:
    passed: bool
    failures: pd.DataFrame
    num_failures: int


def validate(frame: pd.DataFrame, schema: type[pa.DataFrameModel] = ModelFrameSchema) -> ValidationOutcome:
    """Run a schema lazily (every rule, every row) and join each failure to the row it is about."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failing, seen = [], set()
        for case in errors.failure_cases.itertuples(index=False):
            index = None if pd.isna(case.index) else case.index
            row_level = case.schema_context == "DataFrameSchema"
            # A row-level rule reports every column of the failing row; one line per row and rule is enough.
            key = (index, str(case.check), None if row_level else case.column)
            if key in seen:
                continue
            seen.add(key)
            row = frame.loc[index] if index in frame.index else None
            failing.append({
                "provider_id": None if row is None else row["provider_id"],
                "model_id": None if row is None else row["model_id"],
                "rule": str(case.check),
                "column": None if row_level or pd.isna(case.column) else str(case.column),
                "value": None if row_level or pd.isna(case.failure_case) else str(case.failure_case),
            })
        table = pd.DataFrame(failing, columns=["provider_id", "model_id", "rule", "column", "value"])
        return ValidationOutcome(False, table, len(table))
    return ValidationOutcome(True, pd.DataFrame(), 0)
