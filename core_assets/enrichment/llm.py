"""The `llm` inferencer: asks any OpenAI-compatible `POST <base>/chat/completions` endpoint about many
models per request, and trusts an answer only after validation.

Each model's answer is validated on its own (pydantic, strict types, ranges); one that is invalid —
including any attempt to state a price — is rejected and that model falls back to the heuristic, as do the
models of a batch whose call failed or whose reply is not the JSON asked for. Nothing here raises for a
bad answer: the sync goes on (SPEC §7).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core_assets.db.engine import dumps
from core_assets.enrichment.base import Inference, Inferencer, ModelInput, restrict
from core_assets.enrichment.heuristic import HeuristicInferencer
from core_assets.http import FetchError, HttpClient
from core_assets.settings import ConfigError, HttpLimits, all_api_keys

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 20
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 120.0
# After this many failed calls in a row the endpoint is taken to be down: the remaining batches fall back
# to the heuristic at once instead of each waiting out its retries.
MAX_CONSECUTIVE_FAILURES = 3
ENDPOINT_DOWN = f"LLM not asked: the endpoint failed {MAX_CONSECUTIVE_FAILURES} calls in a row"
# Bounds of a believable answer: the longest context window announced today is 10M tokens.
MAX_TOKENS = 20_000_000

SYSTEM_PROMPT = """\
You describe large language models for a model registry. The user sends JSON {"models": [...]}; each item
has an "id" (provider/model), optionally "name", "description" and provider "hints", and "fields": the
only fields you may fill for that model. Answer with one JSON object and nothing else:
{"models": [{"id": <the item's id>, "confidence": <0..1, how sure you are overall>, <field>: <value>, ...}]}
Field values:
- context_window, max_output_tokens: integer token counts
- modalities: {"input": [...], "output": [...]} using text, image, audio, video, file, embeddings
- family: short lowercase model family name (e.g. "llama", "gemini", "qwen")
- parameter_size: like "70B", "8x7B", "137M"
- capabilities: {"chat"|"tools"|"vision"|"json_mode"|"reasoning"|"embeddings"|"code"|"moderation": true|false}
  for the "capabilities.<name>" fields asked
Rules: state only what you know about this exact model; use null when unsure. Never give prices or costs.
Answer every item once, with its id exactly as sent, and no other ids."""

PROMPT_VERSION = "llm-1." + hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()[:8]

Modality = Literal["text", "image", "audio", "video", "file", "embeddings"]
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CapabilitiesAnswer(_Strict):
    chat: bool | None = None
    tools: bool | None = None
    vision: bool | None = None
    json_mode: bool | None = None
    reasoning: bool | None = None
    embeddings: bool | None = None
    code: bool | None = None
    moderation: bool | None = None


class ModalitiesAnswer(_Strict):
    input: list[Modality] = Field(min_length=1, max_length=6)
    output: list[Modality] = Field(min_length=1, max_length=6)


class ModelAnswer(_Strict):
    """One model's answer. Unknown keys are refused, so a price can never slip through."""

    id: str
    confidence: float = Field(ge=0, le=1)
    context_window: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    max_output_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    modalities: ModalitiesAnswer | None = None
    capabilities: CapabilitiesAnswer | None = None
    family: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")
    parameter_size: str | None = Field(default=None, pattern=r"^(\d+x)?\d+(\.\d+)?[MBT]$")

    def facts(self) -> dict[str, Any]:
        return self.model_dump(exclude={"id", "confidence"}, exclude_none=True)


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    api_key: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls) -> LlmConfig:
        base_url = os.environ.get("CORE_LLM_BASE_URL", "").strip().rstrip("/")
        model = os.environ.get("CORE_LLM_MODEL", "").strip()
        if not base_url or not model:
            raise ConfigError(
                "CORE_INFERENCER=llm needs CORE_LLM_BASE_URL (an OpenAI-compatible API, e.g. "
                "https://openrouter.ai/api/v1) and CORE_LLM_MODEL"
            )
        return cls(
            base_url=base_url,
            model=model,
            api_key=os.environ.get("CORE_LLM_API_KEY", "").strip() or None,
            batch_size=_positive("CORE_LLM_BATCH_SIZE", DEFAULT_BATCH_SIZE),
            concurrency=_positive("CORE_LLM_CONCURRENCY", DEFAULT_CONCURRENCY),
            timeout=float(_positive("CORE_LLM_TIMEOUT", int(DEFAULT_TIMEOUT))),
        )


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


class BadReply(Exception):
    """A reply that holds no usable answer for any model of the batch."""


def answers_from_content(content: str) -> list[Any]:
    """The `models` list of a reply's message content. Raises BadReply."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
        raise BadReply(f"answer is not JSON: {text[:60]!r}") from None
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise BadReply('answer is not an object with a "models" list')
    return document["models"]


def validate_answer(item: Any, secrets: Sequence[str] = ()) -> ModelAnswer:
    """One model's answer, validated. Raises ValueError with a short reason. An answer that repeats one of
    `secrets` (an API key echoed by a proxy or a prompt-injected model) is refused whole."""
    if any(secret in dumps(item) for secret in secrets):
        raise ValueError("repeats a configured API key")
    if isinstance(item, dict):
        priced = sorted(key for key in item if "pric" in key.lower() or "cost" in key.lower())
        if priced:
            raise ValueError(f"gave a price ({', '.join(priced)}), which is never inferred")
    try:
        answer = ModelAnswer.model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        raise ValueError(f"{where}: {first['msg']}") from None
    if (
        answer.context_window
        and answer.max_output_tokens
        and answer.max_output_tokens > answer.context_window
    ):
        raise ValueError("max_output_tokens exceeds context_window")
    return answer


class LlmInferencer(Inferencer):
    name = "llm"
    prompt_version = PROMPT_VERSION
    cached = True

    def __init__(self, config: LlmConfig):
        super().__init__()
        self.config = config
        self._fallback = HeuristicInferencer()
        self._lock = threading.Lock()
        self._failures_in_a_row = 0

    def hash_salt(self) -> str:
        # A different model would answer differently: switching CORE_LLM_MODEL re-infers.
        return self.config.model

    def infer(self, inputs: Sequence[ModelInput]) -> dict[str, Inference]:
        size = self.config.batch_size
        batches = [list(inputs[i : i + size]) for i in range(0, len(inputs), size)]
        if not batches:
            return {}
        workers = min(self.config.concurrency, len(batches))
        with (
            HttpClient(self._limits(), secrets=[self.config.api_key or ""]) as http,
            ThreadPoolExecutor(workers) as pool,
        ):
            outcomes = list(pool.map(lambda batch: self._ask(http, batch), batches))
        skipped = sum(len(batch) for batch, outcome in zip(batches, outcomes, strict=True) if outcome.skipped)
        if skipped:
            self._record(
                _BatchOutcome(skipped=True, warnings=[f"{ENDPOINT_DOWN}; {skipped} model(s) not asked"])
            )
        answers: dict[str, Inference] = {}
        for batch, outcome in zip(batches, outcomes, strict=True):
            self._record(outcome)
            answers.update(outcome.answers)
            fallback = [item for item in batch if item.key not in outcome.answers]
            for key, inference in self._fallback.infer(fallback).items():
                inference.note = outcome.problems.get(key, "no LLM answer for this model")
                answers[key] = inference
            self.stats.fallbacks += len(fallback)
        return answers

    def _limits(self) -> HttpLimits:
        limits = HttpLimits.from_env()
        return dataclasses.replace(
            limits,
            timeout=self.config.timeout,
            max_total_seconds=max(limits.max_total_seconds, 3 * self.config.timeout),
        )

    def _endpoint_down(self) -> bool:
        with self._lock:
            return self._failures_in_a_row >= MAX_CONSECUTIVE_FAILURES

    def _call_ended(self, failed: bool) -> None:
        with self._lock:
            self._failures_in_a_row = self._failures_in_a_row + 1 if failed else 0

    def _record(self, outcome: _BatchOutcome) -> None:
        stats = self.stats
        stats.calls += 0 if outcome.skipped else 1
        stats.failed_calls += outcome.failed
        stats.rejected += outcome.rejected
        stats.prompt_tokens += outcome.prompt_tokens
        stats.completion_tokens += outcome.completion_tokens
        for message in outcome.warnings:
            log.warning(message)
        stats.warnings.extend(outcome.warnings)

    def _ask(self, http: HttpClient, batch: list[ModelInput]) -> _BatchOutcome:
        """One request for a batch. Runs in a worker thread: apart from the locked failure count it only
        touches its own outcome."""
        outcome = _BatchOutcome()
        keys = {item.key: item for item in batch}
        if self._endpoint_down():
            outcome.skipped = True
            outcome.reject_all(keys, ENDPOINT_DOWN, warn=False)
            return outcome
        try:
            response = http.request_json(
                "POST",
                f"{self.config.base_url}/chat/completions",
                headers={"authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else None,
                json_body=self._request_body(batch),
                what="LLM inference",
            )
            outcome.count_usage(response.data)
        except FetchError as exc:
            self._call_ended(failed=True)
            outcome.failed = 1
            outcome.reject_all(keys, f"LLM call failed: {exc}")
            return outcome
        self._call_ended(failed=False)
        try:
            items = answers_from_content(_content(response.data))
        except BadReply as exc:
            outcome.rejected = len(batch)
            outcome.reject_all(keys, f"LLM answer rejected: {exc}")
            return outcome

        secrets = all_api_keys()
        for item in items:
            # Only an id that was asked about is repeated in a warning: the rest is the model's own text.
            claimed = item.get("id") if isinstance(item, dict) and item.get("id") in keys else None
            try:
                answer = validate_answer(item, secrets)
                if answer.id not in keys:
                    raise ValueError("answers for an id that was not asked about")
                if answer.id in outcome.answers:
                    raise ValueError("answered twice")
            except ValueError as exc:
                outcome.rejected += 1
                outcome.warnings.append(f"LLM answer rejected for {claimed or 'an item'}: {exc}")
                if claimed in keys and claimed not in outcome.answers:
                    outcome.problems[claimed] = f"LLM answer rejected: {exc}"
                continue
            outcome.problems.pop(answer.id, None)
            outcome.answers[answer.id] = Inference(
                restrict(answer.facts(), keys[answer.id].wanted),
                answer.confidence,
                self.name,
                self.config.model,
                self.prompt_version,
            )
        return outcome

    def _request_body(self, batch: list[ModelInput]) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": dumps({"models": [item.prompt_item() for item in batch]})},
            ],
        }


def _content(data: Any) -> str:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise BadReply("reply has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise BadReply("reply content is not text")
    return content


@dataclass
class _BatchOutcome:
    answers: dict[str, Inference] = field(default_factory=dict)
    # Why a model of the batch has no accepted answer, by ModelInput.key.
    problems: dict[str, str] = field(default_factory=dict)
    failed: int = 0
    # Not asked at all: the endpoint was already down.
    skipped: bool = False
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    warnings: list[str] = field(default_factory=list)

    def reject_all(self, keys: dict[str, ModelInput], reason: str, *, warn: bool = True) -> None:
        self.problems = dict.fromkeys(keys, reason)
        if warn:
            self.warnings.append(f"{reason} (batch of {len(keys)}, falling back to the heuristic)")

    def count_usage(self, data: Any) -> None:
        usage = data.get("usage") if isinstance(data, dict) else None
        if not isinstance(usage, dict):
            return
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        self.prompt_tokens += prompt if isinstance(prompt, int) else 0
        self.completion_tokens += completion if isinstance(completion, int) else 0
