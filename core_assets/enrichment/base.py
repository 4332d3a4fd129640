"""What every inferencer offers: guesses for the fields of a model that no provider or catalog states.

An inferencer receives ModelInputs — what is known *about* a model (id, name, description, a few provider
hints) and which fields are still unknown — and answers an Inference per model. It never answers prices
(SPEC §2): the fields it may fill are INFERABLE_FIELDS and the capability flags.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core_assets.db.engine import dumps
from core_assets.records import CAPABILITIES

INFERABLE_FIELDS: tuple[str, ...] = (
    "context_window",
    "max_output_tokens",
    "modalities",
    "family",
    "parameter_size",
)
# Capability flags an inferencer may set: the registry's own plus two that providers rarely state and an
# orchestrator routes on (a coding model; a safety classifier that is no assistant).
INFERABLE_CAPABILITIES: tuple[str, ...] = (*CAPABILITIES, "code", "moderation")
CAPABILITY_PREFIX = "capabilities."
DESCRIPTION_LIMIT = 600

# The few provider_data entries that say what a model is, per provider (a path of keys each). Prices and
# counters are left out on purpose: a price change must not re-trigger inference.
HINT_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "google": {
        "generation_methods": ("supportedGenerationMethods",),
        "thinking": ("thinking",),
        "base_model": ("baseModelId",),
    },
    "mistral": {"type": ("type",), "capabilities": ("capabilities",)},
    "openrouter": {
        "architecture": ("architecture",),
        "supported_parameters": ("supported_parameters",),
        "hugging_face_id": ("hugging_face_id",),
    },
    "groq": {
        "owned_by": ("owned_by",),
        "input_modalities": ("input_modalities",),
        "output_modalities": ("output_modalities",),
        "supported_features": ("supported_features",),
    },
    "ollama": {
        "family": ("tag", "details", "family"),
        "families": ("tag", "details", "families"),
        "parameter_size": ("tag", "details", "parameter_size"),
        "capabilities": ("show", "capabilities"),
        "remote_model": ("tag", "remote_model"),
    },
}


def _dig(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def model_hints(provider_id: str, provider_data: dict[str, Any] | None) -> dict[str, Any]:
    """The provider_data entries worth showing an inferencer (HINT_PATHS), empty ones left out."""
    hints = {}
    for name, path in HINT_PATHS.get(provider_id, {}).items():
        value = _dig(provider_data or {}, path)
        if value not in (None, "", [], {}):
            hints[name] = value
    return hints


def model_description(provider_data: dict[str, Any] | None) -> str | None:
    description = (provider_data or {}).get("description")
    if not isinstance(description, str) or not description.strip():
        return None
    return " ".join(description.split())[:DESCRIPTION_LIMIT]


def unknown_fields(specs: dict[str, Any]) -> tuple[str, ...]:
    """The inferable fields that merged specs leave unknown; capabilities as `capabilities.<name>`."""
    wanted = [name for name in INFERABLE_FIELDS if specs.get(name) in (None, [], {})]
    capabilities = specs.get("capabilities") or {}
    wanted += [f"{CAPABILITY_PREFIX}{cap}" for cap in INFERABLE_CAPABILITIES if capabilities.get(cap) is None]
    return tuple(wanted)


def restrict(facts: dict[str, Any], wanted: Sequence[str]) -> dict[str, Any]:
    """Only the wanted fields of `facts` that carry a value (capabilities flag by flag)."""
    kept = {
        name: facts[name]
        for name in INFERABLE_FIELDS
        if name in wanted and facts.get(name) not in (None, [], {})
    }
    capabilities = {
        cap: flag
        for cap, flag in (facts.get("capabilities") or {}).items()
        if flag is not None and f"{CAPABILITY_PREFIX}{cap}" in wanted
    }
    if capabilities:
        kept["capabilities"] = capabilities
    return kept


@dataclass(frozen=True)
class ModelInput:
    """What an inferencer is told about one model, and which fields it is asked for."""

    provider_id: str
    model_id: str
    name: str | None
    description: str | None
    hints: dict[str, Any]
    wanted: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.provider_id}/{self.model_id}"

    def prompt_item(self) -> dict[str, Any]:
        item = {"id": self.key, "name": self.name, "description": self.description, "hints": self.hints}
        return {**{k: v for k, v in item.items() if v not in (None, {})}, "fields": list(self.wanted)}

    def input_hash(self, salt: str = "") -> str:
        """sha256 of exactly what the inferencer sees (plus `salt`: who is asked)."""
        return hashlib.sha256((dumps(self.prompt_item()) + salt).encode()).hexdigest()


@dataclass
class Inference:
    """An inferencer's answer for one model: facts restricted to the fields it was asked for."""

    facts: dict[str, Any]
    confidence: float
    # The inferencer that answered ("heuristic", "llm"); its merge source name is "ai:<inferencer>".
    inferencer: str
    model: str | None
    prompt_version: str
    # Why the answer is a fallback (an LLM answer rejected or a failed call); None for a first-choice answer.
    note: str | None = None


@dataclass
class InferenceStats:
    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rejected: int = 0
    fallbacks: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Inferencer(ABC):
    name: str
    prompt_version: str
    # Whether answers are worth keeping in ai_inference_cache (an LLM's are; rules run faster than a lookup).
    cached: bool = False

    def __init__(self) -> None:
        self.stats = InferenceStats()

    def hash_salt(self) -> str:
        """Anything besides the input that changes the answer (the LLM model asked)."""
        return ""

    @abstractmethod
    def infer(self, inputs: Sequence[ModelInput]) -> dict[str, Inference]:
        """An Inference per ModelInput.key. Never raises for a bad answer about one model."""
