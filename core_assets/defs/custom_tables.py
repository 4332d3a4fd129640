"""Custom tables: one view asset per file in `sql/` (CORE_SQL_DIR), with two checks each.

A file that is refused still becomes an asset — named after the file when that name is usable — whose
description carries the reason and whose materialization fails with it. The rest of the code location
loads normally, and the refusal is visible exactly where the user looks for their table: in the
`custom_tables` group of the asset graph, and in the run that tried to build it.
"""

import logging
import re
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from core_assets import custom_tables
from core_assets.active_table import KEY_COLUMNS
from core_assets.custom_tables import CustomTable, CustomTableError, Discovery
from core_assets.defs.resources import RegistryDatabase

log = logging.getLogger(__name__)

GROUP = "custom_tables"
KEY_COLUMNS_CHECK = "has_registry_key_columns"
NOT_EMPTY_CHECK = "not_empty"
# Recreate a view when its SQL changes, and after each registry update so that its row count and
# checks stay current (a view itself never goes stale).
AUTOMATION = dg.AutomationCondition.eager() | dg.AutomationCondition.code_version_changed()


def _sql_block(sql: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"```sql\n{sql}\n```")


def _view_asset(table: CustomTable, discovery: Discovery) -> dg.AssetsDefinition:
    dependents = discovery.dependents(table.name)
    summary = table.description or f"Custom table from {custom_tables.display_path(table.path)}."

    @dg.asset(
        name=table.name,
        group_name=GROUP,
        kinds={"sql", "view"},
        deps=table.upstream_assets,
        code_version=table.code_version,
        description=f"{summary}\n\nView `{table.name}` (one row per model it selects):\n\n```sql\n{table.sql}\n```",
        metadata={"source_file": str(table.path), "sql": _sql_block(table.sql)},
        automation_condition=AUTOMATION,
    )
    def _view(context: dg.AssetExecutionContext, registry_db: RegistryDatabase) -> dg.MaterializeResult:
        try:
            view = custom_tables.create_view(registry_db.engine(), table, dependents)
        except CustomTableError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        context.log.info(f"view {view.name}: {view.row_count} rows")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": view.row_count,
                "dagster/table_name": view.name,
                "dagster/column_schema": dg.TableSchema(
                    columns=[
                        dg.TableColumn(name=name, type=type_ or "unknown") for name, type_ in view.columns
                    ]
                ),
                "sql": _sql_block(table.sql),
                "executed_sql": _sql_block(view.sql),
            }
        )

    return _view


def _view_checks(table: CustomTable) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset=table.name,
        name=KEY_COLUMNS_CHECK,
        blocking=True,
        description=f"The view exposes the registry's key columns ({', '.join(KEY_COLUMNS)}), so the "
        "selector can read it.",
    )
    def _key_columns(registry_db: RegistryDatabase) -> dg.AssetCheckResult:
        columns = [name for name, _ in custom_tables.view_columns(registry_db.engine(), table.name)]
        if not columns:
            return dg.AssetCheckResult(passed=False, description=f"view {table.name} does not exist")
        missing = [c for c in KEY_COLUMNS if c not in columns]
        return dg.AssetCheckResult(
            passed=not missing,
            description=f"missing key column(s): {', '.join(missing)}" if missing else None,
            metadata={"missing_columns": ", ".join(missing) or "none", "columns": ", ".join(columns)},
        )

    @dg.asset_check(
        asset=table.name, name=NOT_EMPTY_CHECK, description="The view selects at least one model."
    )
    def _not_empty(registry_db: RegistryDatabase) -> dg.AssetCheckResult:
        engine = registry_db.engine()
        quoted = engine.dialect.identifier_preparer.quote_identifier(table.name)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(f"SELECT count(*) FROM {quoted}")).scalar_one()
        except sa.exc.DBAPIError as exc:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"cannot count rows: {exc.orig}",
            )
        return dg.AssetCheckResult(
            passed=rows > 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=None if rows else "the view is empty: the selector would fall back to model_registry",
            metadata={"rows": rows},
        )

    return [_key_columns, _not_empty]


def _refused_asset_name(error: CustomTableError, taken: set[str]) -> str:
    stem = error.path.stem
    if custom_tables.name_problem(stem) is None and stem not in taken:
        return stem
    base = "invalid_custom_table_" + (re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_") or "file")
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}_{suffix}", suffix + 1
    return name


def _refused_asset(error: CustomTableError, name: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        group_name=GROUP,
        kinds={"sql", "view"},
        description=f"REFUSED — {error}. Fix the file and reload the code location.",
        metadata={"source_file": str(error.path), "refused": error.reason},
        tags={"core/refused": "true"},
    )
    def _refused() -> None:
        raise dg.Failure(description=str(error), allow_retries=False)

    return _refused


def build_custom_table_defs(directory: Path | None = None) -> dg.Definitions:
    """Assets and checks for every custom table file in `directory` (default: CORE_SQL_DIR or sql/)."""
    discovery = custom_tables.discover(directory)
    assets = [_view_asset(table, discovery) for table in discovery.tables]
    checks = [check for table in discovery.tables for check in _view_checks(table)]
    taken = {table.name for table in discovery.tables}
    for error in discovery.errors:
        log.warning("custom table refused: %s", error)
        name = _refused_asset_name(error, taken)
        taken.add(name)
        assets.append(_refused_asset(error, name))
    return dg.Definitions(assets=assets, asset_checks=checks)


@dg.definitions
def defs() -> dg.Definitions:
    return build_custom_table_defs()
