"""Manual overrides: loading and validation, expiry, precedence in the merge, and stale detection."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from core_assets import settings
from core_assets.defs.enrichment.checks import model_specs_stale_overrides
from core_assets.enrichment.merge import merge_facts
from core_assets.enrichment.overrides import OverrideError, load_overrides, upstream_specs
from core_assets.enrichment.specs import build_specs

TODAY = dt.date(2026, 11, 26)

VALID = """
overrides:
  - provider: groq
    model: llama-3.3-70b-versatile
    fields:
      context_window: 131072
      input_cost_per_1k: 0.00059
      capabilities: {json_mode: true}
    reason: Groq's model page says 131,072 tokens.
    expires: 2026-12-31
  - provider: groq
    model: llama-3.3-70b-versatile
    fields:
      capabilities: {tools: true}
    reason: verified by a live tool call
  - provider: mistral
    model: mistral-large-2411
    fields:
      deprecation_date: 2026-03-31
      successor: mistral-large-2512
    reason: announced on the changelog
    expires: 2026-01-01
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_load_valid_file(tmp_path):
    """Entries load with typed values: exact Decimal prices, ISO dates, tri-state flags."""
    overrides = load_overrides(write(tmp_path, VALID))
    assert len(overrides) == 3
    first = overrides.entries[0]
    assert first.facts["input_cost_per_1k"] == Decimal("0.00059")
    assert first.expires == dt.date(2026, 12, 31) and first.reason.startswith("Groq")
    assert overrides.entries[2].facts["deprecation_date"] == "2026-03-31"


def test_facts_for_combines_a_models_active_entries(tmp_path):
    """Two entries for one model merge, capabilities flag by flag; other models get None."""
    overrides = load_overrides(write(tmp_path, VALID))
    facts = overrides.facts_for("groq", "llama-3.3-70b-versatile", TODAY)
    assert facts["context_window"] == 131072
    assert facts["capabilities"] == {"json_mode": True, "tools": True}
    assert overrides.facts_for("groq", "other", TODAY) is None


def test_expired_overrides_stop_applying(tmp_path):
    """An override applies up to and including its expiry day, and not after."""
    overrides = load_overrides(write(tmp_path, VALID))
    assert (
        overrides.facts_for("groq", "llama-3.3-70b-versatile", dt.date(2026, 12, 31))["context_window"]
        == 131072
    )
    after = overrides.facts_for("groq", "llama-3.3-70b-versatile", dt.date(2027, 1, 1))
    assert after == {"capabilities": {"tools": True}}
    assert overrides.facts_for("mistral", "mistral-large-2411", TODAY) is None
    assert [o.label for o in overrides.expired(TODAY)] == ["entry 3 (mistral/mistral-large-2411)"]


def test_override_wins_the_merge_until_it_expires(tmp_path):
    """Override beats the provider's own value, and the provider's value returns after expiry."""
    overrides = load_overrides(write(tmp_path, VALID))
    provider = {"context_window": 128000, "capabilities": {"json_mode": False}}

    def merged(day: dt.date):
        return merge_facts(
            [
                ("override", overrides.facts_for("groq", "llama-3.3-70b-versatile", day)),
                ("provider", provider),
            ]
        )

    specs, provenance = merged(TODAY)
    assert specs["context_window"] == 131072 and provenance["context_window"] == "override"
    assert specs["capabilities"]["json_mode"] is True
    specs, provenance = merged(dt.date(2027, 1, 1))
    assert specs["context_window"] == 128000 and provenance["context_window"] == "provider"
    assert specs["capabilities"]["json_mode"] is False


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            "provider: grok\n    model: m\n    fields: {context_window: 5}\n    reason: r",
            "entry 1 (grok/m): provider",
        ),
        ("provider: groq\n    model: m\n    fields: {context_window: 5}", "entry 1 (groq/m): reason"),
        (
            "provider: groq\n    model: m\n    fields: {context_window: -5}\n    reason: r",
            "fields.context_window",
        ),
        (
            "provider: groq\n    model: m\n    fields: {context_window: '5'}\n    reason: r",
            "fields.context_window",
        ),
        (
            "provider: groq\n    model: m\n    fields: {input_cost_per_1k: -1}\n    reason: r",
            "input_cost_per_1k: must be a price",
        ),
        ("provider: groq\n    model: m\n    fields: {cost: 1}\n    reason: r", "fields.cost"),
        ("provider: groq\n    model: m\n    fields: {}\n    reason: r", "`fields` sets nothing"),
        (
            "provider: groq\n    model: m\n    fields: {capabilities: {tools: maybe}}\n    reason: r",
            "capabilities.tools",
        ),
        ("provider: groq\n    model: m\n    fields: {free_kind: gratis}\n    reason: r", "fields.free_kind"),
        (
            "provider: groq\n    model: m\n    fields: {context_window: 5}\n    reason: r\n    expires: soon",
            "expires: must be a date",
        ),
    ],
)
def test_invalid_entries_name_the_file_and_entry(tmp_path, entry, message):
    """Every invalid entry fails loading with the file, the entry and the field in the message."""
    path = write(tmp_path, f"overrides:\n  - {entry}\n")
    with pytest.raises(OverrideError) as raised:
        load_overrides(path)
    assert str(path) in str(raised.value) and message in str(raised.value)


def test_a_field_overridden_twice_is_refused(tmp_path):
    """Two entries may not set the same field of the same model."""
    text = (
        VALID
        + "  - {provider: groq, model: llama-3.3-70b-versatile, fields: {context_window: 1}, reason: again}\n"
    )
    with pytest.raises(OverrideError, match=r"entry 4 .*`context_window` is already overridden by entry 1"):
        load_overrides(write(tmp_path, text))


@pytest.mark.parametrize(
    "text, message",
    [
        ("overrides: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("override: []\n", "unknown top-level"),
    ],
)
def test_malformed_file_is_refused(tmp_path, text, message):
    """A file that is not YAML or not the expected shape is an error naming the file."""
    with pytest.raises(OverrideError, match=message):
        load_overrides(write(tmp_path, text))


def test_missing_files(tmp_path, monkeypatch):
    """No default file means no overrides; a file named by CORE_OVERRIDES_FILE must exist."""
    monkeypatch.setattr(settings, "project_root", lambda: tmp_path)
    assert len(load_overrides()) == 0
    monkeypatch.setenv("CORE_OVERRIDES_FILE", str(tmp_path / "absent.yaml"))
    with pytest.raises(OverrideError, match="absent.yaml: overrides file not found"):
        load_overrides()


def test_checked_in_file_is_valid():
    """The overrides.yaml at the repository root loads."""
    assert load_overrides(Path(__file__).resolve().parent.parent / "overrides.yaml") is not None


def test_stale_overrides_equal_the_upstream_value(tmp_path):
    """An override whose value the sources below it now give is stale; a differing one is not."""
    overrides = load_overrides(write(tmp_path, VALID))
    upstream = {
        ("groq", "llama-3.3-70b-versatile"): upstream_specs(
            {
                "override": {"context_window": 131072},
                "provider": {"context_window": 131072},
                "litellm": {
                    "input_cost_per_1k": 0.00059,
                    "capabilities": {"json_mode": False, "tools": True},
                },
            }
        )
    }
    stale = {(s.override.entry, s.field) for s in overrides.stale(upstream, TODAY)}
    assert stale == {(1, "context_window"), (1, "input_cost_per_1k"), (2, "capabilities.tools")}


def test_upstream_specs_leave_the_override_out_and_keep_precedence():
    """upstream_specs merges provider before references before AI, without the override."""
    specs = upstream_specs(
        {
            "ai:heuristic": {"family": "guess", "context_window": 1},
            "models.dev": {"family": "catalog"},
            "override": {"family": "mine"},
            "provider": {"context_window": 8192},
        }
    )
    assert specs["family"] == "catalog" and specs["context_window"] == 8192


def test_stale_override_check_warns(tmp_path, monkeypatch):
    """The model_specs check names the stale override fields, as a warning."""
    monkeypatch.setenv("CORE_OVERRIDES_FILE", str(write(tmp_path, VALID)))
    model_specs = pd.DataFrame(
        [
            {
                "provider_id": "groq",
                "model_id": "llama-3.3-70b-versatile",
                "specs": {},
                "status": "active",
                "sources": {"override": {"context_window": 131072}, "provider": {"context_window": 131072}},
            }
        ]
    )
    result = model_specs_stale_overrides(model_specs)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["stale"].value == 1 and "context_window" in result.metadata["fields"].value

    model_specs.at[0, "sources"] = {"provider": {"context_window": 128000}}
    assert model_specs_stale_overrides(model_specs).passed


def test_stale_override_found_in_built_specs(tmp_path, monkeypatch):
    """model_specs keeps each source's facts only where an override applies, and the stale check finds
    an override the provider now states itself."""
    monkeypatch.setenv("CORE_OVERRIDES_FILE", str(write(tmp_path, VALID)))
    overrides = load_overrides()
    normalized = pd.DataFrame(
        [
            {"provider_id": "groq", "model_id": "llama-3.3-70b-versatile", "name": "Llama 3.3 70B",
             "provider_data": {}, "facts": {"context_window": 131072}, "snapshot_id": 1},
            {"provider_id": "groq", "model_id": "other", "name": "Other",
             "provider_data": {}, "facts": {"context_window": 8192}, "snapshot_id": 1},
        ]
    )
    frame = build_specs(normalized, overrides=lambda p, m: overrides.facts_for(p, m, TODAY))
    assert frame.loc[1, "sources"] is None
    assert frame.loc[0, "sources"]["override"]["context_window"] == 131072
    result = model_specs_stale_overrides(frame)
    assert not result.passed and "context_window" in result.metadata["fields"].value
