"""AI-inferred metadata: heuristic rules on real ids, the LLM inferencer against a loopback fake endpoint,
the inference cache, and precedence (an inference never replaces a provider or reference fact)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from core_assets.db.engine import connect
from core_assets.db.tables import ai_inference_cache
from core_assets.defs.enrichment.inference import inferred_model_metadata
from core_assets.defs.references import ref_litellm_models, ref_models_dev_models
from core_assets.defs.resources import DataSources, RegistryDatabase
from core_assets.enrichment.base import INFERABLE_CAPABILITIES, INFERABLE_FIELDS, ModelInput, unknown_fields
from core_assets.enrichment.heuristic import HeuristicInferencer, infer_facts, parameter_size
from core_assets.enrichment.inference import infer_metadata, inferencer_from_env, merged_specs
from core_assets.enrichment.llm import PROMPT_VERSION, LlmInferencer
from core_assets.enrichment.merge import merge_facts
from core_assets.records import PRICE_FIELDS
from core_assets.references.catalog import References
from core_assets.settings import ConfigError
from tests.support.fake_llm import MODEL, FakeLLM, well_behaved

ALL_FIELDS = (*INFERABLE_FIELDS, *(f"capabilities.{cap}" for cap in INFERABLE_CAPABILITIES))
NO_REFERENCES = References({})


def ask(
    provider_id: str, model_id: str, name: str | None = None, hints: dict | None = None, description=None
):
    return infer_facts(ModelInput(provider_id, model_id, name, description, hints or {}, ALL_FIELDS))[0]


def models_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A normalized_models frame from partial rows (provider_data and facts default to empty)."""
    full = [
        {"name": None, "provider_data": {}, "facts": {}, "snapshot_id": None, "fetched_at": None, **row}
        for row in rows
    ]
    columns = ["provider_id", "model_id", "name", "provider_data", "facts", "snapshot_id", "fetched_at"]
    return pd.DataFrame(full, columns=columns)


def groq_models(count: int) -> pd.DataFrame:
    return models_frame([{"provider_id": "groq", "model_id": f"vendor/model-{i}"} for i in range(count)])


def ai_by_id(frame: pd.DataFrame) -> dict[str, Any]:
    return dict(zip(frame["model_id"], frame["ai_data"], strict=True))


# --- heuristic rules on real ids from the provider samples -----------------------------------------------


@pytest.mark.parametrize(
    "provider_id, model_id, hints, expected",
    [
        ("groq", "whisper-large-v3", {}, {"chat": False, "embeddings": False}),
        ("groq", "whisper-large-v3-turbo", {}, {"chat": False, "tools": False}),
        ("groq", "playai-tts", {}, {"chat": False, "embeddings": False}),
        ("groq", "canopylabs/orpheus-v1-english", {}, {"chat": False}),
        ("groq", "meta-llama/llama-prompt-guard-2-86m", {}, {"moderation": True, "chat": False}),
        ("groq", "meta-llama/llama-guard-4-12b", {}, {"moderation": True}),
        ("groq", "llama-3.3-70b-versatile", {}, {"chat": True, "embeddings": False}),
        (
            "google",
            "text-embedding-004",
            {"generation_methods": ["embedContent"]},
            {"embeddings": True, "chat": False},
        ),
        (
            "google",
            "gemini-2.5-flash",
            {"generation_methods": ["generateContent"], "thinking": True},
            {"chat": True, "vision": True, "reasoning": True},
        ),
        (
            "google",
            "gemini-2.5-flash-preview-tts",
            {"generation_methods": ["generateContent"]},
            {"chat": False},
        ),
        (
            "ollama",
            "nomic-embed-text:latest",
            {"family": "nomic-bert", "parameter_size": "137M"},
            {"embeddings": True, "chat": False},
        ),
        ("ollama", "llava:7b", {"families": ["llama", "clip"]}, {"vision": True}),
        (
            "ollama",
            "gpt-oss:120b-cloud",
            {"capabilities": ["completion", "tools", "thinking"]},
            {"chat": True, "tools": True, "reasoning": True, "vision": False, "embeddings": False},
        ),
        ("openrouter", "qwen/qwen3-vl-8b-thinking", {}, {"vision": True, "reasoning": True, "chat": True}),
        ("openrouter", "openai/text-embedding-3-small", {}, {"embeddings": True, "chat": False}),
        ("openrouter", "qwen/qwen3-coder-next", {}, {"code": True}),
        ("mistral", "codestral-2501", {}, {"code": True}),
    ],
)
def test_heuristic_capabilities_on_real_ids(provider_id, model_id, hints, expected):
    """Markers in real ids and provider hints give the expected capability flags."""
    capabilities = ask(provider_id, model_id, hints=hints).get("capabilities", {})
    assert {cap: capabilities.get(cap) for cap in expected} == expected


def test_heuristic_modalities():
    """Whisper hears, TTS speaks, embeddings embed, Gemini's embedding method embeds."""
    assert ask("groq", "whisper-large-v3")["modalities"] == {"input": ["audio"], "output": ["text"]}
    assert ask("groq", "playai-tts")["modalities"] == {"input": ["text"], "output": ["audio"]}
    gemini_embedding = ask("google", "embedding-001", hints={"generation_methods": ["embedContent"]})
    assert gemini_embedding["modalities"] == {"input": ["text"], "output": ["embeddings"]}
    assert ask("openrouter", "qwen/qwen3-vl-32b-instruct")["modalities"]["input"] == ["text", "image"]


@pytest.mark.parametrize(
    "text, size",
    [
        ("llama-3.3-70b-versatile", "70B"),
        ("mixtral-8x7b-32768", "8x7B"),
        ("meta-llama/llama-4-scout-17b-16e-instruct", "17B"),
        ("llama-prompt-guard-2-86m", "86M"),
        ("qwen2.5:14b-instruct", "14B"),
        ("kimi-k2:1t", "1T"),
        ("gemini-2.5-flash", None),
        ("gpt-4o", None),
    ],
)
def test_parameter_size_from_names(text, size):
    """Sizes like 70b, 8x7b and 86m are read from names; version numbers are not sizes."""
    assert parameter_size(text) == size


def test_heuristic_context_family_and_ollama_counts():
    """Groq's old ids end in their window; Ollama's raw parameter count becomes a label."""
    facts = ask("groq", "mixtral-8x7b-32768")
    assert (facts["context_window"], facts["parameter_size"], facts["family"]) == (32768, "8x7B", "mixtral")
    assert "context_window" not in ask("groq", "llama-3.3-70b-versatile")
    cloud = ask("ollama", "gpt-oss:120b-cloud", hints={"parameter_size": "116829156672"})
    assert (cloud["parameter_size"], cloud["family"]) == ("117B", "gpt-oss")


def test_heuristic_answers_only_what_is_asked():
    """Fields not asked for are never returned, and no price ever is."""
    item = ModelInput("groq", "mixtral-8x7b-32768", None, None, {}, ("parameter_size", "capabilities.chat"))
    facts, confidence = infer_facts(item)
    assert facts == {"parameter_size": "8x7B", "capabilities": {"chat": True}}
    assert 0 < confidence <= 1
    assert not set(PRICE_FIELDS) & set(ALL_FIELDS)


def test_unknown_fields_are_only_the_gaps():
    """A field that merged specs know is not asked for; capabilities flag by flag."""
    specs, _ = merge_facts([("provider", {"context_window": 8192, "capabilities": {"chat": True}})])
    wanted = unknown_fields(specs)
    assert "context_window" not in wanted and "capabilities.chat" not in wanted
    assert "max_output_tokens" in wanted and "capabilities.tools" in wanted


# --- inference: precedence and ai_data -------------------------------------------------------------------


def test_inference_fills_only_unknowns_and_never_overrides_a_provider_fact():
    """A provider's chat=false survives an instruct-named id; a reference's family is not re-inferred."""
    models = models_frame(
        [
            {
                "provider_id": "groq",
                "model_id": "acme/widget-7b-instruct",
                "facts": {"capabilities": {"chat": False}, "context_window": 4096},
            },
        ]
    )
    references = References({"models.dev": {("groq", "acme/widget-7b-instruct"): {"family": "widget"}}})
    run = infer_metadata(models, references, HeuristicInferencer())
    ai = run.frame["ai_data"][0]
    assert ai["parameter_size"] == "7B"
    assert "chat" not in ai.get("capabilities", {})
    assert "family" not in ai and "context_window" not in ai
    specs = merged_specs(models, references, run.frame)[0]
    assert specs["capabilities"]["chat"] is False
    assert specs["family"] == "widget" and specs["parameter_size"] == "7B"


def test_reference_fact_beats_inference_and_provider_beats_reference():
    """In the merge, provider > LiteLLM > models.dev > AI for every field."""
    models = models_frame(
        [
            {
                "provider_id": "groq",
                "model_id": "llama-3.3-70b-versatile",
                "facts": {"context_window": 131072},
            },
        ]
    )
    references = References(
        {
            "litellm": {
                ("groq", "llama-3.3-70b-versatile"): {
                    "context_window": 128000,
                    "input_cost_per_1k": Decimal("0.00059"),
                }
            },
            "models.dev": {
                ("groq", "llama-3.3-70b-versatile"): {
                    "input_cost_per_1k": Decimal("0.0006"),
                    "family": "llama",
                }
            },
        }
    )
    run = infer_metadata(models, references, HeuristicInferencer())
    specs = merged_specs(models, references, run.frame)[0]
    assert specs["context_window"] == 131072
    assert specs["input_cost_per_1k"] == Decimal("0.00059")
    assert specs["family"] == "llama"
    assert specs["parameter_size"] == "70B"


def test_ai_data_records_its_origin():
    """ai_data carries source, model, prompt_version, confidence and input_hash; None when nothing new."""
    models = models_frame(
        [
            {"provider_id": "groq", "model_id": "whisper-large-v3"},
            {
                "provider_id": "groq",
                "model_id": "known",
                "facts": {
                    "context_window": 1,
                    "max_output_tokens": 1,
                    "family": "x",
                    "parameter_size": "1B",
                    "modalities": {"input": ["text"], "output": ["text"]},
                    "capabilities": dict.fromkeys(INFERABLE_CAPABILITIES, True),
                },
            },
        ]
    )
    run = infer_metadata(models, NO_REFERENCES, HeuristicInferencer())
    whisper, known = run.frame["ai_data"]
    assert whisper["source"] == "heuristic" and whisper["model"] is None
    assert whisper["prompt_version"] == HeuristicInferencer.prompt_version
    assert 0 < whisper["confidence"] <= 1 and len(whisper["input_hash"]) == 64
    assert known is None
    assert run.asked == 1 and run.inferred == 1


def test_inferencer_selection(monkeypatch):
    """CORE_INFERENCER picks the inferencer; llm needs its endpoint; demo mode stays offline."""
    assert inferencer_from_env().name == "heuristic"
    monkeypatch.setenv("CORE_INFERENCER", "llm")
    with pytest.raises(ConfigError, match="CORE_LLM_BASE_URL"):
        inferencer_from_env()
    assert inferencer_from_env(demo=True).name == "heuristic"
    monkeypatch.setenv("CORE_INFERENCER", "oracle")
    with pytest.raises(ConfigError, match="CORE_INFERENCER"):
        inferencer_from_env()


# --- the llm inferencer ----------------------------------------------------------------------------------


def test_llm_batches_many_models_per_call(fake_llm: FakeLLM, monkeypatch):
    """8 models with batch size 3 take at most ceil(8 / 3) calls, each model asked once, tokens counted."""
    monkeypatch.setenv("CORE_LLM_BATCH_SIZE", "3")
    models = groq_models(8)
    inferencer = inferencer_from_env()
    run = infer_metadata(models, NO_REFERENCES, inferencer)
    assert fake_llm.calls <= math.ceil(8 / 3)
    assert all(len(fake_llm.items(body)) <= 3 for body in fake_llm.requests)
    assert sorted(fake_llm.requested_ids()) == sorted(f"groq/{m}" for m in models["model_id"])
    assert fake_llm.requests[0]["model"] == MODEL
    assert run.stats.calls == fake_llm.calls and run.stats.tokens == 150 * fake_llm.calls
    ai = run.frame["ai_data"][0]
    assert ai["source"] == "llm" and ai["model"] == MODEL and ai["prompt_version"] == PROMPT_VERSION
    assert ai["confidence"] == 0.8 and ai["family"] == "fakefam"
    assert not set(PRICE_FIELDS) & set(ai)


def test_llm_is_asked_only_for_unknown_fields(fake_llm: FakeLLM):
    """The request lists only the fields provider and references leave unknown."""
    models = models_frame([{"provider_id": "groq", "model_id": "x/y", "facts": {"context_window": 8192}}])
    references = References({"litellm": {("groq", "x/y"): {"family": "y"}}})
    infer_metadata(models, references, inferencer_from_env())
    fields = fake_llm.items(fake_llm.requests[0])[0]["fields"]
    assert "context_window" not in fields and "family" not in fields and "max_output_tokens" in fields


def test_second_run_makes_no_calls_and_a_changed_model_is_asked_alone(fake_llm: FakeLLM, database_url):
    """Unchanged models come from ai_inference_cache; only the model whose input changed is re-inferred."""
    engine = connect(database_url)
    models = groq_models(5)
    first = infer_metadata(models, NO_REFERENCES, inferencer_from_env(), engine)
    assert first.asked == 5 and fake_llm.calls == 1

    second = infer_metadata(models, NO_REFERENCES, inferencer_from_env(), engine)
    assert fake_llm.calls == 1
    assert second.cache_hits == 5 and second.asked == 0 and second.stats.calls == 0
    assert second.frame["ai_data"].tolist() == first.frame["ai_data"].tolist()

    models.at[2, "provider_data"] = {"owned_by": "Someone new"}
    third = infer_metadata(models, NO_REFERENCES, inferencer_from_env(), engine)
    assert fake_llm.calls == 2
    assert [item["id"] for item in fake_llm.items(fake_llm.requests[-1])] == ["groq/vendor/model-2"]
    assert third.cache_hits == 4 and third.asked == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ai_inference_cache)).scalar() == 6


def test_switching_llm_model_reinfers(fake_llm: FakeLLM, sqlite_url, monkeypatch):
    """Answers are cached per LLM model: another CORE_LLM_MODEL asks again."""
    engine = connect(sqlite_url)
    models = groq_models(2)
    infer_metadata(models, NO_REFERENCES, inferencer_from_env(), engine)
    monkeypatch.setenv("CORE_LLM_MODEL", "fake/other-model")
    run = infer_metadata(models, NO_REFERENCES, inferencer_from_env(), engine)
    assert fake_llm.calls == 2 and run.cache_hits == 0


def _scripted(per_model: dict[str, Any], extra: list[Any] = ()):
    """An answer function: well-behaved items, replaced per model id where `per_model` says so."""

    def answer(items: list[dict[str, Any]]) -> str:
        good = json.loads(well_behaved(items))["models"]
        answers = [per_model.get(item["id"], answer_) for item, answer_ in zip(items, good, strict=True)]
        return json.dumps({"models": [a for a in answers if a is not None] + list(extra)})

    return answer


def test_invalid_answers_are_rejected_per_model(fake_llm: FakeLLM, sqlite_url):
    """Wrong types, out-of-range values and prices are rejected for that model alone; it falls back."""
    engine = connect(sqlite_url)
    models = groq_models(6)
    fake_llm.answer = _scripted(
        {
            "groq/vendor/model-1": {"id": "groq/vendor/model-1", "confidence": 0.9, "context_window": "big"},
            "groq/vendor/model-2": {"id": "groq/vendor/model-2", "confidence": 0.9, "context_window": -5},
            "groq/vendor/model-3": {"id": "groq/vendor/model-3", "confidence": 7},
            "groq/vendor/model-4": {
                "id": "groq/vendor/model-4",
                "confidence": 0.9,
                "input_cost_per_1k": 0.001,
            },
            "groq/vendor/model-5": None,
        },
        extra=[{"id": "groq/ghost-model", "confidence": 0.9, "family": "ghost"}],
    )
    run = infer_metadata(models, NO_REFERENCES, inferencer_from_env(), engine)
    ai = ai_by_id(run.frame)
    assert ai["vendor/model-0"]["source"] == "llm"
    for bad in ("vendor/model-1", "vendor/model-2", "vendor/model-3", "vendor/model-4", "vendor/model-5"):
        assert ai[bad]["source"] == "heuristic" and ai[bad]["note"]
        assert not set(PRICE_FIELDS) & set(ai[bad])
    assert "price" in ai["vendor/model-4"]["note"]
    assert "no LLM answer" in ai["vendor/model-5"]["note"]
    assert "groq/ghost-model" not in {
        f"{p}/{m}" for p, m in zip(run.frame["provider_id"], run.frame["model_id"], strict=True)
    }
    assert run.stats.rejected == 5 and run.stats.fallbacks == 5
    assert any("not asked about" in warning for warning in run.stats.warnings)

    fake_llm.answer = well_behaved
    again = infer_metadata(models, NO_REFERENCES, inferencer_from_env(), engine)
    assert sorted(i["id"] for i in fake_llm.items(fake_llm.requests[-1])) == [
        f"groq/vendor/model-{i}" for i in range(1, 6)
    ]
    assert again.cache_hits == 1 and all(a["source"] == "llm" for a in again.frame["ai_data"])


@pytest.mark.parametrize(
    "content",
    [
        "Sure! Here is what I know about these models.",
        '{"models": [{"id": "groq/vendor/model-0"',
        '{"answers": []}',
        "[]",
    ],
    ids=["prose", "truncated", "wrong-key", "not-an-object"],
)
def test_unusable_reply_falls_back_for_the_batch(fake_llm: FakeLLM, content):
    """A reply that is not the JSON object asked for rejects the batch without failing the sync."""
    fake_llm.answer = lambda items: content
    run = infer_metadata(groq_models(3), NO_REFERENCES, inferencer_from_env())
    assert all(ai["source"] == "heuristic" and "rejected" in ai["note"] for ai in run.frame["ai_data"])
    assert run.stats.rejected == 3 and run.stats.calls == 1


def test_fenced_json_is_accepted(fake_llm: FakeLLM):
    """An answer wrapped in a ```json fence is still read."""
    fake_llm.answer = lambda items: "```json\n" + well_behaved(items) + "\n```"
    run = infer_metadata(groq_models(2), NO_REFERENCES, inferencer_from_env())
    assert all(ai["source"] == "llm" for ai in run.frame["ai_data"])


@pytest.mark.parametrize("status", [500, 401])
def test_failed_call_falls_back(fake_llm: FakeLLM, status):
    """An endpoint that errors (after bounded retries) leaves the heuristic's answers and a warning."""
    fake_llm.reply = lambda body: (status, {"error": {"message": "upstream exploded"}})
    inferencer = inferencer_from_env()
    run = infer_metadata(groq_models(2), NO_REFERENCES, inferencer)
    assert all(ai["source"] == "heuristic" and "LLM call failed" in ai["note"] for ai in run.frame["ai_data"])
    assert run.stats.failed_calls == 1 and run.stats.fallbacks == 2


def test_a_down_endpoint_is_not_asked_again_and_again(fake_llm: FakeLLM, monkeypatch):
    """After 3 failed calls in a row the remaining batches fall back without calling."""
    monkeypatch.setenv("CORE_LLM_BATCH_SIZE", "1")
    monkeypatch.setenv("CORE_LLM_CONCURRENCY", "1")
    fake_llm.reply = lambda body: (503, {"error": {"message": "overloaded"}})
    run = infer_metadata(groq_models(6), NO_REFERENCES, inferencer_from_env())
    assert run.stats.calls == 3 and run.stats.failed_calls == 3
    assert len({body["messages"][-1]["content"] for body in fake_llm.requests}) == 3
    notes = [ai["note"] for ai in run.frame["ai_data"]]
    assert sum("not asked" in note for note in notes) == 3
    assert any("3 model(s) not asked" in warning for warning in run.stats.warnings)


def test_api_key_is_sent_and_never_reported(fake_llm: FakeLLM):
    """The key goes in the Authorization header and never into warnings."""
    fake_llm.reply = lambda body: (500, {"error": {"message": f"echo {body['model']} llm-test-key-4d1f"}})
    inferencer = inferencer_from_env()
    run = infer_metadata(groq_models(1), NO_REFERENCES, inferencer)
    assert fake_llm.requests[0]["_authorization"] == "Bearer llm-test-key-4d1f"
    assert run.stats.warnings and not any("llm-test-key-4d1f" in w for w in run.stats.warnings)


def test_llm_inferencer_config_is_validated(monkeypatch, fake_llm):
    """Batch size and concurrency must be positive whole numbers."""
    monkeypatch.setenv("CORE_LLM_BATCH_SIZE", "0")
    with pytest.raises(ConfigError, match="CORE_LLM_BATCH_SIZE"):
        inferencer_from_env()
    monkeypatch.setenv("CORE_LLM_BATCH_SIZE", "50")
    assert isinstance(inferencer_from_env(), LlmInferencer)


# --- Dagster ---------------------------------------------------------------------------------------------


def test_inferred_model_metadata_asset_reports_calls_and_cache_hits(
    fake_llm: FakeLLM, sqlite_url, monkeypatch
):
    """A re-materialization of unchanged models reports cache hits and zero LLM calls."""
    monkeypatch.setenv("CORE_REFERENCES", "offline")
    frame = models_frame(
        [
            {
                "provider_id": "groq",
                "model_id": "llama-3.3-70b-versatile",
                "facts": {"context_window": 131072},
            },
            {"provider_id": "groq", "model_id": "whisper-large-v3", "facts": {"context_window": 448}},
            {
                "provider_id": "google",
                "model_id": "embedding-001",
                "provider_data": {"supportedGenerationMethods": ["embedContent"]},
            },
        ]
    )

    @dg.asset(name="normalized_models")
    def normalized_models() -> pd.DataFrame:
        return frame

    assets = [normalized_models, ref_litellm_models, ref_models_dev_models, inferred_model_metadata]
    resources = {"registry_db": RegistryDatabase(url=sqlite_url), "sources": DataSources(demo=False)}
    with dg.instance_for_test() as instance:
        runs = [dg.materialize(assets, resources=resources, instance=instance) for _ in range(2)]
    metadata = [
        next(
            e.materialization.metadata
            for e in run.get_asset_materialization_events()
            if e.asset_key.path[-1] == "inferred_model_metadata"
        )
        for run in runs
    ]
    assert metadata[0]["inferencer"].value == "llm"
    assert metadata[0]["llm_calls"].value == 1 and metadata[0]["llm_tokens"].value == 150
    assert (
        metadata[1]["llm_calls"].value == 0
        and metadata[1]["cache_hits"].value == metadata[0]["models_asked"].value
    )
    assert metadata[1]["coverage"].value["context_window"] > 0
    output = runs[1].output_for_node("inferred_model_metadata")
    assert list(output.columns) == ["provider_id", "model_id", "ai_data"] and len(output) == 3
