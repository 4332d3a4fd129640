"""models.dev's `api.json`: {provider_key: {id, name, ..., models: {model_id: {...}}}}, prices in USD per
1M tokens. The id mapping onto our providers is in core_assets/references/README.md."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from core_assets.http import HttpClient
from core_assets.records import PayloadError
from core_assets.references.facts import Parsed, ollama_ids, positive_int, price_facts, ranked, string_list
from core_assets.units import per_million_to_per_1k

NAME = "models.dev"
URL_VARIABLE = "CORE_MODELS_DEV_URL"
DEFAULT_URL = "https://models.dev/api.json"
BUNDLED_FILE = "models_dev_api.json.gz"

# models.dev provider key → our provider_id. `ollama-cloud` is ollama.com's hosted catalog, which a local
# Ollama lists too (see facts.ollama_ids).
PROVIDERS = {
    "google": "google",
    "mistral": "mistral",
    "openrouter": "openrouter",
    "groq": "groq",
    "ollama-cloud": "ollama",
}

# models.dev says "pdf" where OpenRouter (the provider that states modalities) says "file".
MODALITY_NAMES = {"pdf": "file"}

_OWN_ID, _DERIVED = 0, 1


def url() -> str:
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def fetch(http: HttpClient) -> Any:
    """The live catalog as decoded JSON. Raises core_assets.http.FetchError."""
    return http.request_json("GET", url(), what="models.dev catalog").data


def entry_facts(model: dict[str, Any]) -> dict[str, Any]:
    """Facts from one models.dev model. Its flags are required booleans there, so each one is a statement."""
    facts: dict[str, Any] = {}
    limit = model.get("limit") if isinstance(model.get("limit"), dict) else {}
    # models.dev writes 0 for "no token limit applies" (whisper, TTS): unknown here, not a zero window.
    context = positive_int(limit.get("context"))
    if context:
        facts["context_window"] = context
    max_output = positive_int(limit.get("output"))
    if max_output:
        facts["max_output_tokens"] = max_output
    cost = model.get("cost") if isinstance(model.get("cost"), dict) else {}
    facts.update(price_facts(cost.get("input"), cost.get("output"), per_million_to_per_1k))
    capabilities: dict[str, bool] = {}
    tool_call = model.get("tool_call")
    if isinstance(tool_call, (bool, dict)):
        # A table ({streaming, parallel, …}) describes how tools work, so tools work.
        capabilities["tools"] = bool(tool_call) if isinstance(tool_call, bool) else True
    for key, capability in (("reasoning", "reasoning"), ("structured_output", "json_mode")):
        if isinstance(model.get(key), bool):
            capabilities[capability] = model[key]
    modalities = model.get("modalities") if isinstance(model.get("modalities"), dict) else {}
    inputs = string_list(modalities.get("input"))
    outputs = string_list(modalities.get("output"))
    if inputs and outputs:
        facts["modalities"] = {
            "input": [MODALITY_NAMES.get(m, m) for m in inputs],
            "output": [MODALITY_NAMES.get(m, m) for m in outputs],
        }
        capabilities["vision"] = "image" in inputs
    if capabilities:
        facts["capabilities"] = capabilities
    if isinstance(model.get("family"), str) and model["family"]:
        facts["family"] = model["family"]
    if model.get("status") == "deprecated":
        # models.dev gives no date, and `deprecation_date` is a date: this extra key carries the status.
        facts["status"] = "deprecated"
    return facts


def parse(document: Any) -> Parsed:
    """Facts per (provider_id, model_id) of our providers. Raises PayloadError when the document is not api.json's shape."""
    if not isinstance(document, dict):
        raise PayloadError(
            f"models.dev catalog: expected a JSON object keyed by provider, got {type(document).__name__}"
        )
    entries = 0
    candidates = []
    mapped: Counter = Counter()
    for provider_key, provider in document.items():
        models = provider.get("models") if isinstance(provider, dict) else None
        if not isinstance(models, dict):
            continue
        entries += len(models)
        provider_id = PROVIDERS.get(provider_key)
        if provider_id is None:
            continue
        for model_id, model in models.items():
            if not isinstance(model, dict) or not model_id:
                continue
            facts = entry_facts(model)
            if not facts:
                continue
            ids = ollama_ids(model_id, cloud=True) if provider_id == "ollama" else [model_id]
            mapped[provider_id] += 1
            candidates.append((_OWN_ID, (provider_id, ids[0]), facts))
            candidates.extend((_DERIVED, (provider_id, other), facts) for other in ids[1:])
    if not entries:
        raise PayloadError("models.dev catalog: no provider with models")
    return ranked(candidates, entries, mapped)
