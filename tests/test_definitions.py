"""The code location as the UI and the daemon see it: assets, checks, schedule, sensors, automation."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import pytest

from core_assets import settings
from core_assets.definitions import defs as load_defs
from core_assets.defs.alerts import CHECK_WARNING_SENSOR, RUN_FAILURE_SENSOR
from core_assets.defs.automation import (
    AUTOMATION_SENSOR_NAME,
    FRESHNESS_POLICY,
    SYNC_SCHEDULE_NAME,
    sync_schedule,
)
from core_assets.defs.jobs import SYNC_JOB_NAME

PROJECT_SQL = Path(__file__).resolve().parent.parent / "sql"
RAW = [f"raw_{p}_models" for p in settings.PROVIDERS]
PIPELINE = [
    *RAW,
    "normalized_models",
    "ref_litellm_models",
    "ref_models_dev_models",
    "inferred_model_metadata",
    "model_specs",
    "model_registry",
    "model_routing",
]
FOLLOWERS = ["model_routing", *(p.stem for p in PROJECT_SQL.glob("*.sql"))]


@pytest.fixture
def defs() -> dg.Definitions:
    return load_defs()


def asset_graph(defs: dg.Definitions):
    return defs.resolve_asset_graph()


def node(defs: dg.Definitions, key: str):
    return asset_graph(defs).get(dg.AssetKey(key))


def materialize_all_runless(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    for key in asset_graph(defs).get_all_asset_keys():
        instance.report_runless_asset_event(dg.AssetMaterialization(key))


def evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, cursor=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # raised inside Dagster's own tester
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)


def requested(result) -> set[str]:
    return {r.key.to_user_string() for r in result.results if r.true_subset.size}


# ##### ASSETS AND CHECKS


def test_pipeline_assets_and_one_view_per_sql_file(defs):
    """The graph holds every pipeline asset, and one custom table asset per file of sql/."""
    keys = {key.to_user_string() for key in asset_graph(defs).get_all_asset_keys()}
    assert set(PIPELINE) <= keys
    views = {key for key in keys if node(defs, key).group_name == "custom_tables"}
    assert views == {p.stem for p in PROJECT_SQL.glob("*.sql")}


def test_every_asset_shows_description_group_kinds_and_owners(defs):
    """What the UI shows for each asset: a description, a group, kinds, and the default owners."""
    for key in asset_graph(defs).get_all_asset_keys():
        asset = node(defs, key.to_user_string())
        assert asset.description, key
        assert asset.group_name and asset.group_name != "default", key
        assert asset.kinds, key
        assert asset.owners == list(settings.DEFAULT_ASSET_OWNERS), key


def test_owners_come_from_the_environment(monkeypatch):
    """CORE_ASSET_OWNERS replaces the default owners; a malformed owner is a clear error."""
    monkeypatch.setenv("CORE_ASSET_OWNERS", "team:models, ops@example.com")
    assert node(load_defs(), "model_registry").owners == ["team:models", "ops@example.com"]
    monkeypatch.setenv("CORE_ASSET_OWNERS", "bob")
    with pytest.raises(settings.ConfigError, match="CORE_ASSET_OWNERS"):
        load_defs()


def test_freshness_policy_on_snapshots_and_registry_only(defs):
    """Provider snapshots and the registry warn after 12 h and fail after 36 h without an update."""
    assert FRESHNESS_POLICY.warn_window.to_timedelta().total_seconds() == 12 * 3600
    assert FRESHNESS_POLICY.fail_window.to_timedelta().total_seconds() == 36 * 3600
    for key in asset_graph(defs).get_all_asset_keys():
        expected = FRESHNESS_POLICY if key.to_user_string() in {*RAW, "model_registry"} else None
        assert node(defs, key.to_user_string()).freshness_policy == expected, key


def test_checks_guard_each_layer(defs):
    """Fetch checks warn, schema and shrink checks block, and every custom table is checked."""
    graph = asset_graph(defs)
    specs = {(k.asset_key.to_user_string(), k.name): graph.get_check_spec(k) for k in graph.asset_check_keys}
    for raw in RAW:
        assert specs[(raw, "fetch_succeeded")].blocking is False
    for blocking in [
        ("normalized_models", "normalized_schema"),
        ("model_specs", "specs_schema"),
        ("model_registry", "registry_schema"),
        ("model_registry", "shrink_guard"),
    ]:
        assert specs[blocking].blocking, blocking
    for view in FOLLOWERS[1:]:
        assert (view, "not_empty") in specs
    assert all(spec.description for spec in specs.values())


# ##### SCHEDULE AND SENSORS


def test_sync_schedule_runs_by_default_every_six_hours(defs):
    """The full sync is scheduled, running without a UI toggle, on the default cron in UTC."""
    schedule = defs.resolve_schedule_def(SYNC_SCHEDULE_NAME)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == settings.DEFAULT_SYNC_CRON == "0 */6 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == SYNC_JOB_NAME


def test_sync_schedule_follows_core_sync_cron(monkeypatch):
    """CORE_SYNC_CRON sets the schedule; a malformed value names the variable."""
    monkeypatch.setenv("CORE_SYNC_CRON", "15 3 * * *")
    assert load_defs().resolve_schedule_def(SYNC_SCHEDULE_NAME).cron_schedule == "15 3 * * *"
    monkeypatch.setenv("CORE_SYNC_CRON", "every six hours")
    with pytest.raises(settings.ConfigError, match="CORE_SYNC_CRON"):
        sync_schedule()


def test_sensors_run_by_default(defs):
    """The alert sensors and the one automation sensor start running; Dagster adds no stopped default."""
    sensors = {sensor.name: sensor for sensor in defs.get_repository_def().sensor_defs}
    for name in (RUN_FAILURE_SENSOR, CHECK_WARNING_SENSOR, AUTOMATION_SENSOR_NAME):
        assert sensors[name].default_status == dg.DefaultSensorStatus.RUNNING, name
    automation = [s for s in sensors.values() if isinstance(s, dg.AutomationConditionSensorDefinition)]
    assert [s.name for s in automation] == [AUTOMATION_SENSOR_NAME]
    assert "alert_webhook" in sensors[RUN_FAILURE_SENSOR].required_resource_keys
    assert "alert_webhook" in defs.resources


# ##### DECLARATIVE AUTOMATION


def test_custom_tables_and_routing_follow_the_registry(defs):
    """A new registry materialization requests every custom table and model_routing, once."""
    for key in FOLLOWERS:
        assert node(defs, key).automation_condition is not None, key
    instance = dg.DagsterInstance.ephemeral()
    materialize_all_runless(defs, instance)
    first = evaluate(defs, instance)
    assert requested(first) == set()

    instance.report_runless_asset_event(dg.AssetMaterialization("model_registry"))
    second = evaluate(defs, instance, first.cursor)
    assert requested(second) == set(FOLLOWERS)

    for key in FOLLOWERS:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    assert requested(evaluate(defs, instance, second.cursor)) == set()


def test_nothing_upstream_of_the_registry_runs_by_itself(defs):
    """Provider fetches and the registry run on the schedule only, never on automation."""
    for key in ["model_registry", *RAW, "normalized_models", "model_specs"]:
        assert node(defs, key).automation_condition is None, key


def test_changed_sql_file_rebuilds_its_view(tmp_path, monkeypatch):
    """Editing a custom table's SQL changes its code version, and the automation rebuilds the view."""
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    view = sql_dir / "cheap_models.sql"
    view.write_text("SELECT * FROM model_registry WHERE cost_per_1k < 0.001\n")
    monkeypatch.setenv("CORE_SQL_DIR", str(sql_dir))
    before = load_defs()
    instance = dg.DagsterInstance.ephemeral()
    materialize_all_runless(before, instance)
    first = evaluate(before, instance)
    assert "cheap_models" not in requested(first)

    view.write_text("SELECT * FROM model_registry WHERE cost_per_1k < 0.0005\n")
    after = load_defs()
    assert node(after, "cheap_models").code_version != node(before, "cheap_models").code_version
    assert "cheap_models" in requested(evaluate(after, instance, first.cursor))
