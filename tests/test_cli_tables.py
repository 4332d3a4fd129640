"""`core-registry tables`, `use` and `select`: output, exit codes, and one-line errors."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import sqlalchemy as sa

from core_assets.cli import main
from core_assets.db.engine import connect
from core_assets.defs.custom_tables import build_custom_table_defs
from core_assets.defs.resources import RegistryDatabase
from tests.support.registry_rows import insert_rows, model_row

REGISTRY = [
    model_row("ollama", "llama3.2:latest", free_kind="local", context=131072, capabilities={"chat": True, "tools": True}),
    model_row("groq", "llama-3.1-8b-instant", cost="0.00005", context=131072, capabilities={"chat": True, "tools": True}),
    model_row("mistral", "mistral-medium-2505", cost="0.0004", context=131072, aliases=["mistral-medium-latest"],
              capabilities={"chat": True, "tools": True, "vision": True}),
    model_row("openrouter", "openai/gpt-4o", cost="0.0025", context=128000, capabilities={"chat": True, "tools": None}),
]  # fmt: skip


@pytest.fixture
def url(sqlite_url, monkeypatch):
    monkeypatch.setenv("CORE_DATABASE_URL", sqlite_url)
    engine = connect(sqlite_url)
    insert_rows(engine, REGISTRY)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW paid AS SELECT * FROM model_registry WHERE NOT is_free"))
    return sqlite_url


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, text: str) -> None:
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("core-registry: error: ")
    assert text in err
    assert "Traceback" not in err


def test_tables_lists_registry_and_views_with_the_active_marker(url, capsys):
    """`tables` shows each table's kind and rows, with a star on the active one."""
    code, out, _ = run(capsys, "tables")
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["name", "kind", "rows", "reads", "fallbacks", "last", "used"]
    assert lines[1] == ["*", "model_registry", "table", "4", "0", "0", "-"]
    assert lines[2] == ["paid", "view", "3", "0", "0", "-"]


def test_use_switches_and_select_answers_from_the_view(url, capsys):
    """`use` makes a view active; `select` answers from it and `tables` shows the star and the read."""
    code, out, _ = run(capsys, "use", "paid")
    assert (code, out) == (0, "active table: paid (was model_registry)\n")
    code, out, _ = run(capsys, "select", "--needs", "tools", "--json")
    answer = json.loads(out)
    assert code == 0
    assert (answer["table"], answer["primary"]["model_id"], answer["fell_back"]) == (
        "paid",
        "llama-3.1-8b-instant",
        False,
    )
    _, out, _ = run(capsys, "tables", "--json")
    listed = {row["name"]: row for row in json.loads(out)}
    assert listed["paid"]["active"] and listed["paid"]["reads"] == 1


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("nowhere", "cannot use no table or view named 'nowhere' exists"),
        ("x; DROP TABLE model_registry", "is not a plain table name"),
        ("orchestrator_config", "internal table"),
    ],
)
def test_use_rejects_bad_names_with_one_line(url, capsys, name, text):
    """A bad name exits 2 with one line, and the active table stays model_registry."""
    code, _, err = run(capsys, "use", name)
    assert_one_line_error(code, err, text)
    _, out, _ = run(capsys, "tables", "--json")
    assert [row["name"] for row in json.loads(out) if row["active"]] == ["model_registry"]
    with connect(url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_registry")).scalar() == 4


def test_select_text_output(url, capsys):
    """`select` prints the primary, the fallbacks, the table and the reason."""
    code, out, _ = run(capsys, "select", "--needs", "tools", "--strategy", "largest-context")
    assert code == 0
    assert out.splitlines()[0].startswith("primary:   ollama/llama3.2:latest  free  ctx 131,072")
    assert "table:     model_registry" in out
    assert "reason:    largest context of 3 models in model_registry meeting needs tools" in out


def test_select_accepts_model_aliases_in_provider(url, capsys):
    """`--provider PROVIDER/ALIAS` narrows the choice to the model the alias names."""
    code, out, _ = run(capsys, "select", "--provider", "mistral/mistral-medium-latest", "--json")
    assert code == 0
    assert json.loads(out)["primary"]["model_id"] == "mistral-medium-2505"


def test_select_without_a_match_exits_1_with_the_reason(url, capsys):
    """No model satisfying the request is exit status 1 and names the constraint."""
    code, out, _ = run(capsys, "select", "--needs", "vision", "--free")
    assert code == 1
    assert "no model satisfies" in out and "free_only" in out


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["select", "--needs", "teleport"], "unknown capability 'teleport'"),
        (["select", "--provider", "acme"], "unknown provider 'acme'"),
    ],
)
def test_select_bad_input_is_one_line(url, capsys, argv, text):
    """A request the selector cannot understand exits 2 with one line."""
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, text)


def test_acceptance_drop_a_file_materialize_use_select(url, tmp_path, monkeypatch, capsys):
    """Issue 4's acceptance: add sql/cheap_tools.sql, materialize it, `use` it, and `select` answers from it."""
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "cheap_tools.sql").write_text(
        "-- Models that call tools for at most $0.001 per 1k input tokens.\n"
        "SELECT * FROM model_registry\n"
        "WHERE CAST(specs -> 'capabilities' ->> 'tools' AS BOOLEAN) AND cost_per_1k <= 0.001\n"
    )
    monkeypatch.setenv("CORE_SQL_DIR", str(sql_dir))
    defs = build_custom_table_defs()
    assert dg.materialize(
        [dg.AssetSpec("model_registry"), *defs.assets, *defs.asset_checks],
        resources={"registry_db": RegistryDatabase(url=url)},
    ).success
    assert run(capsys, "use", "cheap_tools")[0] == 0
    code, out, _ = run(capsys, "select", "--needs", "tools", "--json")
    answer = json.loads(out)
    assert (code, answer["table"], answer["candidates"]) == (0, "cheap_tools", 2)
    assert answer["primary"]["model_id"] == "llama-3.1-8b-instant"
