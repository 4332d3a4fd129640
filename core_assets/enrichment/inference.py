"""`ai_data`: the fields of each model that neither its provider nor a reference catalog states, filled by
the inferencer chosen with `CORE_INFERENCER` (`heuristic`, the default, or `llm`).

Only fields still unknown after merging provider and reference facts are asked for, prices never. LLM
answers are kept in `ai_inference_cache`, keyed by (provider_id, model_id, input_hash, inferencer,
prompt_version), and read and written in bulk: a re-sync of unchanged models asks the LLM nothing, and a
model whose input changed is asked about alone.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from core_assets.db.engine import write_transaction
from core_assets.db.tables import ai_inference_cache
from core_assets.enrichment.base import (
    Inference,
    Inferencer,
    InferenceStats,
    ModelInput,
    model_description,
    model_hints,
    unknown_fields,
)
from core_assets.enrichment.heuristic import HeuristicInferencer
from core_assets.enrichment.llm import LlmConfig, LlmInferencer
from core_assets.enrichment.merge import AI_PREFIX, PROVIDER, merge_facts
from core_assets.references.catalog import References
from core_assets.settings import ConfigError

INFERENCERS = ("heuristic", "llm")
COLUMNS = ["provider_id", "model_id", "ai_data"]
# Bound parameters per cache query: far below SQLite's and PostgreSQL's limits.
CHUNK = 500


def inferencer_from_env(*, demo: bool = False) -> Inferencer:
    """The inferencer `CORE_INFERENCER` names. Demo mode is offline, so it always uses the heuristic."""
    name = os.environ.get("CORE_INFERENCER", "").strip().lower() or "heuristic"
    if name not in INFERENCERS:
        raise ConfigError(f"CORE_INFERENCER must be one of {', '.join(INFERENCERS)}, got {name!r}")
    if name == "llm" and not demo:
        return LlmInferencer(LlmConfig.from_env())
    return HeuristicInferencer()


@dataclass
class InferenceRun:
    """The result of one inference pass: `frame` has one row per model (ai_data None = nothing inferred)."""

    frame: pd.DataFrame
    inferencer: str
    prompt_version: str
    asked: int = 0
    inferred: int = 0
    cache_hits: int = 0
    stats: InferenceStats = field(default_factory=InferenceStats)


def model_inputs(models: pd.DataFrame, references: References) -> list[ModelInput]:
    """A ModelInput for every model with an inferable field that provider and references leave unknown."""
    inputs = []
    for row in models.itertuples(index=False):
        facts = row.facts or {}
        sources = [
            (PROVIDER, facts),
            *references.sources(row.provider_id, row.model_id, facts.get("aliases") or ()),
        ]
        specs, _ = merge_facts(sources)
        wanted = unknown_fields(specs)
        if wanted:
            inputs.append(
                ModelInput(
                    provider_id=row.provider_id,
                    model_id=row.model_id,
                    name=row.name if isinstance(row.name, str) else None,
                    description=model_description(row.provider_data),
                    hints=model_hints(row.provider_id, row.provider_data),
                    wanted=wanted,
                )
            )
    return inputs


def ai_data(inference: Inference, input_hash: str) -> dict[str, Any] | None:
    """The registry's `ai_data` for one model: the inferred fields plus where they came from."""
    if not inference.facts:
        return None
    data = {
        **inference.facts,
        "source": inference.inferencer,
        "model": inference.model,
        "prompt_version": inference.prompt_version,
        "confidence": inference.confidence,
        "input_hash": input_hash,
    }
    if inference.note:
        data["note"] = inference.note
    return data


def infer_metadata(
    models: pd.DataFrame,
    references: References,
    inferencer: Inferencer,
    engine: Engine | None = None,
    *,
    now: dt.datetime | None = None,
) -> InferenceRun:
    """ai_data for every row of `models` (the normalized_models frame). With an engine, a cached
    inferencer's answers are read from and written to ai_inference_cache."""
    inputs = model_inputs(models, references)
    salt = inferencer.hash_salt()
    hashes = {item.key: item.input_hash(salt) for item in inputs}
    use_cache = inferencer.cached and engine is not None
    cached = read_cache(engine, inferencer, hashes.values()) if use_cache else {}
    answers = {item.key: cached[hashes[item.key]] for item in inputs if hashes[item.key] in cached}
    misses = [item for item in inputs if item.key not in answers]
    fresh = inferencer.infer(misses) if misses else {}
    answers.update(fresh)
    if use_cache:
        # Fallbacks are not kept: the LLM is asked again about those models next time.
        keep = [(item, hashes[item.key], fresh[item.key]) for item in misses if fresh[item.key].note is None]
        write_cache(engine, inferencer, keep, now or dt.datetime.now(dt.UTC))

    data = {item.key: ai_data(answers[item.key], hashes[item.key]) for item in inputs}
    frame = pd.DataFrame(
        [
            (p, m, data.get(f"{p}/{m}"))
            for p, m in zip(models["provider_id"], models["model_id"], strict=True)
        ],
        columns=COLUMNS,
    )
    return InferenceRun(
        frame=frame,
        inferencer=inferencer.name,
        prompt_version=inferencer.prompt_version,
        asked=len(misses),
        inferred=sum(value is not None for value in data.values()),
        cache_hits=len(inputs) - len(misses),
        stats=inferencer.stats,
    )


def merged_specs(
    models: pd.DataFrame, references: References, ai_frame: pd.DataFrame
) -> list[dict[str, Any]]:
    """Each model's specs from provider, references and ai_data, without overrides (what coverage after
    inference is measured on; model_specs does the full merge)."""
    ai = dict(
        zip(zip(ai_frame["provider_id"], ai_frame["model_id"], strict=True), ai_frame["ai_data"], strict=True)
    )
    merged = []
    for provider_id, model_id, facts in zip(
        models["provider_id"], models["model_id"], models["facts"], strict=True
    ):
        facts = facts or {}
        inferred = ai.get((provider_id, model_id))
        sources = [(PROVIDER, facts), *references.sources(provider_id, model_id, facts.get("aliases") or ())]
        if inferred:
            sources.append((AI_PREFIX + inferred["source"], inferred))
        merged.append(merge_facts(sources)[0])
    return merged


def _chunks(values: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def read_cache(engine: Engine, inferencer: Inferencer, hashes: Iterable[str]) -> dict[str, Inference]:
    """Cached answers by input hash (the hash covers provider, model and everything asked)."""
    table = ai_inference_cache
    found: dict[str, Inference] = {}
    with engine.connect() as conn:
        for chunk in _chunks(sorted(set(hashes))):
            rows = conn.execute(
                sa.select(table.c.input_hash, table.c.result).where(
                    table.c.inferencer == inferencer.name,
                    table.c.prompt_version == inferencer.prompt_version,
                    table.c.input_hash.in_(chunk),
                )
            )
            for input_hash, result in rows:
                found[input_hash] = Inference(
                    facts=result["facts"],
                    confidence=result["confidence"],
                    inferencer=inferencer.name,
                    model=result.get("model"),
                    prompt_version=inferencer.prompt_version,
                )
    return found


def write_cache(
    engine: Engine, inferencer: Inferencer, answers: list[tuple[ModelInput, str, Inference]], now: dt.datetime
) -> None:
    if not answers:
        return
    rows = [
        {
            "provider_id": item.provider_id,
            "model_id": item.model_id,
            "input_hash": input_hash,
            "inferencer": inferencer.name,
            "prompt_version": inferencer.prompt_version,
            "result": {
                "facts": inference.facts,
                "confidence": inference.confidence,
                "model": inference.model,
            },
            "created_at": now,
        }
        for item, input_hash, inference in answers
    ]
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with write_transaction(engine) as conn:
        for chunk in _chunks(rows, CHUNK // 10):
            # Two syncs may infer the same model at once; the first answer stored stays.
            conn.execute(insert(ai_inference_cache).values(chunk).on_conflict_do_nothing())
