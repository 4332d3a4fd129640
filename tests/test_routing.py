"""model_routing: task profiles from routing.yaml become ranked candidates in a table."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from core_assets import routing, settings
from core_assets.active_table import set_active_table
from core_assets.db.engine import connect
from core_assets.db.tables import model_routing as routing_table
from core_assets.defs.resources import RegistryDatabase
from core_assets.defs.routing import EVERY_PROFILE_CHECK, model_routing
from tests.support.registry_rows import insert_rows, model_row

REGISTRY = [
    model_row("ollama", "llama3.2:latest", free_kind="local", context=131072, capabilities={"chat": True, "tools": True}),
    model_row("groq", "llama-3.1-8b-instant", cost="0.00005", context=131072, capabilities={"chat": True, "tools": True}),
    model_row("google", "gemini-2.5-pro", cost="0.00125", context=1048576,
              capabilities={"chat": True, "tools": True, "vision": True}),
    model_row("mistral", "mistral-embed", cost="0.0001", context=8192, capabilities={"chat": False, "embeddings": True}),
]  # fmt: skip

PROFILES = """
profiles:
  tools:
    needs: [tools]
    strategy: cheapest
    top_n: 2
  long-context:
    min_context: 500000
    strategy: largest_context
  embeddings:
    needs: [embeddings]
  impossible:
    min_context: 99000000
"""


@pytest.fixture
def routing_file(tmp_path, monkeypatch):
    path = tmp_path / "routing.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("CORE_ROUTING_FILE", str(path))
    return path


def routing_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        query = sa.select(routing_table.c.profile, routing_table.c.rank, routing_table.c.provider_id,
                          routing_table.c.model_id, routing_table.c.table_used)  # fmt: skip
        return sorted(tuple(r) for r in conn.execute(query))


def materialize(url: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [dg.AssetSpec("model_registry"), model_routing],
        resources={"registry_db": RegistryDatabase(url=url)},
        raise_on_error=False,
    )


def test_shipped_routing_file_has_the_task_profiles():
    """The checked-in routing.yaml defines the six task profiles and validates."""
    profiles = routing.load_profiles(settings.project_root() / "routing.yaml")
    assert [p.name for p in profiles] == ["chat", "code", "vision", "long-context", "embeddings", "cheap"]
    assert all(1 <= p.top_n <= routing.MAX_TOP_N for p in profiles)


def test_model_routing_writes_ranked_candidates(database_url, routing_file):
    """Each profile gets its top_n candidates in the selector's order; a profile without any warns."""
    engine = connect(database_url)
    insert_rows(engine, REGISTRY)
    result = materialize(database_url)
    assert result.success
    assert routing_rows(engine) == [
        ("embeddings", 1, "mistral", "mistral-embed", "model_registry"),
        ("long-context", 1, "google", "gemini-2.5-pro", "model_registry"),
        ("tools", 1, "ollama", "llama3.2:latest", "model_registry"),
        ("tools", 2, "groq", "llama-3.1-8b-instant", "model_registry"),
    ]
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == EVERY_PROFILE_CHECK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["profiles_without_candidates"].value == "impossible"
    metadata = result.asset_materializations_for_node("model_routing")[0].metadata
    assert metadata["dagster/row_count"].value == 4
    assert "| tools | 2 | groq/llama-3.1-8b-instant | 0.00005 | 131,072 |" in metadata["candidates"].value


def test_model_routing_replaces_the_previous_routing(sqlite_url, routing_file):
    """A rerun replaces every row: profiles removed from the file disappear."""
    engine = connect(sqlite_url)
    insert_rows(engine, REGISTRY)
    assert materialize(sqlite_url).success
    routing_file.write_text("profiles:\n  embeddings:\n    needs: [embeddings]\n")
    assert materialize(sqlite_url).success
    assert routing_rows(engine) == [("embeddings", 1, "mistral", "mistral-embed", "model_registry")]


def test_model_routing_reads_the_active_table(sqlite_url, routing_file):
    """Routing ranks the active table's models and records which table it used."""
    engine = connect(sqlite_url)
    insert_rows(engine, REGISTRY)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW paid AS SELECT * FROM model_registry WHERE NOT is_free"))
    set_active_table(engine, "paid")
    assert materialize(sqlite_url).success
    assert [r for r in routing_rows(engine) if r[0] == "tools"] == [
        ("tools", 1, "groq", "llama-3.1-8b-instant", "paid"),
        ("tools", 2, "google", "gemini-2.5-pro", "paid"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profiles:\n  chat:\n    colour: blue\n", "routing.yaml, profile 'chat': unknown setting(s) colour"),
        (
            "profiles:\n  chat:\n    strategy: fastest\n",
            "strategy must be one of cheapest, largest_context, balanced",
        ),
        ("profiles:\n  chat:\n    top_n: 0\n", "top_n must be a whole number from 1 to 50"),
        ("profiles:\n  chat:\n    min_context: -5\n", "min_context must be a non-negative whole number"),
        ("profiles:\n  chat:\n    providers: [acme]\n", "unknown provider(s) acme"),
        ("profiles:\n  Chat Bot:\n    needs: [chat]\n", "a profile name is lower-case"),
        ("profiles: []\n", "expected a mapping `profiles:`"),
        ("profiles: [\n", "not valid YAML"),
    ],
)
def test_bad_routing_files_are_refused(routing_file, text, message):
    """A routing file with a mistake is refused with the profile and the problem."""
    routing_file.write_text(text)
    with pytest.raises(routing.RoutingConfigError) as raised:
        routing.load_profiles()
    assert message in str(raised.value)


def test_unknown_capability_fails_the_asset_clearly(sqlite_url, routing_file):
    """A profile needing a capability the registry does not know fails the materialization with the reason."""
    insert_rows(connect(sqlite_url), REGISTRY)
    routing_file.write_text("profiles:\n  magic:\n    needs: [telepathy]\n")
    result = materialize(sqlite_url)
    assert not result.success
    error = result.failure_data_for_node("model_routing").error.message
    assert "routing.yaml, profile 'magic': unknown capability 'telepathy'" in error
