"""The full asset graph, materialized for real against the loopback fake providers, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from core_assets.db.engine import connect
from core_assets.db.tables import model_price_history, model_registry, provider_snapshots
from core_assets.definitions import defs as load_defs
from core_assets.defs.jobs import SYNC_JOB_NAME

GROQ_MODEL = "llama-3.3-70b-versatile"


@pytest.fixture(scope="module")
def sync_job() -> dg.JobDefinition:
    return load_defs().resolve_job_def(SYNC_JOB_NAME)


def run(job: dg.JobDefinition, database_url: str, *, demo: bool = False) -> dg.ExecuteInProcessResult:
    return job.execute_in_process(
        run_config={"resources": {"registry_db": {"config": {"url": database_url}},
                                  "sources": {"config": {"demo": demo}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def rows(database_url: str, provider: str | None = None) -> dict[tuple[str, str], dict]:
    query = sa.select(model_registry)
    if provider:
        query = query.where(model_registry.c.provider_id == provider)
    with connect(database_url).connect() as conn:
        return {(r.provider_id, r.model_id): dict(r._mapping) for r in conn.execute(query)}


def checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}


def registry_metadata(result: dg.ExecuteInProcessResult) -> dict:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == dg.AssetKey("model_registry"):
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    raise AssertionError("model_registry was not materialized")


def test_full_sync_builds_the_registry(sync_job, fake_providers, database_url):
    """Every provider's models land with the right counts, units, free flags and statuses."""
    result = run(sync_job, database_url)
    assert result.success
    table = rows(database_url)
    per_provider: dict[str, int] = {}
    for provider, _ in table:
        per_provider[provider] = per_provider.get(provider, 0) + 1
    expected = {
        "google": len(fake_providers.items("google")),
        "mistral": len({m["name"] for m in fake_providers.items("mistral")}),
        "openrouter": len(fake_providers.items("openrouter")),
        "groq": len(fake_providers.items("groq")),
        "ollama": len(fake_providers.items("ollama")),
    }
    assert per_provider == expected
    # OpenRouter publishes USD per token as strings: 0.0000003 per token is 0.0003 per 1k.
    priced = next(m for m in fake_providers.items("openrouter") if m["pricing"].get("prompt") == "0.0000003")
    assert table[("openrouter", priced["id"])]["cost_per_1k"] == Decimal("0.0003")
    free = next(m["id"] for m in fake_providers.items("openrouter") if m["id"].endswith(":free"))
    assert table[("openrouter", free)]["is_free"] is True
    assert table[("google", "gemini-2.5-flash")]["specs"]["context_window"] == 1048576
    local = next(iter(k for k in table if k[0] == "ollama"))
    assert table[local]["is_free"] is True and table[local]["specs"]["free_kind"] == "local"
    assert {r["status"] for r in table.values()} <= {"active", "deprecated"}
    for row in table.values():
        provenance = row["specs"]["provenance"]
        for field, value in row["specs"].items():
            if field == "provenance" or value is None or value == [] or value == {}:
                continue
            if isinstance(value, dict) and not any(v is not None for v in value.values()):
                continue
            assert field in provenance, (row["provider_id"], row["model_id"], field)
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_resync_of_unchanged_data_rewrites_nothing(sync_job, fake_providers, database_url):
    """A second sync against the same upstream writes no row and stores no duplicate payload."""
    assert run(sync_job, database_url).success
    before = {k: r["updated_at"] for k, r in rows(database_url).items()}
    result = run(sync_job, database_url)
    assert result.success
    assert registry_metadata(result)["rows_written"] == 0
    assert {k: r["updated_at"] for k, r in rows(database_url).items()} == before
    with connect(database_url).connect() as conn:
        outcomes = conn.execute(
            sa.select(provider_snapshots.c.outcome, sa.func.count()).group_by(provider_snapshots.c.outcome)
        ).all()
    assert dict(outcomes) == {"ok": 5, "unchanged": 5}


def test_removed_model_becomes_missing(sync_job, fake_providers, database_url):
    """A model gone from a successful fetch is kept with status missing."""
    assert run(sync_job, database_url).success
    fake_providers.remove_model("groq", GROQ_MODEL)
    result = run(sync_job, database_url)
    assert result.success
    row = rows(database_url, "groq")[("groq", GROQ_MODEL)]
    assert row["status"] == "missing"
    assert registry_metadata(result)["provider_summary"]["groq"]["missing"] == 1


def test_price_change_is_recorded_in_history(sync_job, fake_providers, database_url):
    """An upstream price change updates the row and appends a price period."""
    assert run(sync_job, database_url).success
    item = next(m for m in fake_providers.items("openrouter") if m["pricing"].get("prompt") == "0.0000003")
    item["pricing"]["prompt"] = "0.0000006"
    assert run(sync_job, database_url).success
    assert rows(database_url, "openrouter")[("openrouter", item["id"])]["cost_per_1k"] == Decimal("0.0006")
    with connect(database_url).connect() as conn:
        periods = conn.execute(
            sa.select(model_price_history.c.input_cost_per_1k, model_price_history.c.valid_to)
            .where(model_price_history.c.model_id == item["id"]).order_by(model_price_history.c.id)
        ).all()
    assert [p.input_cost_per_1k for p in periods] == [Decimal("0.0003"), Decimal("0.0006")]
    assert periods[0].valid_to is not None and periods[1].valid_to is None


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 500}, {"kind": "html"}, {"kind": "truncated"},
                                   {"kind": "wrong_shape"}, {"kind": "timeout"}])
def test_provider_fault_leaves_its_rows_unchanged(sync_job, fake_providers, sqlite_url, fault):
    """A failing provider keeps its rows exactly; the others still sync; the failure is visible."""
    assert run(sync_job, sqlite_url).success
    before = rows(sqlite_url, "mistral")
    fake_providers.fail("mistral", **fault)
    fake_providers.remove_model("groq", GROQ_MODEL)
    result = run(sync_job, sqlite_url)
    assert result.success
    assert rows(sqlite_url, "mistral") == before
    assert rows(sqlite_url, "groq")[("groq", GROQ_MODEL)]["status"] == "missing"
    check = checks(result)[("raw_mistral_models", "fetch_succeeded")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.startswith("failed: ") and "\n" not in check.description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw_mistral_models" not in materialized and "raw_groq_models" in materialized


def test_shrink_guard_blocks_and_marks_nothing_missing(sync_job, fake_providers, database_url):
    """A provider that suddenly lists a fraction of its models trips a blocking check naming it."""
    assert run(sync_job, database_url).success
    before = rows(database_url, "openrouter")
    fake_providers.set_items("openrouter", fake_providers.items("openrouter")[:10])
    result = run(sync_job, database_url)
    assert not result.success
    guard = checks(result)[("model_registry", "shrink_guard")]
    assert not guard.passed and "openrouter" in guard.description
    assert rows(database_url, "openrouter") == before


def test_provider_without_key_is_skipped(sync_job, fake_providers, sqlite_url, monkeypatch):
    """A keyed provider without its key is skipped (not failed) and the rest syncs."""
    monkeypatch.delenv("GROQ_API_KEY")
    result = run(sync_job, sqlite_url)
    assert result.success
    check = checks(result)[("raw_groq_models", "fetch_succeeded")]
    assert check.passed and "GROQ_API_KEY" in check.description
    assert not rows(sqlite_url, "groq") and rows(sqlite_url, "mistral")
    assert not [r for r in fake_providers.requests if r.provider == "groq"]


def test_demo_sync_needs_no_network_or_keys(sync_job, sqlite_url):
    """The bundled replay builds about 600 models from all five providers without any server."""
    result = run(sync_job, sqlite_url, demo=True)
    assert result.success
    table = rows(sqlite_url)
    assert len(table) > 600
    assert {p for p, _ in table} == {"google", "mistral", "openrouter", "groq", "ollama"}
    assert json.loads(json.dumps(registry_metadata(result)["provider_summary"]))["openrouter"]["new"] > 500
