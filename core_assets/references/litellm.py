"""LiteLLM's `model_prices_and_context_window.json`: a JSON object keyed by model name, prices in USD per
token (floats). The id mapping onto our providers is in core_assets/references/README.md."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from core_assets.http import HttpClient
from core_assets.records import PayloadError
from core_assets.references.facts import (
    Parsed,
    iso_date,
    ollama_ids,
    positive_int,
    price_facts,
    ranked,
    string_list,
)
from core_assets.units import per_token_to_per_1k

NAME = "litellm"
URL_VARIABLE = "CORE_LITELLM_URL"
DEFAULT_URL = "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
BUNDLED_FILE = "litellm_model_prices.json.gz"

# litellm_provider → our provider_id. Other LiteLLM providers (vertex_ai, codestral, …) serve the same
# models through other endpoints and prices, so they are not ours.
PROVIDERS = {
    "gemini": "google",
    "mistral": "mistral",
    "openrouter": "openrouter",
    "groq": "groq",
    "ollama": "ollama",
}

# `mode` is the LiteLLM endpoint a model is called through: a statement about chat and embeddings.
CHAT_MODES = frozenset({"chat", "responses"})
OTHER_MODES = frozenset(
    {
        "completion",
        "embedding",
        "image_generation",
        "image_edit",
        "audio_transcription",
        "audio_speech",
        "video_generation",
        "rerank",
        "moderation",
        "ocr",
        "search",
    }
)
SUPPORTS = {
    "supports_function_calling": "tools",
    "supports_vision": "vision",
    "supports_response_schema": "json_mode",
    "supports_reasoning": "reasoning",
}

# Rank of a key spelling: `gemini/<id>` beats a bare `<id>` that LiteLLM also files under gemini, and
# both beat an Ollama `:latest` spelling derived from an untagged name.
_PREFIXED, _BARE, _DERIVED = 0, 1, 2


def url() -> str:
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def fetch(http: HttpClient) -> Any:
    """The live catalog as decoded JSON. Raises core_assets.http.FetchError."""
    return http.request_json("GET", url(), what="LiteLLM price catalog").data


def entry_facts(entry: dict[str, Any]) -> dict[str, Any]:
    """Facts from one LiteLLM entry. LiteLLM omits a `supports_*` flag when it is unknown *or* false, so
    only a flag that is present says anything."""
    facts: dict[str, Any] = {}
    context = positive_int(entry.get("max_input_tokens"))
    if context:
        # `max_tokens` is deliberately ignored: LiteLLM's own schema says it means either limit.
        facts["context_window"] = context
    max_output = positive_int(entry.get("max_output_tokens"))
    if max_output:
        facts["max_output_tokens"] = max_output
    facts.update(
        price_facts(
            entry.get("input_cost_per_token"), entry.get("output_cost_per_token"), per_token_to_per_1k
        )
    )
    capabilities: dict[str, bool] = {}
    mode = entry.get("mode")
    if mode in CHAT_MODES or mode in OTHER_MODES:
        capabilities["chat"] = mode in CHAT_MODES
        capabilities["embeddings"] = mode == "embedding"
    for key, capability in SUPPORTS.items():
        if isinstance(entry.get(key), bool):
            capabilities[capability] = entry[key]
    if capabilities:
        facts["capabilities"] = capabilities
    inputs = string_list(entry.get("supported_modalities"))
    outputs = string_list(entry.get("supported_output_modalities"))
    if inputs and outputs:
        facts["modalities"] = {"input": inputs, "output": outputs}
    deprecation = iso_date(entry.get("deprecation_date"))
    if deprecation:
        facts["deprecation_date"] = deprecation
    return facts


def parse(document: Any) -> Parsed:
    """Facts per (provider_id, model_id) of our providers. Raises PayloadError when the document is not LiteLLM's shape."""
    if not isinstance(document, dict):
        raise PayloadError(
            f"LiteLLM catalog: expected a JSON object keyed by model name, got {type(document).__name__}"
        )
    entries = 0
    candidates = []
    mapped: Counter = Counter()
    for key, entry in document.items():
        if key == "sample_spec" or not isinstance(entry, dict):
            continue
        entries += 1
        litellm_provider = entry.get("litellm_provider")
        provider_id = PROVIDERS.get(litellm_provider)
        if provider_id is None:
            continue
        prefix = f"{litellm_provider}/"
        rank = _PREFIXED if key.startswith(prefix) else _BARE
        model_id = key.removeprefix(prefix)
        if not model_id:
            continue
        facts = entry_facts(entry)
        if not facts:
            continue
        ids = ollama_ids(model_id, cloud=False) if provider_id == "ollama" else [model_id]
        mapped[provider_id] += 1
        candidates.append((rank, (provider_id, ids[0]), facts))
        candidates.extend((_DERIVED, (provider_id, other), facts) for other in ids[1:])
    if not entries:
        raise PayloadError("LiteLLM catalog: no model entries")
    return ranked(candidates, entries, mapped)
