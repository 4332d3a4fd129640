"""Reference catalogs: parsing, units and the exact id mapping on the bundled copies; live fetch and fallback."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from core_assets.defs.references import (
    price_magnitude_result,
    ref_litellm_models,
    ref_models_dev_models,
)
from core_assets.defs.resources import DataSources
from core_assets.records import PayloadError
from core_assets.references import litellm, models_dev
from core_assets.references.catalog import (
    DATA_DIR,
    References,
    load_catalog,
    read_bundled,
    reference_config,
)
from core_assets.references.facts import ollama_ids
from core_assets.settings import ConfigError


@pytest.fixture(scope="module")
def bundled_litellm():
    return litellm.parse(read_bundled(litellm.NAME))


@pytest.fixture(scope="module")
def bundled_models_dev():
    return models_dev.parse(read_bundled(models_dev.NAME))


class CatalogServer:
    """A loopback HTTP server answering every GET with a scripted (status, body)."""

    def __init__(self) -> None:
        self.status, self.body = 200, b"{}"
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests += 1
                self.send_response(server.status)
                self.send_header("content-length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/catalog.json"

    def serve(self, document: Any, status: int = 200) -> None:
        self.status = status
        self.body = document if isinstance(document, bytes) else json.dumps(document).encode()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def catalog_server(monkeypatch) -> Iterator[CatalogServer]:
    server = CatalogServer()
    monkeypatch.setenv("CORE_LITELLM_URL", server.url)
    monkeypatch.setenv("CORE_MODELS_DEV_URL", server.url)
    monkeypatch.setenv("CORE_HTTP_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("CORE_HTTP_MAX_RETRY_WAIT", "0.01")
    yield server
    server.close()


LITELLM_DOC = {
    "sample_spec": {"litellm_provider": "one of …", "max_input_tokens": "max input tokens"},
    "last_updated": "2026-07-24T18:23:43+00:00",
    "groq/llama-3.3-70b-versatile": {
        "litellm_provider": "groq",
        "mode": "chat",
        "max_input_tokens": 128000,
        "input_cost_per_token": 5.9e-07,
        "output_cost_per_token": 7.9e-07,
    },
}


# --- LiteLLM ---------------------------------------------------------------------------------------------


def test_litellm_counts_entries_without_schema_and_timestamp(bundled_litellm):
    """sample_spec and the mirror's last_updated string are not model entries."""
    assert bundled_litellm.entries == 2983
    assert bundled_litellm.mapped == {"google": 73, "groq": 14, "mistral": 58, "ollama": 29, "openrouter": 96}


def test_litellm_prices_are_per_token_converted_to_per_1k(bundled_litellm):
    """5.9e-07 USD per token is exactly 0.00059 USD per 1k tokens; context from max_input_tokens."""
    facts = bundled_litellm.facts[("groq", "llama-3.3-70b-versatile")]
    assert facts["input_cost_per_1k"] == Decimal("0.00059")
    assert facts["output_cost_per_1k"] == Decimal("0.00079")
    assert facts["context_window"] == 128000
    assert facts["max_output_tokens"] == 32768
    gemini = bundled_litellm.facts[("google", "gemini-2.5-flash")]
    assert (gemini["input_cost_per_1k"], gemini["output_cost_per_1k"]) == (
        Decimal("0.0003"),
        Decimal("0.0025"),
    )
    assert gemini["capabilities"] == {
        "chat": True,
        "embeddings": False,
        "tools": True,
        "vision": True,
        "json_mode": True,
        "reasoning": True,
    }
    assert gemini["modalities"] == {"input": ["text", "image", "audio", "video"], "output": ["text"]}


def test_litellm_id_mapping_strips_exactly_the_provider_prefix(bundled_litellm):
    """gemini/ → google, openrouter/<vendor>/<model> and groq ids keep their own slashes."""
    facts = bundled_litellm.facts
    assert ("google", "gemini-2.5-flash") in facts
    assert ("openrouter", "openai/gpt-4o") in facts
    assert ("groq", "meta-llama/llama-guard-4-12b") in facts
    assert ("mistral", "mistral-large-latest") in facts
    assert ("google", "gemini-flash-latest") in facts  # a bare key LiteLLM files under gemini
    assert not any(model_id.startswith(("gemini/", "vertex_ai", "groq/llama")) for _, model_id in facts)
    assert {provider for provider, _ in facts} == {"google", "groq", "mistral", "ollama", "openrouter"}


def test_litellm_mode_and_absent_flags(bundled_litellm):
    """mode says chat or embeddings; a supports_* flag LiteLLM omits stays unknown, not false."""
    whisper = bundled_litellm.facts[("groq", "whisper-large-v3")]["capabilities"]
    assert whisper == {"chat": False, "embeddings": False}
    embedding = bundled_litellm.facts[("google", "gemini-embedding-001")]
    assert embedding["capabilities"]["embeddings"] is True
    assert "vision" not in embedding["capabilities"]


def test_litellm_never_states_free(bundled_litellm):
    """All-zero prices (every Ollama entry, Gemini experiments) are dropped; an embedding's zero output stays."""
    assert "input_cost_per_1k" not in bundled_litellm.facts[("ollama", "llama3")]
    assert "input_cost_per_1k" not in bundled_litellm.facts[("google", "gemini-exp-1206")]
    embedding = bundled_litellm.facts[("google", "gemini-embedding-001")]
    assert embedding["input_cost_per_1k"] == Decimal("0.00015")
    assert embedding["output_cost_per_1k"] == Decimal(0)
    assert all("free_kind" not in facts for facts in bundled_litellm.facts.values())


def test_litellm_ollama_untagged_name_is_latest(bundled_litellm):
    """ollama/llama3 also describes llama3:latest; a tagged key describes only itself."""
    assert bundled_litellm.facts[("ollama", "llama3:latest")] == bundled_litellm.facts[("ollama", "llama3")]
    assert ("ollama", "gpt-oss:120b-cloud") in bundled_litellm.facts
    assert ("ollama", "gpt-oss:120b-cloud:latest") not in bundled_litellm.facts


def test_litellm_deprecation_date_is_kept(bundled_litellm):
    """deprecation_date passes through as YYYY-MM-DD."""
    assert bundled_litellm.facts[("google", "gemini-1.5-flash")]["deprecation_date"] == "2025-09-29"


def test_litellm_prefixed_key_beats_bare_key():
    """When gemini/<id> and a bare <id> both exist, the prefixed entry wins."""
    document = {
        "gemini-x": {"litellm_provider": "gemini", "max_input_tokens": 1000},
        "gemini/gemini-x": {"litellm_provider": "gemini", "max_input_tokens": 2000},
        "vertex_ai/gemini-x": {"litellm_provider": "vertex_ai-language-models", "max_input_tokens": 3000},
    }
    assert litellm.parse(document).facts == {("google", "gemini-x"): {"context_window": 2000}}


@pytest.mark.parametrize("document", [[], "text", {"sample_spec": {}}])
def test_litellm_wrong_shape_is_an_error(document):
    """A document that is not LiteLLM's map of entries raises PayloadError."""
    with pytest.raises(PayloadError, match="LiteLLM"):
        litellm.parse(document)


# --- models.dev ------------------------------------------------------------------------------------------


def test_models_dev_bundled_copy_has_api_json_shape():
    """The bundled copy is gzip JSON shaped like https://models.dev/api.json."""
    with gzip.open(DATA_DIR / models_dev.BUNDLED_FILE, "rt") as handle:
        document = json.load(handle)
    assert set(document) == {"google", "mistral", "openrouter", "groq", "ollama-cloud"}
    model = document["groq"]["models"]["llama-3.3-70b-versatile"]
    assert model["id"] == "llama-3.3-70b-versatile"
    assert model["cost"] == {"input": 0.59, "output": 0.79}
    assert "base_model" not in document["google"]["models"]["gemini-2.5-flash"]


def test_models_dev_prices_are_per_million_converted_to_per_1k(bundled_models_dev):
    """0.59 USD per 1M tokens is 0.00059 USD per 1k; context and output from limit."""
    facts = bundled_models_dev.facts[("groq", "llama-3.3-70b-versatile")]
    assert facts["input_cost_per_1k"] == Decimal("0.00059")
    assert facts["output_cost_per_1k"] == Decimal("0.00079")
    assert (facts["context_window"], facts["max_output_tokens"]) == (131072, 32768)
    assert facts["capabilities"] == {"tools": True, "reasoning": False, "vision": False}
    assert facts["family"] == "llama"


def test_models_dev_base_model_is_resolved(bundled_models_dev):
    """Google's gemini-2.5-flash inherits limit, modalities and flags from models/google and keeps its cost."""
    facts = bundled_models_dev.facts[("google", "gemini-2.5-flash")]
    assert facts["context_window"] == 1048576
    assert facts["input_cost_per_1k"] == Decimal("0.0003")
    assert facts["modalities"]["input"] == ["text", "image", "audio", "video", "file"]
    assert facts["capabilities"]["vision"] is True


def test_models_dev_base_model_omit_drops_inherited_keys(bundled_models_dev):
    """A provider file's own limit table replaces the base model's whole."""
    assert bundled_models_dev.facts[("openrouter", "stepfun/step-3.5-flash")]["context_window"] == 262144


def test_models_dev_provider_mapping(bundled_models_dev):
    """google, mistral, openrouter and groq keep their ids; ollama-cloud models become ollama's."""
    assert bundled_models_dev.mapped == {
        "google": 22,
        "groq": 15,
        "mistral": 30,
        "ollama": 43,
        "openrouter": 337,
    }
    assert ("openrouter", "openai/gpt-oss-120b") in bundled_models_dev.facts
    assert ("ollama", "gpt-oss:120b") in bundled_models_dev.facts


def test_models_dev_cloud_models_under_their_local_spelling(bundled_models_dev):
    """A local Ollama lists gpt-oss:120b as gpt-oss:120b-cloud and deepseek-v3.2 as deepseek-v3.2:cloud."""
    facts = bundled_models_dev.facts
    assert facts[("ollama", "gpt-oss:120b-cloud")] == facts[("ollama", "gpt-oss:120b")]
    assert facts[("ollama", "deepseek-v3.2:cloud")] == facts[("ollama", "deepseek-v3.2")]
    assert ("ollama", "gpt-oss:120b") in facts and "input_cost_per_1k" not in facts[
        ("ollama", "gpt-oss:120b")
    ]


def test_models_dev_zero_limits_and_status(bundled_models_dev):
    """whisper's limit 0 stays unknown; status deprecated is carried as an extra key."""
    whisper = bundled_models_dev.facts[("groq", "whisper-large-v3")]
    assert "context_window" not in whisper
    assert whisper["modalities"] == {"input": ["audio"], "output": ["text"]}
    assert bundled_models_dev.facts[("google", "gemini-2.0-flash")]["status"] == "deprecated"
    assert "status" not in bundled_models_dev.facts[("google", "gemini-2.5-flash")]


def test_ollama_spellings():
    """Ollama's exact naming rules, the catalog's own spelling first."""
    assert ollama_ids("llama3", cloud=False) == ["llama3", "llama3:latest"]
    assert ollama_ids("llama3:8b", cloud=False) == ["llama3:8b"]
    assert ollama_ids("gpt-oss:120b", cloud=True) == ["gpt-oss:120b", "gpt-oss:120b-cloud"]
    assert ollama_ids("glm-4.6", cloud=True) == ["glm-4.6", "glm-4.6:latest", "glm-4.6:cloud"]


# --- lookup ----------------------------------------------------------------------------------------------


def test_lookup_is_exact_then_provider_aliases():
    """A model is found under its id, else under an alias its provider declares; never by similarity."""
    references = References({litellm.NAME: {("mistral", "mistral-large-latest"): {"context_window": 1}}})
    assert references.lookup(litellm.NAME, "mistral", "mistral-large-2411", ["mistral-large-latest"]) == {
        "context_window": 1
    }
    assert references.lookup(litellm.NAME, "mistral", "mistral-large-2411") is None
    assert references.lookup(litellm.NAME, "mistral", "mistral-large") is None
    assert references.sources("mistral", "mistral-large-2411", ["mistral-large-latest"]) == [
        ("litellm", {"context_window": 1}),
        ("models.dev", None),
    ]


# --- configuration and loading ---------------------------------------------------------------------------


def test_reference_config(monkeypatch):
    """CORE_REFERENCES picks catalogs, `offline` the bundled copies, `none` nothing; unknown names fail."""
    assert reference_config().catalogs == ("litellm", "models.dev") and not reference_config().offline
    monkeypatch.setenv("CORE_REFERENCES", "offline")
    assert reference_config().catalogs == ("litellm", "models.dev") and reference_config().offline
    monkeypatch.setenv("CORE_REFERENCES", "models.dev")
    assert reference_config().catalogs == ("models.dev",)
    monkeypatch.setenv("CORE_REFERENCES", "none")
    assert reference_config().catalogs == ()
    monkeypatch.setenv("CORE_REFERENCES", "litellm,modelsdev")
    with pytest.raises(ConfigError, match="modelsdev"):
        reference_config()


def test_disabled_catalog_is_empty(monkeypatch):
    """A catalog left out of CORE_REFERENCES yields no facts and is not fetched."""
    monkeypatch.setenv("CORE_REFERENCES", "litellm,offline")
    catalog = load_catalog(models_dev.NAME)
    assert catalog.source == "disabled" and catalog.facts == {}


def test_offline_and_demo_use_the_bundled_copy(monkeypatch, catalog_server):
    """CORE_REFERENCES=offline and demo mode never touch the network."""
    assert load_catalog(litellm.NAME, demo=True).source.startswith("bundled")
    monkeypatch.setenv("CORE_REFERENCES", "offline")
    assert load_catalog(models_dev.NAME).source.startswith("bundled")
    assert catalog_server.requests == 0


def test_live_fetch_uses_the_configured_url(catalog_server):
    """The live catalog comes from CORE_LITELLM_URL and is parsed like the bundled one."""
    catalog_server.serve(LITELLM_DOC)
    catalog = load_catalog(litellm.NAME)
    assert catalog.source == catalog_server.url
    assert catalog.warnings == []
    assert catalog.parsed.entries == 1
    assert catalog.facts[("groq", "llama-3.3-70b-versatile")]["input_cost_per_1k"] == Decimal("0.00059")


@pytest.mark.parametrize(
    "body, status",
    [(b"<html>maintenance</html>", 200), (b"{}", 503), (b'{"not": "a catalog"', 200), ([1, 2], 200)],
    ids=["html", "server-error", "truncated", "wrong-shape"],
)
def test_failed_live_fetch_falls_back_with_a_warning(catalog_server, body, status):
    """A live catalog that cannot be used is replaced by the bundled copy, with a warning."""
    catalog_server.serve(body, status)
    catalog = load_catalog(models_dev.NAME)
    assert catalog.source.startswith("bundled")
    assert len(catalog.warnings) == 1 and "using the bundled copy" in catalog.warnings[0]
    assert ("groq", "llama-3.3-70b-versatile") in catalog.facts


def test_unreachable_catalog_falls_back(monkeypatch):
    """Connection refused is a warning, not a failure."""
    monkeypatch.setenv("CORE_LITELLM_URL", "http://127.0.0.1:9/none.json")
    monkeypatch.setenv("CORE_HTTP_MAX_ATTEMPTS", "1")
    catalog = load_catalog(litellm.NAME)
    assert catalog.source.startswith("bundled")
    assert "LiteLLM price catalog" in catalog.warnings[0] and "connect" in catalog.warnings[0]


# --- Dagster ---------------------------------------------------------------------------------------------


def test_reference_assets_materialize_with_metadata(monkeypatch):
    """Both assets materialize offline with entries, matches, source and passing magnitude checks."""
    monkeypatch.setenv("CORE_REFERENCES", "offline")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [
                ref_litellm_models,
                ref_models_dev_models,
            ],
            resources={"sources": DataSources(demo=False)},
            instance=instance,
        )
    assert result.success
    frame = result.output_for_node("ref_litellm_models")
    assert list(frame.columns) == ["provider_id", "model_id", "facts"]
    metadata = {
        event.asset_key.path[-1]: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert metadata["ref_litellm_models"]["entries"].value == 2983
    assert metadata["ref_models_dev_models"]["matches"].value["groq"] == 15
    assert metadata["ref_litellm_models"]["source"].value.startswith("bundled")
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {"ref_litellm_price_magnitude", "ref_models_dev_price_magnitude"}
    assert all(evaluation.passed for evaluation in evaluations)


def test_price_magnitude_flags_a_unit_slip():
    """A per-1M price stored as per-1k (0.59 → 590) is flagged; image output models are not judged."""
    frame = pd.DataFrame(
        [
            ("groq", "slipped", {"input_cost_per_1k": Decimal("590"), "output_cost_per_1k": Decimal("0.79")}),
            ("groq", "fine", {"input_cost_per_1k": Decimal("0.00059")}),
            ("groq", "per-token", {"input_cost_per_1k": Decimal("5.9E-10")}),
            (
                "google",
                "imagen",
                {"input_cost_per_1k": Decimal("40"), "modalities": {"input": ["text"], "output": ["image"]}},
            ),
        ],
        columns=["provider_id", "model_id", "facts"],
    )
    result = price_magnitude_result(frame, "facts", "ref_litellm_price_magnitude")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["implausible"].value == 2
    assert "slipped" in result.metadata["prices"].value and "per-token" in result.metadata["prices"].value
