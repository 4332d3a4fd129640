"""The main job: a full registry sync, from the provider APIs to the custom tables and routing."""

import dagster as dg

SYNC_JOB_NAME = "model_registry_sync"

model_registry_sync = dg.define_asset_job(
    SYNC_JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Fetch every enabled provider, merge with references and inferences, write model_registry, "
    "refresh custom tables and routing.",
)
