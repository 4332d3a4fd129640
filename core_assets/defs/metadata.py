"""Shared helpers that turn results into what the Dagster UI shows: check results and Markdown tables."""

from typing import Any

import dagster as dg
import pandas as pd

from core_assets.schemas import ValidationOutcome


def md_table(rows: list[dict[str, Any]] | pd.DataFrame, limit: int = 20, empty: str = "none") -> dg.MetadataValue:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if frame.empty:
        return dg.MetadataValue.md(empty)
    shown = frame.head(limit)
    # Blank cells rather than "nan" for unknown values; a `|` or a line break in a value (model ids come
    # from the providers) would break the table, so they are escaped.
    cells = shown.astype(object).where(shown.notna(), "").map(_cell)
    text = cells.to_markdown(index=False)
    if len(frame) > limit:
        text += f"\n\n… and {len(frame) - limit} more"
    return dg.MetadataValue.md(text)

def _cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return " ".join(value.splitlines()).replace("|", "\\|")


def warnings_md(warnings: list[str], limit: int = 20) -> dg.MetadataValue:
    """Warnings as a Markdown list (the first `limit`)."""
    shown = [f"- {w}" for w in warnings[:limit]]
    if len(warnings) > limit:
        shown.append(f"- … and {len(warnings) - limit} more")
    return dg.MetadataValue.md("\n".join(shown) or "none")


def validation_result(check_name: str, asset_key: dg.AssetKey, outcome: ValidationOutcome) -> dg.AssetCheckResult:
    """A pandera validation as a check result, with the failing rows as a Markdown table."""
    metadata: dict[str, Any] = {"num_failures": outcome.num_failures}
    if not outcome.passed:
        metadata["failing_rows"] = md_table(outcome.failures)
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=outcome.passed,
        metadata=metadata,
        description=None if outcome.passed else f"{outcome.num_failures} rule violation(s); see failing_rows",
    )
