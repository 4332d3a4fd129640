"""The user-level promises of the issues, end to end on the demo data through the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
import sqlalchemy as sa

from core_assets import settings
from core_assets.cli import main
from core_assets.db.engine import connect
from core_assets.db.tables import model_registry
from core_assets.references.catalog import load_catalog


@pytest.fixture
def demo_registry(monkeypatch, tmp_path, capsys) -> str:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("CORE_DATABASE_URL", url)
    sql_dir = tmp_path / "sql"
    shutil.copytree(settings.project_root() / "sql", sql_dir)
    monkeypatch.setenv("CORE_SQL_DIR", str(sql_dir))
    assert main(["sync", "--demo"]) == 0
    capsys.readouterr()
    return url


def registry_rows(url: str) -> list[dict]:
    with connect(url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(model_registry))]


def test_demo_registry_is_complete_where_sources_allow(demo_registry):
    """Active chat models all have a context window; referenced prices are filled; every value has a source."""
    rows = registry_rows(demo_registry)
    assert len(rows) > 600
    active_chat = [r for r in rows if r["status"] == "active" and r["specs"]["capabilities"].get("chat")]
    assert active_chat and all(r["specs"]["context_window"] for r in active_chat)
    references = [load_catalog(name, demo=True).facts for name in ("litellm", "models.dev")]
    for row in rows:
        key = (row["provider_id"], row["model_id"])
        if row["provider_id"] in {"groq", "google", "mistral"}:
            priced = any((ref.get(key) or {}).get("input_cost_per_1k") for ref in references)
            if priced:
                assert row["cost_per_1k"] is not None, key
        specs = row["specs"]
        for field, value in specs.items():
            if field == "provenance" or value in (None, [], {}):
                continue
            if isinstance(value, dict) and all(v is None for v in value.values()):
                continue
            assert field in specs["provenance"], (key, field)


def test_custom_table_becomes_the_selectors_source(demo_registry, capsys):
    """Drop sql/cheap_tools.sql, sync, `use cheap_tools`: `select --needs tools --json` answers from it."""
    (settings.sql_dir() / "cheap_tools.sql").write_text(
        "SELECT * FROM model_registry\n"
        "WHERE status = 'active' AND cost_per_1k <= 0.001\n"
        "  AND CAST(specs -> 'capabilities' ->> 'tools' AS BOOLEAN)\n"
    )
    assert main(["sync", "--demo"]) == 0
    assert "✓ cheap_tools" in capsys.readouterr().out
    assert main(["use", "cheap_tools"]) == 0
    capsys.readouterr()
    assert main(["select", "--needs", "tools", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["table"] == "cheap_tools" and not answer["fell_back"]
    primary = answer["primary"]
    assert "tools" in primary["capabilities"]
    assert float(primary["cost_per_1k"]) <= 0.001
    assert main(["tables"]) == 0
    listing = capsys.readouterr().out
    active = next(line for line in listing.splitlines() if line.startswith("*"))
    assert "cheap_tools" in active
