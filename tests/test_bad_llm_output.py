"""Issue 7, item 8 — bad LLM output through the real sync: replies that are not JSON, cut short, nested past
the decoder, or list other models than asked; answers with wrong types, out-of-range values, hallucinated
prices, control characters or an id not asked about. Each is rejected for its model (or its batch), that
model falls back to the heuristic with a note, no price ever comes from the LLM, and the sync succeeds.

test_inference.py covers the same rules on the inferencer alone; here the whole job runs on top of them.
"""

from __future__ import annotations

import json
import threading

import pytest

from core_assets.records import PRICE_FIELDS
from tests.support.fake_llm import well_behaved
from tests.support.sync import check_evaluations, registry_rows, run_sync

BATCH_SIZE = 25
# Replies for whole batches, by batch number.
BAD_REPLIES = {
    0: "Sure! Here is what I know about these models.",
    1: '{"models": [{"id": "groq/',
    2: "[" * 100_000 + "]" * 100_000,
    4: '{"models": null}',
}
MISMATCHED_BATCH = 3  # answers only for models nobody asked about
MIXED_BATCH = 5  # one bad answer per model, different each time


def bad_answers(items: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """One answer per item, the first eleven spoiled each in its own way; and what each spoiling is."""
    answers = json.loads(well_behaved(items))["models"]
    spoilers = [
        ("wrong type", lambda a: a.update(context_window="big")),
        ("wrong capability type", lambda a: a.update(capabilities={"tools": "yes"})),
        ("price", lambda a: a.update(input_cost_per_1k=0.001)),
        ("price in another key", lambda a: a.update(pricing={"prompt": "0.1"})),
        ("out of range", lambda a: a.update(context_window=10**12)),
        ("confidence out of range", lambda a: a.update(confidence=7)),
        ("output beyond context", lambda a: a.update(context_window=1000, max_output_tokens=2**20)),
        ("control characters", lambda a: a.update(family="llama\x00\x1b[2J")),
        ("confidence NaN", lambda a: a.update(confidence=float("nan"))),
        ("id not asked about", lambda a: a.update(id=a["id"].upper())),
        ("nested price", lambda a: a.update(capabilities={"price": True})),
    ]
    spoiled = {}
    for answer, (what, spoil) in zip(answers, spoilers, strict=False):
        spoiled[answer["id"]] = what
        spoil(answer)
    return answers, spoiled


@pytest.fixture
def scripted_llm(fake_llm, monkeypatch):
    """The fake LLM answering batch by batch: BAD_REPLIES, a mismatched list, a batch of spoiled answers
    (with one model answered twice), then well-behaved answers. Returns the ids of each kind."""
    monkeypatch.setenv("CORE_LLM_BATCH_SIZE", str(BATCH_SIZE))
    monkeypatch.setenv("CORE_LLM_CONCURRENCY", "1")
    monkeypatch.setenv("CORE_REFERENCES", "offline")
    lock, seen = threading.Lock(), {"batches": 0}
    kinds: dict[str, dict[str, str]] = {"batch": {}, "model": {}, "twice": {}}

    def answer(items: list[dict]) -> str:
        with lock:
            number = seen["batches"]
            seen["batches"] += 1
        ids = [item["id"] for item in items]
        if number in BAD_REPLIES:
            kinds["batch"].update(dict.fromkeys(ids, "rejected"))
            return BAD_REPLIES[number]
        if number == MISMATCHED_BATCH:
            kinds["batch"].update(dict.fromkeys(ids, "no LLM answer"))
            ghosts = [{**a, "id": f"ghost/{a['id']}"} for a in json.loads(well_behaved(items))["models"]]
            return json.dumps({"models": ghosts})
        if number == MIXED_BATCH:
            answers, spoiled = bad_answers(items)
            kinds["model"].update(spoiled)
            twice = answers[len(spoiled)]
            kinds["twice"][twice["id"]] = "answered twice"
            return json.dumps({"models": [*answers, dict(twice)]})
        return well_behaved(items)

    fake_llm.answer = answer
    return kinds


def test_bad_llm_answers_fall_back_per_model_and_the_sync_succeeds(fake_providers, fake_llm, scripted_llm, sqlite_url):
    """Every kind of bad reply or answer is rejected where it belongs; the rest is the LLM's; no AI price; success."""
    result = run_sync(sqlite_url)
    assert result.success
    assert all(c.passed for k, c in check_evaluations(result).items() if k[0] in ("model_specs", "model_registry"))
    kinds = scripted_llm
    assert len(kinds["batch"]) >= 5 * BATCH_SIZE - BATCH_SIZE and len(kinds["model"]) == 11

    rows = {f"{p}/{m}": row for (p, m), row in registry_rows(sqlite_url).items()}
    for key, why in {**kinds["batch"], **kinds["model"]}.items():
        ai = rows[key]["ai_data"]
        if ai is None:  # the heuristic had nothing to add either
            continue
        assert ai["source"] == "heuristic", (key, why)
        assert ai["note"].startswith("LLM answer rejected") or "no LLM answer" in ai["note"], (key, ai["note"])
    for key in kinds["twice"]:
        assert rows[key]["ai_data"]["source"] == "llm"
    asked_and_fine = [k for k in rows if rows[k]["ai_data"] and k not in kinds["batch"] and k not in kinds["model"]]
    assert asked_and_fine and all(rows[k]["ai_data"]["source"] == "llm" for k in asked_and_fine)
    for row in rows.values():
        assert not set(PRICE_FIELDS) & set(row["ai_data"] or {})
        assert not any(str(row["specs"]["provenance"].get(f, "")).startswith("ai:") for f in PRICE_FIELDS)
        assert "\x00" not in str(row["specs"].get("family"))

    metadata = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key.to_user_string() == "inferred_model_metadata":
            metadata = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    assert metadata["rejected_answers"] >= 4 * BATCH_SIZE + 11
    assert metadata["heuristic_fallbacks"] >= 5 * BATCH_SIZE + 10
    assert metadata["llm_failed_calls"] == 0
