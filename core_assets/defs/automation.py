"""When things run, and how stale is too stale.

- `model_registry_sync_schedule` runs the full sync job on `CORE_SYNC_CRON` (default every 6 hours,
  UTC), running by default.
- Custom tables and `model_routing` declare their own automation conditions next to their code
  (eager: after every registry update; a custom table also when its SQL file, its code version,
  changes). `registry_automation` is the sensor that evaluates them, running by default; without an
  explicit sensor Dagster adds one that starts stopped.
- `with_operating_policies` (applied in `core_assets.definitions`) puts the provider snapshots and the
  registry on a freshness clock and gives every asset its owners.
"""

from datetime import timedelta

import dagster as dg

from core_assets import settings
from core_assets.defs import jobs

SYNC_SCHEDULE_NAME = "model_registry_sync_schedule"
AUTOMATION_SENSOR_NAME = "registry_automation"

# With the default 6-hour schedule, a warning means two syncs in a row did not update the asset (for a
# snapshot: its provider's fetch failed twice); a failure means six did, a day and a half.
FRESHNESS_POLICY = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(hours=12), fail_window=timedelta(hours=36)
)
FRESHNESS_KEYS = frozenset(
    [
        *(dg.AssetKey(f"raw_{provider}_models") for provider in settings.PROVIDERS),
        dg.AssetKey("model_registry"),
    ]
)


def sync_schedule() -> dg.ScheduleDefinition:
    """The full sync on `CORE_SYNC_CRON`, read each time the definitions load."""
    cron = settings.sync_cron()
    try:
        return dg.ScheduleDefinition(
            name=SYNC_SCHEDULE_NAME,
            cron_schedule=cron,
            job=jobs.model_registry_sync,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Runs `{jobs.SYNC_JOB_NAME}` (every provider, the registry, custom tables, routing) "
            "on CORE_SYNC_CRON.",
        )
    except dg.DagsterInvalidDefinitionError:
        raise settings.ConfigError(
            f"CORE_SYNC_CRON={cron!r} is not a cron expression of five fields (e.g. {settings.DEFAULT_SYNC_CRON!r})"
        ) from None


registry_automation = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR_NAME,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the assets' automation conditions: custom tables and model_routing follow "
    "model_registry, and a changed sql/ file rebuilds its view.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(schedules=[sync_schedule()], sensors=[registry_automation])


def with_operating_policies(defs: dg.Definitions) -> dg.Definitions:
    """`defs` with the freshness policy on the provider snapshots and the registry, and `CORE_ASSET_OWNERS`
    (default team:llm-platform) on every asset that names no owner of its own."""
    owners = settings.asset_owners()

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if not spec.owners:
            spec = spec.replace_attributes(owners=owners)
        if spec.key in FRESHNESS_KEYS:
            spec = dg.apply_freshness_policy(spec, FRESHNESS_POLICY)
        return spec

    # As dagster-open-platform does: the public `map_asset_specs` is a preview API that warns on every
    # load and refuses source assets, which the permissive variant passes through unchanged.
    return defs.permissive_map_resolved_asset_specs(func=apply, selection=None)
