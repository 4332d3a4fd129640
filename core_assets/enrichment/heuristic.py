"""The default inferencer: deterministic rules over a model's id, name, description and provider hints.

Rules run strongest first and the first rule to state a field wins. Structural hints a provider gives
(Gemini's generation methods, Ollama's capability list and details) are trusted more than markers in a
name ("embed", "whisper", "-vl", "70b"), which is what `confidence` reports: the weakest rule used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from core_assets.enrichment.base import CAPABILITY_PREFIX, Inference, Inferencer, ModelInput, restrict

RULES_VERSION = "rules-1"
SIGNAL = 0.9
MARKER = 0.6

TEXT = ["text"]
# Modalities use content types: a transcription's output is text, speech is audio.
KIND_MODALITIES = {
    "embedding": {"input": TEXT, "output": ["embeddings"]},
    "transcription": {"input": ["audio"], "output": TEXT},
    "speech": {"input": TEXT, "output": ["audio"]},
    "image": {"input": TEXT, "output": ["image"]},
    "video": {"input": TEXT, "output": ["video"]},
}
GEMINI_MODALITIES = {"input": ["text", "image", "audio", "video"], "output": TEXT}

# Non-chat kinds by marker word, checked in this order ("flux-tts" is speech, not an image model).
KIND_MARKERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("embedding", frozenset({"embed", "embedding", "embeddings"})),
    ("rerank", frozenset({"rerank", "reranker"})),
    ("transcription", frozenset({"whisper", "transcribe", "transcription", "stt", "asr"})),
    ("speech", frozenset({"tts", "orpheus", "speech"})),
    ("guard", frozenset({"guard", "safeguard", "moderation", "shieldgemma"})),
    ("video", frozenset({"veo", "sora", "kling"})),
    ("image", frozenset({"imagen", "imagine", "dall", "diffusion", "sdxl"})),
)
DESCRIPTION_KINDS = (
    ("embedding", re.compile(r"\bembedding model\b")),
    ("transcription", re.compile(r"\b(speech-to-text|transcription model)\b")),
    ("speech", re.compile(r"\btext-to-speech\b")),
)
VISION_MARKERS = frozenset({"vision", "vl", "llava", "bakllava", "pixtral", "vlm", "moondream"})
CODE_MARKERS = frozenset(
    {"coder", "codestral", "devstral", "codellama", "codegemma", "starcoder", "codegeex4", "code"}
)
CHAT_MARKERS = frozenset({"instruct", "chat", "it", "versatile", "instant"})
REASONING_MARKERS = frozenset({"thinking", "reasoner", "reasoning", "r1", "qwq", "magistral"})
# Providers that serve every model through chat completions unless it is one of the non-chat kinds.
CHAT_SERVING = frozenset({"groq", "openrouter"})
# Groq's older ids end in their context window (llama3-70b-8192, mixtral-8x7b-32768).
CONTEXT_SUFFIXES = frozenset({2048, 4096, 8192, 16384, 32768, 65536, 131072})

# Family names by id prefix, longest first so that "gpt-oss" wins over "gpt" and "codellama" over "code…".
FAMILY_NAMES = """
    gemini gemma llama mistral mixtral ministral magistral codestral devstral pixtral voxtral qwen qwq deepseek
    gpt-oss gpt claude phi command granite kimi glm minimax nemotron whisper grok llava olmo hermes falcon yi
    codellama starcoder nomic orpheus allam compound imagen veo sonar
"""
FAMILIES = tuple(sorted(FAMILY_NAMES.split(), key=len, reverse=True))

_SEPARATORS = re.compile(r"[\s/:_.\-]+")
_MIXTURE = re.compile(r"(?<![a-z0-9])(\d+)x(\d+(?:\.\d+)?)([bmt])(?![a-z0-9])")
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bmt])(?![a-z0-9])")
_CONTEXT = re.compile(r"-(\d{4,6})$")


def words(*texts: str | None) -> set[str]:
    return {word for text in texts if text for word in _SEPARATORS.split(text.lower()) if word}


def parameter_size(text: str) -> str | None:
    """`70b` → "70B", `8x7b` → "8x7B", `137m` → "137M" (the first size named in the text)."""
    text = text.lower()
    mixture = _MIXTURE.search(text)
    if mixture:
        return f"{mixture.group(1)}x{mixture.group(2)}{mixture.group(3).upper()}"
    size = _SIZE.search(text)
    return f"{size.group(1)}{size.group(2).upper()}" if size else None


def count_to_size(count: str) -> str | None:
    """Ollama cloud reports a raw parameter count ("116829156672"): as a label ("117B")."""
    if not count.isdigit():
        return None
    number = int(count)
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6)):
        if number >= scale:
            return f"{round(number / scale)}{unit}"
    return None


def family(model_name: str) -> str | None:
    name = model_name.lower()
    return next((f for f in FAMILIES if name.startswith(f)), None)


class _Findings:
    """Facts with the confidence of the rule that stated each; the first rule to state a field wins."""

    def __init__(self) -> None:
        self.facts: dict[str, Any] = {}
        self.capabilities: dict[str, bool] = {}
        self.confidence: dict[str, float] = {}

    def fact(self, name: str, value: Any, confidence: float) -> None:
        if value is not None and name not in self.confidence:
            self.facts[name] = value
            self.confidence[name] = confidence

    def capability(self, name: str, value: bool, confidence: float) -> None:
        if name not in self.capabilities:
            self.capabilities[name] = value
            self.confidence[CAPABILITY_PREFIX + name] = confidence

    def result(self, wanted: Sequence[str]) -> tuple[dict[str, Any], float]:
        facts = restrict({**self.facts, "capabilities": self.capabilities}, wanted)
        used = [self.confidence[name] for name in facts if name != "capabilities"]
        used += [self.confidence[CAPABILITY_PREFIX + cap] for cap in facts.get("capabilities", {})]
        return facts, min(used, default=0.0)


def _not_chat(found: _Findings, confidence: float) -> None:
    """Embedding, speech, image and video models answer no chat, call no tools and do not reason."""
    found.capability("chat", False, confidence)
    found.capability("tools", False, confidence)
    found.capability("reasoning", False, confidence)


def _kind(marker_words: set[str], description: str | None) -> str | None:
    for kind, markers in KIND_MARKERS:
        if marker_words & markers:
            return kind
    for kind, pattern in DESCRIPTION_KINDS:
        if description and pattern.search(description.lower()):
            return kind
    return None


def _google_signals(hints: dict[str, Any], kind: str | None, found: _Findings) -> None:
    methods = set(hints.get("generation_methods") or ())
    if hints.get("thinking") is True:
        found.capability("reasoning", True, SIGNAL)
    if "embedContent" in methods and "generateContent" not in methods:
        found.capability("embeddings", True, SIGNAL)
        _not_chat(found, SIGNAL)
        found.fact("modalities", KIND_MODALITIES["embedding"], SIGNAL)
    elif "predictLongRunning" in methods:
        _not_chat(found, SIGNAL)
        found.fact("modalities", KIND_MODALITIES["video"], SIGNAL)
    elif "predict" in methods:
        _not_chat(found, SIGNAL)
        found.fact("modalities", KIND_MODALITIES["image"], SIGNAL)
    elif "generateContent" in methods and kind is None:
        found.capability("chat", True, SIGNAL)
        found.capability("embeddings", False, SIGNAL)


def _ollama_signals(hints: dict[str, Any], found: _Findings) -> None:
    capabilities = hints.get("capabilities")
    if isinstance(capabilities, list):
        # /api/show lists every capability the model's template supports, so absence is a "no".
        found.capability("embeddings", "embedding" in capabilities, SIGNAL)
        found.capability("chat", "completion" in capabilities, SIGNAL)
        found.capability("tools", "tools" in capabilities, SIGNAL)
        found.capability("vision", "vision" in capabilities, SIGNAL)
        found.capability("reasoning", "thinking" in capabilities, SIGNAL)
    families = hints.get("families")
    if isinstance(families, list) and any(f in ("clip", "mllama") for f in families):
        found.capability("vision", True, SIGNAL)
    if isinstance(hints.get("family"), str):
        found.fact("family", hints["family"], SIGNAL)
    size = hints.get("parameter_size")
    if isinstance(size, str):
        found.fact("parameter_size", count_to_size(size) or parameter_size(size), SIGNAL)


def infer_facts(item: ModelInput) -> tuple[dict[str, Any], float]:
    """(facts restricted to item.wanted, confidence) for one model."""
    found = _Findings()
    model_name = item.model_id.rsplit("/", 1)[-1]
    marker_words = words(model_name, item.name)
    kind = _kind(marker_words, item.description)
    if item.provider_id == "google":
        _google_signals(item.hints, kind, found)
    elif item.provider_id == "ollama":
        _ollama_signals(item.hints, found)

    if kind == "guard":
        found.capability("moderation", True, MARKER)
        found.capability("chat", False, MARKER)
    elif kind is not None:
        _not_chat(found, MARKER)
        found.capability("embeddings", kind == "embedding", MARKER)
        found.fact("modalities", KIND_MODALITIES.get(kind), MARKER)
    elif "base" in marker_words:
        found.capability("chat", False, MARKER)
    elif marker_words & CHAT_MARKERS or item.provider_id in CHAT_SERVING:
        found.capability("chat", True, MARKER)
        found.capability("embeddings", False, MARKER)

    if marker_words & VISION_MARKERS:
        found.capability("vision", True, MARKER)
        if kind is None:
            found.fact("modalities", {"input": ["text", "image"], "output": TEXT}, MARKER)
    if (
        kind is None
        and item.provider_id == "google"
        and model_name.startswith("gemini-")
        and found.capabilities.get("chat")
    ):
        # Every Gemini chat model since 1.5 reads images, audio and video.
        found.capability("vision", True, MARKER)
        found.fact("modalities", GEMINI_MODALITIES, MARKER)
    if marker_words & CODE_MARKERS:
        found.capability("code", True, MARKER)
    if marker_words & REASONING_MARKERS:
        found.capability("reasoning", True, MARKER)

    found.fact("parameter_size", parameter_size(model_name), MARKER)
    found.fact("family", family(model_name), MARKER)
    suffix = _CONTEXT.search(model_name)
    if suffix and int(suffix.group(1)) in CONTEXT_SUFFIXES:
        found.fact("context_window", int(suffix.group(1)), MARKER)
    return found.result(item.wanted)


class HeuristicInferencer(Inferencer):
    name = "heuristic"
    prompt_version = RULES_VERSION

    def infer(self, inputs: Sequence[ModelInput]) -> dict[str, Inference]:
        answers = {}
        for item in inputs:
            facts, confidence = infer_facts(item)
            answers[item.key] = Inference(facts, confidence, self.name, None, self.prompt_version)
        return answers
