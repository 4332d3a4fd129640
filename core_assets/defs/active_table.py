"""The active table in Dagster: a job that switches it (the UI's counterpart of `core-registry use`), and
a sensor that rebuilds model_routing whenever it is switched, from anywhere."""

import dagster as dg
from pydantic import Field

from core_assets import active_table
from core_assets.defs.resources import RegistryDatabase


class ActiveTableConfig(dg.Config):
    table_name: str = Field(description="an existing table or view with the registry's key columns")


@dg.op(
    description="Make `table_name` the table the selector reads; fails, changing nothing, if it is not valid."
)
def switch_active_table(
    context: dg.OpExecutionContext, config: ActiveTableConfig, registry_db: RegistryDatabase
) -> None:
    try:
        previous = active_table.set_active_table(
            registry_db.engine(), config.table_name, actor=f"dagster run {context.run_id}"
        )
    except active_table.InvalidTableError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    context.log.info(f"active table: {config.table_name} (was {previous})")


@dg.job(
    description="Switch the table the orchestrator's selector reads. Launch it with the config "
    "`ops: {switch_active_table: {config: {table_name: ...}}}`."
)
def set_active_table():
    switch_active_table()


@dg.sensor(
    target=dg.AssetSelection.assets("model_routing"),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rebuilds model_routing when the active table is switched (by the set_active_table job or "
    "`core-registry use`). The cursor is the active table last seen.",
)
def active_table_changed(context: dg.SensorEvaluationContext, registry_db: RegistryDatabase):
    name = active_table.get_active_table(registry_db.engine())
    if context.cursor is None:
        return dg.SensorResult(skip_reason=f"watching the active table ({name})", cursor=name)
    if context.cursor == name:
        return dg.SkipReason(f"the active table is still {name}")
    return dg.SensorResult(run_requests=[dg.RunRequest(tags={"core/active_table": name})], cursor=name)
