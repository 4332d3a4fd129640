"""Normalization of each provider's list answer, checked by hand against the real samples
(tests/fixtures/providers/), plus the tolerance rules: odd fields are unknown, never a crash."""

from __future__ import annotations

import contextlib
import copy
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_assets.providers import PROVIDERS, get_provider
from core_assets.providers.openrouter import next_page_url
from core_assets.records import CAPABILITIES, SPEC_FIELDS, PayloadError
from tests.support.fake_providers import load_fixture


def paged(page):
    return {"pages": [page]}


def by_id(parsed):
    return {model.model_id: model for model in parsed.models}


@pytest.fixture(scope="module")
def openrouter():
    return by_id(PROVIDERS["openrouter"].parse(paged(load_fixture("openrouter_models.json.gz"))))


@pytest.fixture(scope="module")
def mistral():
    return by_id(PROVIDERS["mistral"].parse(paged(load_fixture("mistral_models.json"))))


def ollama_payload(tags=None, show=None):
    return {
        "tags": tags if tags is not None else load_fixture("ollama_tags.json"),
        "show": show if show is not None else load_fixture("ollama_show.json"),
    }


# ------------------------------------------------------------------------------------------ shared


def test_registry_knows_exactly_the_five_providers():
    """PROVIDERS is keyed by the five provider ids, and an unknown name is a clear error."""
    assert set(PROVIDERS) == {"google", "mistral", "openrouter", "groq", "ollama"}
    with pytest.raises(ValueError, match="unknown provider 'anthropic'"):
        get_provider("anthropic")


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        ("openrouter", lambda: paged(load_fixture("openrouter_models.json.gz"))),
        ("groq", lambda: paged(load_fixture("groq_models.json"))),
        ("mistral", lambda: paged(load_fixture("mistral_models.json"))),
        ("google", lambda: paged(load_fixture("google_models.json"))),
        ("ollama", ollama_payload),
    ],
)
def test_every_model_has_all_spec_fields_and_tri_state_capabilities(provider, payload):
    """Facts carry every SPEC field, and each capability is True, False or None."""
    models = PROVIDERS[provider].normalize(payload())
    assert models
    for model in models:
        assert model.provider_id == provider
        assert set(model.facts) == set(SPEC_FIELDS)
        capabilities = model.facts["capabilities"]
        assert set(CAPABILITIES) <= set(capabilities)
        assert all(value in (True, False, None) for value in capabilities.values())


# -------------------------------------------------------------------------------------- OpenRouter


def test_openrouter_reads_all_549_models(openrouter):
    """The output_modalities=all capture yields 549 models."""
    assert len(openrouter) == 549


def test_openrouter_prices_are_usd_per_1k_from_per_token_strings(openrouter):
    """ "0.00000045" USD/token is 0.00045 USD per 1k, exactly (Decimal)."""
    facts = openrouter["qwen/qwen3.8-27b"].facts
    assert facts["input_cost_per_1k"] == Decimal("0.00045")
    assert facts["output_cost_per_1k"] == Decimal("0.0032")
    assert isinstance(facts["input_cost_per_1k"], Decimal)


def test_openrouter_limits_modalities_and_capabilities(openrouter):
    """Context, max output, modalities and capability flags come from the item as documented."""
    model = openrouter["qwen/qwen3.8-27b"]
    assert model.name == "Qwen: Qwen3.8 27B"
    assert model.facts["context_window"] == 262144
    assert model.facts["max_output_tokens"] == 131072
    assert model.facts["modalities"] == {"input": ["text", "image", "video"], "output": ["text"]}
    assert model.facts["capabilities"] == {
        "chat": True,
        "tools": True,
        "vision": True,
        "json_mode": True,
        "reasoning": True,
        "embeddings": False,
    }


def test_openrouter_keeps_the_raw_item(openrouter):
    """provider_data is the untouched item, including fields the registry does not map."""
    data = openrouter["qwen/qwen3.8-27b"].provider_data
    assert data["canonical_slug"] == "qwen/qwen3.8-27b-20260814"
    assert data["reasoning"]["default_effort"] == "xhigh"


def test_openrouter_free_variants(openrouter):
    """The 22 `:free` ids are free_variant with zero prices; nothing else in this capture is free."""
    free = {model_id for model_id, m in openrouter.items() if m.facts["free_kind"]}
    assert len(free) == 22
    assert all(model_id.endswith(":free") for model_id in free)
    facts = openrouter["nvidia/nemotron-nano-12b-v2-vl:free"].facts
    assert facts["free_kind"] == "free_variant"
    assert facts["input_cost_per_1k"] == facts["output_cost_per_1k"] == Decimal(0)


@pytest.mark.parametrize(
    "model_id",
    ["openrouter/free", "google/veo-3.1", "cohere/rerank-v3.5", "google/lyria-3-pro-preview"],
)
def test_openrouter_all_zero_non_text_models_are_not_free_and_unpriced(openrouter, model_id):
    """All-zero pricing on a router, video, rerank or music model means 'priced elsewhere': unknown, not free."""
    facts = openrouter[model_id].facts
    assert facts["free_kind"] is None
    assert facts["input_cost_per_1k"] is None
    assert facts["output_cost_per_1k"] is None


def test_openrouter_price_minus_one_is_unknown(openrouter):
    """ "-1" (price varies) on openrouter/auto is unknown, never negative, never free."""
    facts = openrouter["openrouter/auto"].facts
    assert facts["input_cost_per_1k"] is None
    assert facts["output_cost_per_1k"] is None
    assert facts["free_kind"] is None


def test_openrouter_zero_priced_text_model_is_free():
    """In the 2025 shape (every price key present), an all-zero text model without `:free` is zero_price."""
    models = by_id(PROVIDERS["openrouter"].parse(paged(load_fixture("openrouter_models_2025-07.json.gz"))))
    assert len(models) == 319
    facts = models["google/gemini-2.5-pro-exp-03-25"].facts
    assert facts["free_kind"] == "zero_price"
    assert facts["input_cost_per_1k"] == Decimal(0)
    assert sum(m.facts["free_kind"] == "free_variant" for m in models.values()) == 55


def test_openrouter_zero_context_falls_back_then_unknown(openrouter):
    """context_length 0 falls back to top_provider.context_length; 0 there too means unknown."""
    assert openrouter["google/veo-3.1"].facts["context_window"] is None
    item = copy.deepcopy(openrouter["qwen/qwen3.8-27b"].provider_data)
    item["context_length"] = 0
    item["top_provider"]["context_length"] = 65536
    (model,) = PROVIDERS["openrouter"].normalize(paged({"data": [item]}))
    assert model.facts["context_window"] == 65536


def test_openrouter_embeddings_and_expiration(openrouter):
    """Embedding output sets embeddings (and not chat); expiration_date becomes deprecation_date."""
    capabilities = openrouter["voyageai/voyage-code-4"].facts["capabilities"]
    assert (capabilities["embeddings"], capabilities["chat"]) == (True, False)
    assert openrouter["nvidia/nemotron-nano-12b-v2-vl:free"].facts["deprecation_date"] == "2026-08-24"


def test_openrouter_missing_lists_leave_capabilities_unknown():
    """Without supported_parameters or architecture, no capability is claimed either way."""
    (model,) = PROVIDERS["openrouter"].normalize(paged({"data": [{"id": "acme/bare"}]}))
    assert set(model.facts["capabilities"].values()) == {None}
    assert model.facts["modalities"] is None
    assert model.facts["free_kind"] is None


def test_openrouter_next_link_keeps_prefix_and_modalities():
    """links.next is resolved on the base URL's host, keeping a path prefix and output_modalities=all."""
    assert (
        next_page_url("https://openrouter.ai/api/v1", "/api/v1/models?offset=500&limit=500")
        == "https://openrouter.ai/api/v1/models?offset=500&limit=500&output_modalities=all"
    )
    assert (
        next_page_url(
            "http://127.0.0.1:8080/openrouter/api/v1", "/api/v1/models?offset=4&output_modalities=all"
        )
        == "http://127.0.0.1:8080/openrouter/api/v1/models?offset=4&output_modalities=all"
    )


# -------------------------------------------------------------------------------------------- Groq


def test_groq_2025_shape():
    """20 models; id doubles as name; context and max output read; capabilities unknown, no price."""
    models = by_id(PROVIDERS["groq"].parse(paged(load_fixture("groq_models.json"))))
    assert len(models) == 20
    model = models["llama-3.3-70b-versatile"]
    assert model.name == "llama-3.3-70b-versatile"
    assert model.facts["context_window"] == 131072
    assert model.facts["max_output_tokens"] == 32768
    assert set(model.facts["capabilities"].values()) == {None}
    assert model.facts["input_cost_per_1k"] is None
    assert models["whisper-large-v3"].facts["context_window"] == 448


def test_groq_2026_shape_fills_capabilities_modalities_and_prices():
    """The reported 2026 fields (name, modalities, supported_features, pricing) are used when present."""
    item = {
        "id": "openai/gpt-oss-120b",
        "object": "model",
        "name": "GPT OSS 120B",
        "context_window": 131072,
        "max_completion_tokens": 65536,
        "input_modalities": ["text"],
        "output_modalities": ["text"],
        "supported_features": ["tools", "json_mode", "reasoning"],
        "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
    }
    (model,) = PROVIDERS["groq"].normalize(paged({"object": "list", "data": [item]}))
    assert model.name == "GPT OSS 120B"
    assert model.facts["modalities"] == {"input": ["text"], "output": ["text"]}
    assert model.facts["input_cost_per_1k"] == Decimal("0.00015")
    assert model.facts["output_cost_per_1k"] == Decimal("0.0006")
    assert model.facts["capabilities"] == {
        "chat": True,
        "tools": True,
        "vision": False,
        "json_mode": True,
        "reasoning": True,
        "embeddings": False,
    }
    assert model.facts["free_kind"] is None


# ----------------------------------------------------------------------------------------- Mistral


def test_mistral_dedupes_62_entries_into_31_models(mistral):
    """Entries sharing a canonical `name` are one model."""
    assert len(mistral) == 31


def test_mistral_aliases_collect_ids_and_alias_lists(mistral):
    """Aliases are every other id and listed alias of the group, sorted, without the canonical name."""
    assert mistral["mistral-medium-2505"].facts["aliases"] == ["mistral-medium", "mistral-medium-latest"]
    assert mistral["open-mistral-nemo"].facts["aliases"] == [
        "mistral-tiny-2407",
        "mistral-tiny-latest",
        "open-mistral-nemo-2407",
    ]
    assert mistral["mistral-embed"].facts["aliases"] == []


def test_mistral_provider_data_is_the_canonical_entry(mistral):
    """provider_data is the entry whose id is the canonical name."""
    assert mistral["codestral-2501"].provider_data["id"] == "codestral-2501"


def test_mistral_capabilities_map_and_keep_extras(mistral):
    """completion_chat → chat, function_calling → tools, completion_fim → fim; other keys kept as given."""
    caps = mistral["codestral-2501"].facts["capabilities"]
    assert caps["chat"] is True and caps["tools"] is True and caps["vision"] is False
    assert caps["fim"] is True
    assert caps["fine_tuning"] is False and caps["classification"] is False
    assert caps["json_mode"] is None and caps["embeddings"] is None  # the API does not say
    assert mistral["pixtral-large-2411"].facts["capabilities"]["vision"] is True
    assert mistral["mistral-embed"].facts["capabilities"]["chat"] is False
    assert mistral["codestral-2501"].facts["context_window"] == 262144


def test_mistral_newer_capabilities_and_deprecation():
    """Newer keys (ocr, reasoning) and a deprecation timestamp with its replacement are read."""
    entry = {
        "id": "codestral-2405",
        "name": "codestral-2405",
        "aliases": [],
        "max_context_length": 32768,
        "capabilities": {
            "completion_chat": True,
            "ocr": False,
            "reasoning": True,
            "audio_transcription": "yes",
        },
        "deprecation": "2026-01-31T12:00:00Z",
        "deprecation_replacement_model": "codestral-latest",
    }
    (model,) = PROVIDERS["mistral"].normalize(paged({"object": "list", "data": [entry]}))
    assert model.facts["deprecation_date"] == "2026-01-31"
    assert model.facts["successor"] == "codestral-latest"
    caps = model.facts["capabilities"]
    assert (caps["ocr"], caps["reasoning"], caps["audio_transcription"]) == (False, True, None)


# ------------------------------------------------------------------------------------------ Google


def test_google_ids_limits_and_names():
    """`models/` is stripped from ids; displayName, inputTokenLimit and outputTokenLimit are read."""
    models = by_id(PROVIDERS["google"].parse(paged(load_fixture("google_models.json"))))
    assert len(models) == 9
    assert all(not model_id.startswith("models/") for model_id in models)
    flash = models["gemini-2.5-flash"]
    assert flash.name == "Gemini 2.5 Flash"
    assert (flash.facts["context_window"], flash.facts["max_output_tokens"]) == (1048576, 65536)
    assert flash.provider_data["name"] == "models/gemini-2.5-flash"


def test_google_capabilities_from_methods_and_thinking():
    """generateContent → chat, embedContent → embeddings, thinking → reasoning; tools and vision unknown."""
    models = by_id(PROVIDERS["google"].parse(paged(load_fixture("google_models.json"))))
    assert models["gemini-2.5-flash"].facts["capabilities"] == {
        "chat": True,
        "tools": None,
        "vision": None,
        "json_mode": None,
        "reasoning": True,
        "embeddings": False,
    }
    assert models["gemini-2.0-flash"].facts["capabilities"]["reasoning"] is None
    embedding = models["text-embedding-004"].facts["capabilities"]
    assert (embedding["chat"], embedding["embeddings"]) == (False, True)


def test_google_pages_are_concatenated_and_empty_pages_allowed():
    """Models from every page are kept; a page without `models` (proto3 omits empty lists) is empty."""
    items = load_fixture("google_models.json")["models"]
    payload = {"pages": [{"models": items[:4], "nextPageToken": "t"}, {"models": items[4:]}, {}]}
    assert len(PROVIDERS["google"].normalize(payload)) == 9


# ------------------------------------------------------------------------------------------ Ollama


def test_ollama_local_models_are_free_with_show_context():
    """Local tags are free (local, price 0); context and capabilities come from /api/show."""
    models = by_id(PROVIDERS["ollama"].parse(ollama_payload()))
    assert len(models) == 7
    for model in models.values():
        assert model.facts["free_kind"] == "local"
        assert model.facts["input_cost_per_1k"] == model.facts["output_cost_per_1k"] == Decimal(0)
    gemma = models["gemma3:4b"]
    assert gemma.facts["context_window"] == 131072
    assert (gemma.facts["family"], gemma.facts["parameter_size"]) == ("gemma3", "4.3B")
    assert gemma.facts["capabilities"]["vision"] is True
    assert models["nomic-embed-text:latest"].facts["capabilities"]["embeddings"] is True
    assert models["nomic-embed-text:latest"].facts["capabilities"]["chat"] is False
    assert models["qwen2.5-coder:7b"].facts["capabilities"]["fim"] is True
    assert gemma.provider_data["tag"]["digest"].startswith("a2af6cc3")


def test_ollama_real_show_sample_context():
    """The documented /api/show example (gemma4) gives gemma4.context_length via general.architecture."""
    tags = load_fixture("ollama_tags.json")
    tags["models"] = [dict(tags["models"][-1], name="gemma4", model="gemma4")]
    (model,) = PROVIDERS["ollama"].normalize(
        ollama_payload(tags, {"gemma4": load_fixture("ollama_show_gemma4.json")})
    )
    assert model.facts["context_window"] == 131072
    assert model.facts["capabilities"]["chat"] is True
    assert model.facts["capabilities"]["tools"] is False


def test_ollama_failed_show_leaves_context_and_capabilities_unknown():
    """A model whose /api/show failed (null) keeps its tag facts; the rest is unknown."""
    show = load_fixture("ollama_show.json")
    show["llava:7b"] = None
    models = by_id(PROVIDERS["ollama"].parse(ollama_payload(show=show)))
    llava = models["llava:7b"]
    assert llava.facts["context_window"] is None
    assert set(llava.facts["capabilities"].values()) == {None}
    assert llava.facts["family"] == "llama"
    assert llava.provider_data["show"] is None


def test_ollama_newer_tags_context_length_is_a_fallback():
    """Without a show answer, details.context_length from a newer /api/tags is used."""
    tags = {"models": [{"name": "qwen3:8b", "details": {"family": "qwen3", "context_length": 40960}}]}
    (model,) = PROVIDERS["ollama"].normalize(ollama_payload(tags, {}))
    assert model.facts["context_window"] == 40960


@pytest.mark.parametrize(
    "tag",
    [
        {
            "name": "gpt-oss:120b-cloud",
            "remote_model": "gpt-oss:120b",
            "remote_host": "https://ollama.com:443",
        },
        {"name": "deepseek-v3.1:671b-cloud"},
        {"name": "qwen3-coder:cloud"},
    ],
)
def test_ollama_cloud_models_are_not_free(tag):
    """Models proxied to ollama.com are not free and have no known price."""
    show = {tag["name"]: load_fixture("ollama_cloud_show_gpt-oss-120b.json")}
    (model,) = PROVIDERS["ollama"].normalize(ollama_payload({"models": [tag]}, show))
    assert model.facts["free_kind"] is None
    assert model.facts["input_cost_per_1k"] is None
    assert model.facts["context_window"] == 131072
    assert model.facts["capabilities"]["reasoning"] is True


def test_ollama_empty_detail_strings_are_unknown():
    """ollama.com's catalog answers with empty `details` strings: family and size unknown, not ""."""
    models = PROVIDERS["ollama"].normalize(ollama_payload(load_fixture("ollama_cloud_tags.json"), {}))
    assert [m.model_id for m in models] == ["deepseek-v3.1:671b", "gpt-oss:120b", "gpt-oss:20b"]
    assert {(m.facts["family"], m.facts["parameter_size"]) for m in models} == {(None, None)}


def test_ollama_null_model_list_is_empty():
    """Go encodes an empty slice as null: no models, not an error."""
    assert PROVIDERS["ollama"].normalize(ollama_payload({"models": None}, {})) == []


# ------------------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    ("provider", "payload", "message"),
    [
        ("openrouter", {"pages": [{"data": {"oops": 1}}]}, "expected 'data' to be a list, got an object"),
        (
            "groq",
            {"pages": [["not", "an", "object"]]},
            "expected a JSON object with a 'data' list, got a list",
        ),
        ("mistral", {"pages": [{"object": "list"}]}, "expected 'data' to be a list, got null"),
        ("google", {"pages": [{"models": "none"}]}, "expected 'models' to be a list, got a string"),
        ("google", [], "expected a google snapshot"),
        ("ollama", {"tags": {"models": {}}, "show": {}}, "expected 'models' to be a list"),
        ("ollama", {"pages": []}, "expected an ollama snapshot"),
    ],
)
def test_wrong_top_level_shape_is_a_payload_error(provider, payload, message):
    """A document that is not the API's shape raises PayloadError saying what was expected."""
    with pytest.raises(PayloadError, match=message):
        PROVIDERS[provider].normalize(payload)


def test_items_without_a_usable_id_are_dropped_and_counted():
    """Items without a string id (or repeating one) are skipped and counted; the rest are kept."""
    page = {
        "data": [{"id": "a/one"}, {"id": ""}, {"id": 7}, "text", None, {"name": "no id"}, {"id": "a/one"}]
    }
    parsed = PROVIDERS["openrouter"].parse(paged(page))
    assert [m.model_id for m in parsed.models] == ["a/one"]
    assert parsed.skipped == 6
    mistral = PROVIDERS["mistral"].parse(paged({"data": [{"id": "m", "name": "m"}, {"aliases": ["x"]}, 3]}))
    assert ([m.model_id for m in mistral.models], mistral.skipped) == (["m"], 2)


def test_wrong_typed_fields_are_unknown_not_errors():
    """Fields of the wrong type become unknown; the model is still listed."""
    item = {
        "id": "acme/odd",
        "name": 42,
        "context_length": "lots",
        "top_provider": [],
        "pricing": "free",
        "architecture": {"input_modalities": None, "output_modalities": "text"},
        "supported_parameters": {"tools": True},
        "reasoning": "yes",
        "expiration_date": 20260101,
    }
    (model,) = PROVIDERS["openrouter"].normalize(paged({"data": [item]}))
    assert model.name is None
    assert model.facts["context_window"] is None
    assert model.facts["input_cost_per_1k"] is None
    assert model.facts["deprecation_date"] is None
    assert set(model.facts["capabilities"].values()) == {None}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
FIELDS = {
    "openrouter": [
        "id",
        "name",
        "context_length",
        "architecture",
        "pricing",
        "top_provider",
        "supported_parameters",
        "reasoning",
        "expiration_date",
    ],
    "groq": [
        "id",
        "name",
        "context_window",
        "max_completion_tokens",
        "input_modalities",
        "output_modalities",
        "supported_features",
        "pricing",
    ],
    "mistral": [
        "id",
        "name",
        "aliases",
        "capabilities",
        "max_context_length",
        "deprecation",
        "deprecation_replacement_model",
    ],
    "google": [
        "name",
        "displayName",
        "inputTokenLimit",
        "outputTokenLimit",
        "supportedGenerationMethods",
        "thinking",
    ],
    "ollama": ["name", "model", "details", "remote_host", "remote_model", "capabilities"],
}


def items_for(provider):
    return st.lists(
        st.dictionaries(
            st.sampled_from(FIELDS[provider]), JSON | st.text(min_size=1, max_size=10), max_size=8
        )
        | JSON,
        max_size=5,
    )


def wrap(provider, items, extra):
    if provider == "ollama":
        names = [i.get("name") for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]
        return {"tags": {"models": items}, "show": {name: extra for name in names}}
    return {"pages": [{"models" if provider == "google" else "data": items}]}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_normalizers_never_crash_on_arbitrary_items(provider, data):
    """Whatever the items hold, a normalizer returns models (or raises PayloadError) — nothing else."""
    items = data.draw(items_for(provider))
    payload = wrap(provider, items, data.draw(JSON))
    try:
        parsed = PROVIDERS[provider].parse(payload)
    except PayloadError:
        return
    assert len(parsed.models) + parsed.skipped >= 0
    for model in parsed.models:
        assert isinstance(model.model_id, str) and model.model_id


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=40, deadline=None)
@given(document=JSON)
def test_normalizers_never_crash_on_arbitrary_documents(provider, document):
    """An arbitrary JSON document is a PayloadError or an answer, never another exception."""
    with contextlib.suppress(PayloadError):
        PROVIDERS[provider].parse(document)
