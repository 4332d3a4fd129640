"""model_routing: ranked candidate models per task profile of routing.yaml, as a table."""

from decimal import Decimal

import dagster as dg

from core_assets import custom_tables, routing
from core_assets.defs.resources import RegistryDatabase
from core_assets.selector import ModelSelector, Selection

EVERY_PROFILE_CHECK = "every_profile_has_a_model"


def _candidates_table(rows: list[dict], selections: dict[str, Selection]) -> str:
    lines = ["| profile | rank | model | input $/1k | context |", "|---|---|---|---|---|"]
    for row in rows:
        cost = "unknown" if row["cost_per_1k"] is None else format(Decimal(repr(row["cost_per_1k"])), "f")
        context = f"{row['context_window']:,}" if row["context_window"] else "unknown"
        lines.append(
            f"| {row['profile']} | {row['rank']} | {row['provider_id']}/{row['model_id']} | {cost} | {context} |"
        )
    for profile, selection in selections.items():
        if selection.primary is None:
            lines.append(f"| {profile} | – | {selection.reason} | | |")
    return "\n".join(lines)


def _upstream() -> list[str]:
    # Any custom table can be the active one, so routing follows them all as well as the registry.
    return ["model_registry", *(t.name for t in custom_tables.discover().tables)]


@dg.asset(
    group_name="routing",
    kinds={"python", "table"},
    deps=_upstream(),
    code_version=routing.file_version(),
    automation_condition=dg.AutomationCondition.eager() | dg.AutomationCondition.code_version_changed(),
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_PROFILE_CHECK,
            asset="model_routing",
            description="Every task profile of routing.yaml has at least one candidate model.",
        )
    ],
)
def model_routing(context: dg.AssetExecutionContext, registry_db: RegistryDatabase) -> dg.MaterializeResult:
    """One row per (task profile, rank): the models of the active table that meet the profile in
    routing.yaml, best first, as the selector ranks them. Rebuilt when the registry, a custom table or
    the active table changes."""
    try:
        profiles = routing.load_profiles()
        selector = ModelSelector(database_url=registry_db.url, ttl_seconds=60)
        rows, selections = routing.compute_routing(selector, profiles)
    except routing.RoutingConfigError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    routing.write_routing(registry_db.engine(), rows)
    selector.flush_usage()
    empty = [name for name, selection in selections.items() if selection.primary is None]
    tables = sorted({selection.table for selection in selections.values()})
    fell_back = next((s.reason for s in selections.values() if s.fell_back), None)
    if fell_back:
        context.log.warning(fell_back)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "profiles": len(profiles),
            "table_used": ", ".join(tables),
            "candidates": dg.MetadataValue.md(_candidates_table(rows, selections)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=EVERY_PROFILE_CHECK,
                passed=not empty,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"no candidate for: {', '.join(empty)}" if empty else None,
                metadata={"profiles_without_candidates": ", ".join(empty) or "none"},
            )
        ],
    )
