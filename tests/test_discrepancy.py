"""The discrepancy report and the enrichment checks on model_specs (magnitude, jumps, gaps, coverage)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from core_assets.db.engine import connect
from core_assets.db.tables import model_registry
from core_assets.defs.enrichment.checks import (
    model_specs_context_window,
    model_specs_coverage,
    model_specs_price_jump,
    model_specs_price_magnitude,
)
from core_assets.defs.enrichment.discrepancies import model_discrepancies as discrepancies_asset
from core_assets.defs.resources import RegistryDatabase
from core_assets.enrichment.discrepancy import COLUMNS, find_discrepancies, model_discrepancies, report_frame
from core_assets.references.catalog import References


def normalized(rows: list[tuple[str, str, dict]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"provider_id": p, "model_id": m, "name": None, "provider_data": {}, "facts": f} for p, m, f in rows]
    )


def test_small_differences_are_within_tolerance():
    """128,000 vs 131,072 tokens (2.4%) is the same "128k", not a disagreement."""
    sources = {"provider": {"context_window": 131072}, "litellm": {"context_window": 128000}}
    assert model_discrepancies("groq", "m", sources) == []


def test_disagreements_list_every_sources_value():
    """A price that differs beyond 5% is reported with each source's value and the spread."""
    sources = {
        "provider": {"input_cost_per_1k": Decimal("0.0003")},
        "litellm": {"input_cost_per_1k": Decimal("0.0003"), "context_window": 1048576},
        "models.dev": {"input_cost_per_1k": Decimal("0.0006"), "context_window": 1000000},
    }
    (found,) = model_discrepancies("google", "gemini-x", sources)
    assert found.field == "input_cost_per_1k"
    assert found.values == {
        "provider": Decimal("0.0003"),
        "litellm": Decimal("0.0003"),
        "models.dev": Decimal("0.0006"),
    }
    assert found.spread == Decimal(1)


def test_zero_against_a_price_has_no_finite_spread():
    """Free in one source and priced in another is always a disagreement."""
    sources = {
        "provider": {"output_cost_per_1k": Decimal(0)},
        "models.dev": {"output_cost_per_1k": Decimal("0.001")},
    }
    (found,) = model_discrepancies("openrouter", "x", sources)
    assert found.spread is None


def test_a_single_source_is_no_disagreement():
    """A field only one source states cannot disagree."""
    assert model_discrepancies("groq", "m", {"provider": {"context_window": 1}, "litellm": {}}) == []


def test_report_over_normalized_models_uses_exact_lookup_and_aliases():
    """Each model is compared with the catalogs' entries for its id or its provider aliases."""
    models = normalized(
        [
            (
                "mistral",
                "mistral-large-2411",
                {"context_window": 131072, "aliases": ["mistral-large-latest"]},
            ),
            ("mistral", "mistral-large", {"context_window": 1}),
        ]
    )
    references = References(
        {
            "litellm": {("mistral", "mistral-large-latest"): {"context_window": 262144}},
            "models.dev": {("mistral", "mistral-large-latest"): {"context_window": 262144}},
        }
    )
    frame = report_frame(find_discrepancies(models, references))
    assert list(frame.columns) == COLUMNS
    assert frame.to_dict("records") == [
        {
            "provider_id": "mistral",
            "model_id": "mistral-large-2411",
            "field": "context_window",
            "provider": 131072,
            "litellm": 262144,
            "models.dev": 262144,
            "spread": 1.0,
        }
    ]


def test_discrepancy_asset_reports_a_markdown_table():
    """The asset's value is the report; its metadata holds the count per field and a Markdown table."""
    models = normalized([("groq", "llama-3.3-70b-versatile", {"input_cost_per_1k": Decimal("0.0009")})])
    litellm = pd.DataFrame(
        [("groq", "llama-3.3-70b-versatile", {"input_cost_per_1k": Decimal("0.00059")})],
        columns=["provider_id", "model_id", "facts"],
    )
    empty = pd.DataFrame(columns=["provider_id", "model_id", "facts"])
    result = discrepancies_asset(
        normalized_models=models, ref_litellm_models=litellm, ref_models_dev_models=empty
    )
    assert len(result.value) == 1
    assert result.metadata["by_field"].value == {"input_cost_per_1k": 1}
    assert "| groq" in result.metadata["report"].value


# --- checks on model_specs -------------------------------------------------------------------------------


def specs_frame(rows: list[tuple[str, str, dict, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"provider_id": p, "model_id": m, "specs": s, "status": status} for p, m, s, status in rows]
    )


def test_price_magnitude_check_flags_unit_slips():
    """$590 per 1k input tokens is a per-1M value in the wrong unit: a warning naming the model."""
    frame = specs_frame(
        [
            ("groq", "slip", {"input_cost_per_1k": Decimal("590")}, "active"),
            (
                "groq",
                "fine",
                {"input_cost_per_1k": Decimal("0.00059"), "output_cost_per_1k": 0.00079},
                "active",
            ),
        ]
    )
    result = model_specs_price_magnitude(frame)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["implausible"].value == 1 and "slip" in result.metadata["prices"].value


def _store_registry_row(engine, provider_id: str, model_id: str, cost: str, output: float) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(model_registry).values(
                provider_id=provider_id,
                model_id=model_id,
                is_free=False,
                cost_per_1k=Decimal(cost),
                specs={"output_cost_per_1k": output},
                status="active",
                first_seen_at=now,
                last_seen_at=now,
                updated_at=now,
                content_hash="0" * 64,
            )
        )


def test_price_jump_check_compares_with_the_last_sync(database_url):
    """A price more than 50% away from the registry's current one is a warning with old and new."""
    engine = connect(database_url)
    _store_registry_row(engine, "groq", "jumped", "0.001", 0.002)
    _store_registry_row(engine, "groq", "steady", "0.001", 0.002)
    frame = specs_frame(
        [
            (
                "groq",
                "jumped",
                {"input_cost_per_1k": Decimal("0.0025"), "output_cost_per_1k": Decimal("0.002")},
                "active",
            ),
            (
                "groq",
                "steady",
                {"input_cost_per_1k": Decimal("0.0012"), "output_cost_per_1k": Decimal("0.002")},
                "active",
            ),
            ("groq", "new-model", {"input_cost_per_1k": Decimal("9")}, "active"),
        ]
    )
    result = model_specs_price_jump(frame, RegistryDatabase(url=database_url))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["jumps"].value == 1
    table = result.metadata["changes"].value
    assert "jumped" in table and "+150%" in table and "steady" not in table


def test_price_jump_check_passes_on_a_first_sync(sqlite_url):
    """With an empty registry there is nothing to jump from."""
    frame = specs_frame([("groq", "m", {"input_cost_per_1k": Decimal("1")}, "active")])
    assert model_specs_price_jump(frame, RegistryDatabase(url=sqlite_url)).passed


def test_context_window_check_lists_active_chat_models_without_one():
    """Active chat models need a context window; embeddings and deprecated models are not judged."""
    frame = specs_frame(
        [
            ("groq", "gap", {"capabilities": {"chat": True}, "context_window": None}, "active"),
            ("groq", "ok", {"capabilities": {"chat": True}, "context_window": 8192}, "active"),
            ("groq", "embedder", {"capabilities": {"chat": False}}, "active"),
            ("groq", "retired", {"capabilities": {"chat": True}}, "deprecated"),
        ]
    )
    result = model_specs_context_window(frame)
    assert not result.passed and result.metadata["gaps"].value == 1
    assert "gap" in result.metadata["models"].value and "retired" not in result.metadata["models"].value


@pytest.mark.parametrize("statuses, expected_models", [(["active", "active"], 2), (["active", "missing"], 1)])
def test_coverage_check_reports_shares_of_active_models(statuses, expected_models):
    """Coverage metadata: share of active models with a price, a context window, each capability."""
    frame = specs_frame(
        [
            (
                "groq",
                "a",
                {
                    "input_cost_per_1k": Decimal("0.001"),
                    "context_window": 8192,
                    "capabilities": {"chat": True, "tools": None},
                },
                statuses[0],
            ),
            (
                "groq",
                "b",
                {"input_cost_per_1k": None, "context_window": 8192, "capabilities": {}},
                statuses[1],
            ),
        ]
    )
    result = model_specs_coverage(frame)
    assert result.passed
    assert result.metadata["models"].value == expected_models
    assert result.metadata["price"].value == pytest.approx(1 / expected_models)
    assert result.metadata["context_window"].value == 1.0
    assert result.metadata["capabilities.tools"].value == 0.0
