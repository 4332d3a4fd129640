"""Issue 7, item 5 — injection: names and SQL built to escape are refused before anything runs, on every
way in (the API, `core-registry use`, the Dagster job, a tampered configuration row, `sql/` files through
the real sync); what does run is the SQL that was checked; provider data full of SQL and control
characters is stored verbatim (or, for display text, made harmless) and breaks nothing.

test_active_table.py and test_custom_tables.py hold the reasons given for single refusals; here each
attack goes through the paths a user or an attacker would take, and the database is checked afterwards.
"""

from __future__ import annotations

import time

import dagster as dg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_assets.active_table import InvalidTableError, get_active_table, list_tables, set_active_table
from core_assets.cli import main as cli
from core_assets.custom_tables import CustomTableError, create_view, load_file, relations
from core_assets.db.engine import connect
from core_assets.db.snapshots import snapshots_in_force
from core_assets.db.tables import orchestrator_config
from core_assets.defs.active_table import set_active_table as set_active_table_job
from core_assets.defs.resources import RegistryDatabase
from core_assets.selector import ModelSelector
from tests.support.registry_rows import insert_rows, model_row
from tests.support.sync import check_evaluations, materialized, registry_rows, run_sync

ROWS = [
    model_row("groq", "llama-3.1-8b-instant", cost="0.00005", context=131072, capabilities={"chat": True}),
    model_row("ollama", "llama3.2:latest", free_kind="local", context=131072, capabilities={"chat": True}),
]
HOSTILE_TABLE_NAMES = [
    "x; DROP TABLE model_registry",
    'model_registry"; DROP TABLE model_registry; --',
    "model_registry -- comment",
    "model_registry/**/",
    '"model_registry"',
    "model_registry UNION SELECT * FROM provider_snapshots",
    "pg_sleep(10)",
    "sqlite_master",
    "pragma_database_list",
    "main.model_registry",
    "public.model_registry",
    "model_registry\x00",
    "model_registry\n",
    "ｍodel_registry",  # a full-width m
    "MODEL_REGISTRY",
    "orchestrator_config",
    "provider_snapshots",
]


@pytest.fixture(autouse=True)
def _offline_references(monkeypatch):
    monkeypatch.setenv("CORE_REFERENCES", "offline")


@pytest.fixture
def engine(database_url):
    engine = connect(database_url)
    insert_rows(engine, ROWS)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW local_models AS SELECT * FROM model_registry WHERE provider_id = 'ollama'"))
    return engine


def untouched(engine, relations_before: dict[str, str]) -> None:
    """Nothing ran: the same tables and views, every registry row, the default active table."""
    assert relations(engine) == relations_before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_registry")).scalar_one() == len(ROWS)
    assert get_active_table(engine) == "model_registry"


# -------------------------------------------------------------------------------------- active table


def test_hostile_active_table_names_are_refused_everywhere(engine, monkeypatch, capsys):
    """The API, `core-registry use` and the Dagster job refuse each name with one line; nothing runs."""
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("CORE_DATABASE_URL", url)
    before = relations(engine)
    job = dg.Definitions(
        jobs=[set_active_table_job], resources={"registry_db": RegistryDatabase(url=url)}
    ).resolve_job_def("set_active_table")
    for name in HOSTILE_TABLE_NAMES:
        started = time.monotonic()
        with pytest.raises(InvalidTableError, match="^cannot use "):
            set_active_table(engine, name)
        result = job.execute_in_process(
            run_config={"ops": {"switch_active_table": {"config": {"table_name": name}}}}, raise_on_error=False
        )
        assert not result.success
        capsys.readouterr()
        assert cli(["use", name]) == 2
        err = capsys.readouterr().err
        assert err.startswith("core-registry: error: cannot use ") and err.count("\n") == 1, name
        assert time.monotonic() - started < 5, f"{name!r} made something wait"
        untouched(engine, before)


@pytest.mark.parametrize(
    "name", ["x; DROP TABLE model_registry", "pg_sleep(10)", '"model_registry" --', "orchestrator_config"]
)
def test_a_tampered_active_table_value_is_never_executed(engine, name):
    """A hostile name written straight into orchestrator_config makes the selector fall back, running nothing."""
    before = relations(engine)
    with engine.begin() as conn:
        conn.execute(orchestrator_config.update().values(active_table_name=name))
    started = time.monotonic()
    selection = ModelSelector(database_url=engine.url.render_as_string(hide_password=False)).select()
    assert time.monotonic() - started < 5
    assert (selection.table, selection.fell_back) == ("model_registry", True)
    assert selection.primary is not None
    listed = {row["name"]: row for row in list_tables(engine)}
    assert listed[name]["active"]
    assert listed[name]["kind"] in ("missing", "table")  # an internal table may be named; it is only counted
    assert relations(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_registry")).scalar_one() == len(ROWS)


# ------------------------------------------------------------------------------ custom table files

HOSTILE_FILES = {
    "x; DROP TABLE model_registry.sql": "SELECT * FROM model_registry",
    "Quoted\"Name.sql": "SELECT * FROM model_registry",
    "stacked.sql": "SELECT * FROM model_registry; DROP TABLE model_registry",
    "commented.sql": "SELECT * FROM model_registry /* */; DROP TABLE model_registry --",
    "sleepy.sql": "SELECT *, pg_sleep(60) FROM model_registry",
    "sleepy_qualified.sql": "SELECT * FROM model_registry WHERE pg_catalog.pg_sleep(60) IS NULL",
    "attach.sql": "ATTACH DATABASE 'pwned.db' AS pwned",
    "peek.sql": "SELECT provider_id, model_id, name, is_free, cost_per_1k, specs, status FROM model_registry "
    "UNION SELECT provider, 'k', error, false, NULL, payload, outcome FROM provider_snapshots",
    "peek_quoted.sql": 'SELECT * FROM model_registry UNION ALL SELECT * FROM "orchestrator_config"',
    "schema_peek.sql": "SELECT m.* FROM model_registry m, pragma_table_info('orchestrator_config') p",
    "deleting_cte.sql": "WITH gone AS (DELETE FROM model_registry RETURNING *) SELECT * FROM gone",
    "inserting_cte.sql": "WITH x AS (INSERT INTO orchestrator_config (id, active_table_name) VALUES (2, 'x') "
    "RETURNING *) SELECT * FROM model_registry",
    "creating.sql": "CREATE TABLE pwned AS SELECT * FROM model_registry",
}
VALID_FILES = {
    # `%` once broke view creation on PostgreSQL (psycopg read it as a placeholder).
    "free_by_suffix.sql": "SELECT * FROM model_registry WHERE model_id LIKE '%:free'",
    "quoted_text.sql": "SELECT * FROM model_registry WHERE name <> 'x''); DROP TABLE model_registry; --'",
}


def test_hostile_sql_files_are_refused_by_the_sync(fake_providers, database_url, tmp_path, monkeypatch):
    """Through the real sync: every hostile file is a failed asset with its reason, the rest syncs, nothing else runs."""
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    for filename, text in {**HOSTILE_FILES, **VALID_FILES}.items():
        (sql_dir / filename).write_text(text)
    monkeypatch.setenv("CORE_SQL_DIR", str(sql_dir))
    started = time.monotonic()
    result = run_sync(database_url)
    assert time.monotonic() - started < 30
    assert not result.success  # the refused tables fail their assets
    failed = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE}
    done = materialized(result)
    assert {"model_registry", "free_by_suffix", "quoted_text"} <= done
    assert len(failed) == len(HOSTILE_FILES) and not failed & done
    engine = connect(database_url)
    names = relations(engine)
    assert "pwned" not in names
    assert not (tmp_path / "pwned.db").exists()
    assert get_active_table(engine) == "model_registry"
    rows = registry_rows(database_url)
    with engine.connect() as conn:
        suffix = {tuple(r) for r in conn.execute(sa.text("SELECT provider_id, model_id FROM free_by_suffix"))}
    assert suffix == {k for k in rows if k[1].endswith(":free")} and suffix
    assert check_evaluations(result)[("model_registry", "registry_schema")].passed


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        (r"SELECT * FROM model_registry WHERE name = E'\x27 || pg_sleep(10) --'", 0),
        (r"SELECT * FROM model_registry WHERE name = E'\'; DROP TABLE model_registry; --'", 0),
        ("SELECT * FROM model_registry WHERE name = $$'; DROP TABLE model_registry; --$$", 0),
        (r"SELECT * FROM model_registry WHERE name = U&'\0027; DROP TABLE model_registry; --'", 0),
        # A backslash does not escape in a standard string: this file really says `OR 1 = 1`.
        (r"SELECT * FROM model_registry WHERE name = 'a\' OR 1 = 1 --'", len(ROWS)),
    ],
    ids=["escape-string", "escaped-quote", "dollar-quoted", "unicode-escape", "backslash"],
)
def test_quoting_tricks_run_as_checked_or_are_refused(database_url, tmp_path, sql, rows):
    """What reaches the database is the checked query, translated faithfully, or a refusal: nothing else runs."""
    engine = connect(database_url)
    insert_rows(engine, ROWS)
    before = relations(engine)
    path = tmp_path / "sql" / "tricky.sql"
    path.parent.mkdir()
    path.write_text(sql)
    table = load_file(path)
    started = time.monotonic()
    try:
        view, refusal = create_view(engine, table), None
    except CustomTableError as exc:
        view, refusal = None, exc.reason
    assert time.monotonic() - started < 5
    if refusal:
        assert engine.dialect.name == "sqlite" and "cannot be written for sqlite faithfully" in refusal
        assert relations(engine) == before
        return
    assert view.row_count == rows  # PostgreSQL's reading of the file, on either database
    assert set(relations(engine)) == set(before) | {"tricky"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_registry")).scalar_one() == len(ROWS)


# The literal alphabet: quotes, backslashes, dollar quotes, comment openers, placeholders of every driver.
LITERAL_TEXT = st.lists(
    st.sampled_from(list("ab'\"\\$-/*;\n%:?{}()eEuU&x0") + ["$$", "--", "/*", "*/", "\\'", "E'", "%s", ":name"]),
    max_size=14,
).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=LITERAL_TEXT)
def test_string_literals_survive_translation(database_url, tmp_path_factory, text):
    """Any text in a SQL string literal reads back from the created view exactly (PostgreSQL and SQLite)."""
    engine = connect(database_url)
    with engine.connect() as conn:
        empty = not conn.execute(sa.text("SELECT count(*) FROM model_registry")).scalar_one()
    if empty:
        insert_rows(engine, ROWS[:1])
    path = tmp_path_factory.mktemp("sql") / "literal.sql"
    path.write_text(f"SELECT {sql_literal(text)} AS v, * FROM model_registry")
    create_view(engine, load_file(path))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT v FROM literal LIMIT 1")).scalar_one() == text


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ------------------------------------------------------------------------------------ provider data

EVIL_ID = "x'); DROP TABLE model_registry; --"
EVIL_ITEM = {
    "id": EVIL_ID,
    "object": "model",
    "owned_by": "Robert'); DROP TABLE students;--",
    "context_window": 8192,
    "name": "evil\x00name\x1b[31m red",
    "description": "NUL:\x00 ESC:\x1b[2J quote:' dq:\" bs:\\ pct:% colon::x pua:\ue000\ue0000 emoji:💥 $$ /* --",
    "\x00key": ["\x00", "\ue000", {"nested\x00": "\x7f\x9f"}],
}


def test_provider_data_with_sql_and_control_characters_is_stored_verbatim(fake_providers, database_url):
    """Hostile text reaches the registry unchanged (display names made printable); everything keeps working."""
    fake_providers.items("groq").extend([
        EVIL_ITEM,
        {"id": "nul\x00in-id", "object": "model"},  # not an id anyone can call: dropped and counted
        {"id": "cut-emoji", "object": "model", "description": "truncated \ud83d"},  # ill-formed UTF-16
    ])
    result = run_sync(database_url)
    assert result.success
    rows = registry_rows(database_url, "groq")
    evil = rows[("groq", EVIL_ID)]
    assert evil["provider_data"] == EVIL_ITEM
    assert evil["name"] == "evil name [31m red"
    assert rows[("groq", "cut-emoji")]["provider_data"]["description"] == "truncated \ufffd"
    assert not [k for k in rows if "\x00" in k[1]]
    check = check_evaluations(result)[("raw_groq_models", "fetch_succeeded")]
    assert check.metadata["skipped_items"].value == 1
    engine = connect(database_url)
    payload = snapshots_in_force(engine, ["groq"])["groq"].payload
    assert EVIL_ITEM in payload["pages"][0]["data"]
    assert len(registry_rows(database_url)) > 600
    selection = ModelSelector(database_url=database_url).select(providers=[f"groq/{EVIL_ID}"])
    assert selection.primary["model_id"] == EVIL_ID
