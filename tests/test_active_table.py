"""The active table: validated switching, the switch log, fallback, the legacy value, and the Dagster job."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from core_assets.active_table import InvalidTableError, get_active_table, list_tables, set_active_table
from core_assets.db.engine import connect
from core_assets.db.tables import active_table_log
from core_assets.defs.active_table import active_table_changed
from core_assets.defs.active_table import set_active_table as set_active_table_job
from core_assets.defs.resources import RegistryDatabase
from core_assets.selector import ModelSelector
from tests.support.registry_rows import insert_rows, model_row

ROWS = [
    model_row("groq", "llama-3.1-8b-instant", cost="0.00005", context=131072, capabilities={"chat": True}),
    model_row("ollama", "llama3.2:latest", free_kind="local", context=131072, capabilities={"chat": True}),
]


@pytest.fixture
def engine(database_url):
    engine = connect(database_url)
    insert_rows(engine, ROWS)
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE VIEW local_models AS SELECT * FROM model_registry WHERE provider_id = 'ollama'")
        )
        conn.execute(sa.text("CREATE VIEW ids_only AS SELECT provider_id, model_id FROM model_registry"))
    return engine


def switches(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    active_table_log.c.from_table, active_table_log.c.to_table, active_table_log.c.actor
                )
            )
        ]


def test_default_is_model_registry(engine):
    """A fresh database reads model_registry."""
    assert get_active_table(engine) == "model_registry"


def test_switching_is_validated_and_logged(engine):
    """A valid view becomes active, the previous name is returned, and each real switch is logged once."""
    assert set_active_table(engine, "local_models", actor="alice") == "model_registry"
    assert get_active_table(engine) == "local_models"
    assert set_active_table(engine, "local_models", actor="alice") == "local_models"
    assert set_active_table(engine, "model_registry", actor="bob") == "local_models"
    assert switches(engine) == [
        ("model_registry", "local_models", "alice"),
        ("local_models", "model_registry", "bob"),
    ]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("nowhere", "no table or view named 'nowhere' exists"),
        ("unified_models", "no table or view named 'unified_models' exists"),
        ("ids_only", "lacks the registry's key column(s) name, is_free, cost_per_1k, specs, status"),
        ("orchestrator_config", "internal table"),
        ("x; DROP TABLE model_registry", "not a plain table name"),
        ('model_registry"; DROP TABLE model_registry; --', "not a plain table name"),
        ("Local_Models", "not a plain table name"),
        ("", "not a plain table name"),
    ],
)
def test_invalid_names_are_rejected_and_nothing_changes(engine, name, reason):
    """An invalid name raises InvalidTableError; the active table, the log and the registry stay as they were."""
    with pytest.raises(InvalidTableError, match="cannot use") as raised:
        set_active_table(engine, name)
    assert reason in str(raised.value)
    assert get_active_table(engine) == "model_registry"
    assert switches(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_registry")).scalar() == len(ROWS)


def test_broken_view_is_rejected(sqlite_url):
    """A view that no longer reads (its table was dropped) cannot become active."""
    engine = connect(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE scratch AS SELECT * FROM model_registry"))
        conn.execute(sa.text("CREATE VIEW fragile AS SELECT * FROM scratch"))
        conn.execute(sa.text("DROP TABLE scratch"))
    with pytest.raises(InvalidTableError, match="'fragile' cannot be read: no such table"):
        set_active_table(engine, "fragile")


def test_selector_falls_back_when_the_view_is_dropped_behind_its_back(engine):
    """Dropping the active view makes the selector answer from model_registry, saying so."""
    set_active_table(engine, "local_models")
    selector = ModelSelector(
        database_url=str(engine.url.render_as_string(hide_password=False)), ttl_seconds=0
    )
    first = selector.select(needs=["chat"])
    assert (first.table, first.fell_back, first.primary["model_id"]) == (
        "local_models",
        False,
        "llama3.2:latest",
    )
    with engine.begin() as conn:
        conn.execute(sa.text("DROP VIEW local_models"))
    second = selector.select(needs=["chat"])
    assert (second.table, second.fell_back) == ("model_registry", True)
    assert second.reason.startswith(
        "active table unusable: no table or view named 'local_models' exists; fell back to model_registry"
    )
    assert len([second.primary, *second.fallbacks]) == 2


def test_empty_active_view_falls_back(engine):
    """An active view that selects nothing is not used."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE VIEW no_models AS SELECT * FROM model_registry WHERE provider_id = 'mistral'")
        )
    set_active_table(engine, "no_models")
    selection = ModelSelector(database_url=engine.url.render_as_string(hide_password=False)).select()
    assert selection.fell_back and selection.table == "model_registry"
    assert "'no_models' is empty" in selection.reason


def test_legacy_unified_models_value_is_migrated(database_url):
    """A database from the seed design, pointing at the never-existing unified_models, reads model_registry."""
    legacy = sa.create_engine(database_url)
    with legacy.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orchestrator_config (id INTEGER PRIMARY KEY, active_table_name VARCHAR(128) NOT NULL, updated_at TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO orchestrator_config (id, active_table_name) VALUES (1, 'unified_models')")
        )
    legacy.dispose()
    assert get_active_table(connect(database_url)) == "model_registry"


def test_list_tables_shows_kinds_rows_activity_and_usage(engine):
    """Every selectable table is listed with its kind, row count, active marker and usage; broken ones show no count."""
    set_active_table(engine, "local_models")
    selector = ModelSelector(database_url=engine.url.render_as_string(hide_password=False))
    selector.select()
    selector.flush_usage()
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE my_registry_copy AS SELECT * FROM model_registry"))
        conn.execute(sa.text("CREATE TABLE unrelated (a INTEGER)"))
    listed = {row["name"]: row for row in list_tables(engine)}
    assert list(listed) == ["model_registry", "ids_only", "local_models", "my_registry_copy"]
    assert listed["model_registry"] | {"last_used_at": None} == {
        "name": "model_registry", "kind": "table", "rows": 2, "active": False, "reads": 0, "fallbacks": 0, "last_used_at": None,
    }  # fmt: skip
    assert (
        listed["local_models"]["kind"],
        listed["local_models"]["rows"],
        listed["local_models"]["active"],
    ) == ("view", 1, True)
    assert listed["local_models"]["reads"] == 1 and listed["local_models"]["last_used_at"] is not None
    assert listed["my_registry_copy"]["kind"] == "table"


def test_list_tables_shows_a_vanished_active_table(engine):
    """An active name whose table is gone is listed as missing, so the user sees why the selector falls back."""
    set_active_table(engine, "local_models")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP VIEW local_models"))
    listed = {row["name"]: row for row in list_tables(engine)}
    assert (
        listed["local_models"]["kind"],
        listed["local_models"]["rows"],
        listed["local_models"]["active"],
    ) == ("missing", None, True)


def test_dagster_job_switches_the_table(sqlite_url):
    """The set_active_table job switches with the same validation, and fails clearly on a bad name."""
    engine = connect(sqlite_url)
    insert_rows(engine, ROWS)
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE VIEW local_models AS SELECT * FROM model_registry WHERE provider_id = 'ollama'")
        )
    resources = {"registry_db": RegistryDatabase(url=sqlite_url)}

    def run(name: str) -> dg.ExecuteInProcessResult:
        config = {"ops": {"switch_active_table": {"config": {"table_name": name}}}}
        return set_active_table_job.execute_in_process(
            run_config=config, resources=resources, raise_on_error=False
        )

    assert run("local_models").success
    assert get_active_table(engine) == "local_models"
    assert switches(engine)[0][2].startswith("dagster run ")

    failed = run("nowhere")
    assert not failed.success
    assert (
        "no table or view named 'nowhere' exists"
        in failed.failure_data_for_node("switch_active_table").error.message
    )
    assert get_active_table(engine) == "local_models"


def test_sensor_requests_routing_when_the_table_is_switched(sqlite_url):
    """The sensor starts watching quietly, then asks for model_routing once per switch."""
    engine = connect(sqlite_url)
    insert_rows(engine, ROWS)
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE VIEW local_models AS SELECT * FROM model_registry WHERE provider_id = 'ollama'")
        )
    resources = {"registry_db": RegistryDatabase(url=sqlite_url)}

    def evaluate(cursor):
        with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
            return active_table_changed(context)

    first = evaluate(None)
    assert (first.run_requests, first.cursor) == ([], "model_registry")
    assert isinstance(evaluate("model_registry"), dg.SkipReason)
    set_active_table(engine, "local_models", actor="cli")
    switched = evaluate("model_registry")
    assert switched.cursor == "local_models" and len(switched.run_requests) == 1
