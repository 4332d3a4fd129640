"""Custom tables: SQL files and filter files become validated views, as plain Python and as Dagster assets."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from core_assets import custom_tables, settings
from core_assets.custom_tables import CustomTableError, create_view, discover, load_file
from core_assets.db.engine import connect
from core_assets.defs.custom_tables import KEY_COLUMNS_CHECK, NOT_EMPTY_CHECK, build_custom_table_defs
from core_assets.defs.resources import RegistryDatabase
from tests.support.registry_rows import insert_rows, model_row

SHIPPED = settings.project_root() / "sql"

ROWS = [
    model_row("openrouter", "meta-llama/llama-3.3-70b-instruct:free", free_kind="free_variant", cost="0",
              context=65536, capabilities={"chat": True, "tools": True}),
    model_row("openrouter", "google/gemma-3-27b-it:free", free_kind="free_variant", cost="0", context=96000,
              capabilities={"chat": True, "tools": None}),
    model_row("openrouter", "openai/gpt-4o", cost="0.0025", context=128000, capabilities={"chat": True, "tools": True}),
    model_row("ollama", "llama3.2:latest", free_kind="local", context=131072, capabilities={"chat": True, "tools": True}),
    model_row("groq", "llama-3.1-8b-instant", cost="0.00005", context=131072,
              capabilities={"chat": True, "tools": True}),
    model_row("openrouter", "mistralai/old:free", free_kind="free_variant", cost="0", context=32768,
              capabilities={"chat": True, "tools": True}, status="deprecated"),
]  # fmt: skip


@pytest.fixture
def sql_dir(tmp_path) -> Path:
    directory = tmp_path / "sql"
    directory.mkdir()
    return directory


def write(directory: Path, filename: str, text: str) -> Path:
    path = directory / filename
    path.write_text(text)
    return path


def refusal(directory: Path, filename: str, text: str) -> str:
    """The reason a single file is refused."""
    write(directory, filename, text)
    found = discover(directory)
    assert not found.tables
    assert len(found.errors) == 1
    return str(found.errors[0])


def materialize(url: str, directory: Path, **kwargs) -> dg.ExecuteInProcessResult:
    defs = build_custom_table_defs(directory)
    return dg.materialize(
        [dg.AssetSpec("model_registry"), *defs.assets, *defs.asset_checks],
        resources={"registry_db": RegistryDatabase(url=url)},
        raise_on_error=False,
        **kwargs,
    )


def view_rows(engine, name: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.text(f'SELECT provider_id, model_id FROM "{name}"')))


# ##### VALIDATION


def test_shipped_examples_are_valid_and_ordered():
    """The two shipped files validate, and the view on a view comes after the view it reads."""
    found = discover(SHIPPED)
    assert found.errors == []
    assert [t.name for t in found.tables] == ["my_free_models", "openrouterfree"]
    assert found.tables[1].reads == ("my_free_models",)
    assert found.tables[1].upstream_assets == ["my_free_models"]
    assert found.tables[0].upstream_assets == ["model_registry"]


REFUSED_SQL = [
    ("CREATE TABLE stolen AS SELECT * FROM model_registry", "expected a SELECT statement, found CREATE …"),
    ("DROP TABLE model_registry", "expected a SELECT statement, found DROP …"),
    ("DELETE FROM model_registry", "expected a SELECT statement, found DELETE …"),
    ("SELECT * FROM model_registry; DROP TABLE model_registry", "exactly one SELECT statement, found 2"),
    ("SELECT * FROM model_registry -- hidden?\n; DROP TABLE model_registry", "exactly one SELECT statement"),
    ("/* harmless */ DROP TABLE model_registry", "found DROP …"),
    ('SELECT * FROM "model_registry; DROP TABLE model_registry"', "not a plain table name"),
    ('SELECT * FROM "Model_Registry"', "not a plain table name"),
    ("SELECT provider_id, model_id FROM model_registry UNION SELECT active_table_name, 'x' FROM orchestrator_config",
     "orchestrator_config, an internal table"),
    ("SELECT model_id FROM model_registry UNION ALL SELECT version_num FROM alembic_version", "internal table"),
    ("SELECT name, sql FROM sqlite_master", "system catalog"),
    ("SELECT * FROM pg_catalog.pg_authid", "schema-qualified"),
    ("SELECT * FROM other_db.model_registry", "schema-qualified"),
    ("WITH gone AS (DELETE FROM model_registry RETURNING *) SELECT * FROM gone", "only reading is allowed"),
    ("WITH x AS (UPDATE model_registry SET name = 'x' RETURNING *) SELECT * FROM x", "only reading is allowed"),
    ("WITH orchestrator_config AS (SELECT 1 AS a) SELECT * FROM orchestrator_config", "shadows a table"),
    ("SELECT pg_sleep(10), * FROM model_registry", "pg_sleep() is not allowed"),
    ("SELECT * FROM model_registry, pg_sleep(10)", "pg_sleep() is not allowed"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file() is not allowed"),
    ("SELECT set_config('search_path', 'evil', false)", "set_config() is not allowed"),
    ("SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", "dblink() is not allowed"),
    ("SELECT lo_import('/etc/passwd')", "lo_import() is not allowed"),
    ("SELECT load_extension('evil.so')", "load_extension() is not allowed"),
    ("ATTACH DATABASE '/tmp/evil.db' AS evil", "expected a SELECT statement, found ATTACH"),
    ("PRAGMA writable_schema = ON", "expected a SELECT statement"),
    ("SELECT * INTO stolen FROM model_registry", "SELECT … INTO"),
    ("SELECT * FROM model_registry FOR UPDATE", "locking clause"),
    ("COPY model_registry TO '/tmp/out.csv'", "expected a SELECT statement"),
    ("SELEC * FRM model_registry", "expected a SELECT statement, found SELEC …"),
    ("SELECT * FROM model_registry WHERE (", "not a valid SELECT (PostgreSQL dialect): line 1"),
    ("-- only a comment\n", "holds no SQL statement"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "reason"), REFUSED_SQL)
def test_unsafe_sql_is_refused_with_the_file_and_reason(sql_dir, sql, reason):
    """Anything but one read-only SELECT of allowed tables is refused, naming the file and why."""
    message = refusal(sql_dir, "attempt.sql", sql)
    assert message.startswith("sql/attempt.sql: ")
    assert reason in message
    assert "\x1b[" not in message


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("Cheap-Tools.sql", "not a plain identifier"),
        ("1st.sql", "not a plain identifier"),
        ("x;drop.sql", "not a plain identifier"),
        ("my view.sql", "not a plain identifier"),
        (f"{'v' * 64}.sql", "longer than 63 characters"),
        ("model_registry.sql", "core table"),
        ("orchestrator_config.sql", "core table"),
        ("alembic_version.sql", "core table"),
        ("model_routing.sql", "core table"),
        ("model_specs.sql", "reserved for the pipeline"),
        ("raw_google_models.sql", "reserved for the pipeline"),
        ("pg_views.sql", "system catalog"),
        ("sqlite_master.sql", "system catalog"),
        ("select.sql", "reserved SQL key word"),
    ],
)
def test_bad_names_are_refused(sql_dir, filename, reason):
    """File names that are not plain identifiers, or that collide with core or reserved names, are refused."""
    message = refusal(sql_dir, filename, "SELECT * FROM model_registry")
    assert filename in message
    assert reason in message


def test_comments_are_dropped_and_harmless(sql_dir):
    """A comment hiding a statement is not executed: the database runs SQL regenerated without comments."""
    path = write(
        sql_dir, "quiet.sql", "SELECT * FROM model_registry /* ; DROP TABLE model_registry; */ -- ;DELETE"
    )
    table = load_file(path)
    assert "DROP" not in table.sql_for("sqlite") and "DROP" not in table.sql_for("postgresql")
    assert table.sql_for("postgresql") == "SELECT * FROM model_registry"


def test_unknown_tables_are_refused_when_the_database_is_known(sql_dir):
    """With the database's tables given, a file reading a table that exists nowhere is refused."""
    write(sql_dir, "ghost.sql", "SELECT * FROM model_registry JOIN nowhere USING (model_id)")
    write(sql_dir, "fine.sql", "SELECT * FROM model_registry")
    found = discover(sql_dir, existing={"model_registry"})
    assert [t.name for t in found.tables] == ["fine"]
    assert "sql/ghost.sql: reads nowhere, which does not exist" in str(found.errors[0])


def test_dependency_cycles_and_duplicates_are_refused(sql_dir):
    """Views that read each other, and a name defined twice, are refused; the rest still load."""
    write(sql_dir, "a.sql", "SELECT * FROM b")
    write(sql_dir, "b.sql", "SELECT * FROM a")
    write(sql_dir, "twice.sql", "SELECT * FROM model_registry")
    write(sql_dir, "twice.yaml", "free_only: true")
    write(sql_dir, "c.sql", "SELECT * FROM model_registry")
    found = discover(sql_dir)
    assert [t.name for t in found.tables] == ["c"]
    messages = sorted(str(e) for e in found.errors)
    assert "dependency cycle (a → b → a)" in messages[0]
    assert "dependency cycle (b → a → b)" in messages[1]
    assert "twice.sql and twice.yaml both define 'twice'" in messages[2]


def test_filter_file_compiles_to_a_select(sql_dir):
    """A filter file becomes the same kind of SELECT over model_registry, every value checked."""
    path = write(
        sql_dir,
        "cheap_tools.yaml",
        "description: Cheap models that call tools\nproviders: [groq, openrouter]\nmin_context: 100000\n"
        "capabilities: [tools]\nmax_cost: 0.001\n",
    )
    table = load_file(path)
    assert table.description == "Cheap models that call tools"
    assert table.reads == ("model_registry",)
    assert "provider_id IN ('groq', 'openrouter')" in table.sql
    assert "(is_free OR cost_per_1k <= 0.001)" in table.sql


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("providers: [acme]", "providers: unknown acme"),
        ("min_context: lots", "min_context must be a whole number"),
        ("max_cost: -1", "max_cost must be a non-negative price"),
        ("free_only: maybe", "free_only must be true or false"),
        ('capabilities: ["tools\') OR 1=1 --"]', "capabilities must be a list of plain names"),
        ("color: blue", "unknown filter key(s) color"),
        ("- a list", "must be a mapping"),
        ("providers: [groq", "not valid YAML"),
    ],
)
def test_bad_filter_files_are_refused(sql_dir, text, reason):
    """Filter values of the wrong type or unknown keys are refused before any SQL is written."""
    assert reason in refusal(sql_dir, "filtered.yaml", text)


# ##### VIEWS IN THE DATABASE


def test_views_materialize_in_order_on_both_databases(database_url, sql_dir):
    """The shipped views and a filter view become views with the right rows; the view on a view runs after it."""
    engine = connect(database_url)
    insert_rows(engine, ROWS)
    for path in SHIPPED.glob("*.sql"):
        shutil.copy(path, sql_dir)
    write(
        sql_dir, "local_tools.yaml", "providers: [ollama, groq]\ncapabilities: [tools]\nmin_context: 100000\n"
    )

    result = materialize(database_url, sql_dir)
    assert result.success
    order = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]
    assert order.index("my_free_models") < order.index("openrouterfree")
    assert all(e.passed for e in result.get_asset_check_evaluations())

    assert view_rows(engine, "my_free_models") == [
        ("ollama", "llama3.2:latest"),
        ("openrouter", "google/gemma-3-27b-it:free"),
        ("openrouter", "meta-llama/llama-3.3-70b-instruct:free"),
    ]
    # Unknown (null) tool support does not pass the filter.
    assert view_rows(engine, "openrouterfree") == [("openrouter", "meta-llama/llama-3.3-70b-instruct:free")]
    assert view_rows(engine, "local_tools") == [
        ("groq", "llama-3.1-8b-instant"),
        ("ollama", "llama3.2:latest"),
    ]

    metadata = result.asset_materializations_for_node("my_free_models")[0].metadata
    assert metadata["dagster/row_count"].value == 3
    assert "context_window" in [c.name for c in metadata["dagster/column_schema"].schema.columns]
    assert "WHERE is_free" in metadata["sql"].value


def test_rematerializing_with_changed_columns_keeps_dependent_views(database_url, sql_dir):
    """A view whose columns change is replaced even though another view reads it (PostgreSQL refuses a plain DROP)."""
    engine = connect(database_url)
    insert_rows(engine, ROWS)
    key_columns = "provider_id, model_id, name, is_free, cost_per_1k, specs, status"
    write(sql_dir, "base.sql", f"SELECT {key_columns} FROM model_registry")
    write(sql_dir, "top.sql", f"SELECT {key_columns} FROM base WHERE is_free")
    assert materialize(database_url, sql_dir).success
    write(
        sql_dir,
        "base.sql",
        f"SELECT status, {key_columns.replace(', status', '')} FROM model_registry WHERE provider_id = 'ollama'",
    )

    result = materialize(database_url, sql_dir, selection=["base"])
    assert result.success
    assert view_rows(engine, "top") == [("ollama", "llama3.2:latest")]


def test_refused_file_does_not_break_loading_and_fails_when_materialized(sqlite_url, sql_dir):
    """A refused file becomes a failing asset carrying the reason; valid files still build."""
    insert_rows(connect(sqlite_url), ROWS)
    write(sql_dir, "good.sql", "SELECT * FROM model_registry")
    write(sql_dir, "evil.sql", "SELECT * FROM model_registry; DROP TABLE model_registry")
    write(sql_dir, "Bad-Name.sql", "SELECT * FROM model_registry")

    defs = build_custom_table_defs(sql_dir)
    keys = {a.key.to_user_string(): a for a in defs.assets}
    assert set(keys) == {"good", "evil", "invalid_custom_table_bad_name"}
    assert "REFUSED" in keys["evil"].specs_by_key[dg.AssetKey("evil")].description

    result = materialize(sqlite_url, sql_dir)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert any(
        "sql/evil.sql: expected exactly one SELECT statement" in str(e.event_specific_data.error)
        for e in failures
    )
    assert [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()] == ["good"]
    with connect(sqlite_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_registry")).scalar() == len(ROWS)


def test_checks_flag_missing_key_columns_and_empty_views(sqlite_url, sql_dir):
    """A view without the key columns fails the blocking check; an empty view fails the warning check."""
    insert_rows(connect(sqlite_url), ROWS)
    write(sql_dir, "ids_only.sql", "SELECT provider_id, model_id FROM model_registry")
    write(sql_dir, "nothing.sql", "SELECT * FROM model_registry WHERE provider_id = 'mistral'")
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in materialize(sqlite_url, sql_dir).get_asset_check_evaluations()
    }
    missing = checks[("ids_only", KEY_COLUMNS_CHECK)]
    assert not missing.passed and missing.severity == dg.AssetCheckSeverity.ERROR
    assert "name, is_free, cost_per_1k, specs, status" in missing.metadata["missing_columns"].value
    empty = checks[("nothing", NOT_EMPTY_CHECK)]
    assert not empty.passed and empty.severity == dg.AssetCheckSeverity.WARN
    assert checks[("nothing", KEY_COLUMNS_CHECK)].passed


def test_create_view_refuses_what_only_the_database_can_tell(database_url, sql_dir):
    """Reading a table that does not exist, or a name already taken by a table, is refused with nothing created."""
    engine = connect(database_url)
    ghost = load_file(write(sql_dir, "ghost.sql", "SELECT * FROM nowhere"))
    with pytest.raises(
        CustomTableError, match=r"sql/ghost.sql: reads nowhere, which does not exist in the database"
    ):
        create_view(engine, ghost)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE mine (provider_id text)"))
    mine = load_file(write(sql_dir, "mine.sql", "SELECT * FROM model_registry"))
    with pytest.raises(CustomTableError, match="a table named 'mine' already exists"):
        create_view(engine, mine)
    assert "ghost" not in custom_tables.relations(engine)
    assert custom_tables.relations(engine)["mine"] == "table"


def test_database_errors_name_the_file(sqlite_url, sql_dir):
    """SQL that parses but that the database rejects fails with the file name and the database's message."""
    table = load_file(write(sql_dir, "oops.sql", "SELECT no_such_column FROM model_registry"))
    with pytest.raises(
        CustomTableError, match=r"sql/oops.sql: the database refused the view: no such column"
    ):
        create_view(connect(sqlite_url), table)
    assert "oops" not in custom_tables.relations(connect(sqlite_url))
