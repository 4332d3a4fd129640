"""Property tests (hypothesis): every provider normalizer and the merge turn arbitrary JSON-shaped input into
rows that keep the registry's contract, or into a clear PayloadError; prices survive every conversion and
the databases exactly; JSON documents with any character survive storage.

Issue 7, item 7. The hand-written cases of each normalizer are in test_providers.py; here the input is
generated, and what is asserted is the contract itself: the pandera schema of the layer, storable text,
no exception but PayloadError.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core_assets.db.engine import connect, load_json, store_json
from core_assets.db.registry import write_registry
from core_assets.db.tables import model_registry
from core_assets.enrichment.merge import AI_PREFIX, OVERRIDE, PROVIDER, merge_facts, registry_fields
from core_assets.ingest import sanitize
from core_assets.providers import PROVIDERS
from core_assets.records import CAPABILITIES, FREE_KINDS, PRICE_FIELDS, SPEC_FIELDS, PayloadError, map_strings
from core_assets.schemas import model_frame, validate
from core_assets.units import per_million_to_per_1k, per_token_to_per_1k, to_decimal

CONTROL = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]}
# Text as providers send it, hostile parts included: NUL and other control characters, quotes, SQL, the
# storage escape character itself, emoji.
TEXT = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\x1b", "\ue000", "'", '"', "\\", "💥"]),
    max_size=12,
)
# What a JSON text can hold (no NaN or Infinity: the fetch refuses them before anything is stored).
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
MODEL_IDS = st.sampled_from(
    ["vendor/model", "vendor/model:free", "openrouter/auto", "models/gemini-x", "llama3:8b", "x" * 600,
     "bad\x00id", "tab\tid", "  padded  "]
) | TEXT  # fmt: skip
PRICES = st.sampled_from(["0", "-1", "0.0000003", "0.000015", "1e-7", "abc", "", "NaN", "Infinity"]) | SCALARS
CAPABILITY_NAMES = st.sampled_from(
    ["completion", "tools", "vision", "thinking", "embedding", "insert", "text", "image", "embeddings",
     "reasoning", "json_mode", "structured_outputs", "response_format", "function_calling", "ocr"]
)  # fmt: skip
NAMES = st.lists(CAPABILITY_NAMES | TEXT, max_size=4) | JSON
TOKENS = st.integers(min_value=-5, max_value=10**8) | st.sampled_from(["128000", "0", "-1", "lots"]) | SCALARS


def _item(fields: dict) -> st.SearchStrategy:
    """Items whose known fields have plausible values, or arbitrary JSON, plus arbitrary extra keys."""
    known = st.fixed_dictionaries({}, optional={name: value | JSON for name, value in fields.items()})
    return st.builds(lambda k, extra: {**extra, **k}, known, st.dictionaries(TEXT, JSON, max_size=2)) | JSON


ITEMS = {
    "openrouter": _item({
        "id": MODEL_IDS, "name": TEXT, "context_length": TOKENS,
        "pricing": st.dictionaries(st.sampled_from(["prompt", "completion", "image", "request"]), PRICES),
        "architecture": st.fixed_dictionaries({}, optional={"input_modalities": NAMES, "output_modalities": NAMES}),
        "top_provider": st.fixed_dictionaries({}, optional={"context_length": TOKENS, "max_completion_tokens": TOKENS}),
        "supported_parameters": NAMES, "reasoning": JSON, "expiration_date": TEXT | st.just("2026-02-30"),
    }),
    "groq": _item({
        "id": MODEL_IDS, "name": TEXT, "context_window": TOKENS, "max_completion_tokens": TOKENS,
        "input_modalities": NAMES, "output_modalities": NAMES, "supported_features": NAMES,
        "pricing": st.dictionaries(st.sampled_from(["prompt", "completion"]), PRICES),
    }),
    "mistral": _item({
        "id": MODEL_IDS, "name": MODEL_IDS, "aliases": st.lists(MODEL_IDS, max_size=3) | JSON,
        "capabilities": st.dictionaries(CAPABILITY_NAMES | TEXT, st.booleans() | JSON, max_size=4),
        "max_context_length": TOKENS, "deprecation": TEXT | st.just("2026-01-31T12:00:00Z"),
        "deprecation_replacement_model": MODEL_IDS,
    }),
    "google": _item({
        "name": MODEL_IDS, "displayName": TEXT, "inputTokenLimit": TOKENS, "outputTokenLimit": TOKENS,
        "supportedGenerationMethods": NAMES, "thinking": JSON,
    }),
    "ollama": _item({
        "name": MODEL_IDS, "model": MODEL_IDS, "remote_host": TEXT, "remote_model": TEXT,
        "details": st.dictionaries(st.sampled_from(["family", "parameter_size", "context_length"]), TEXT | TOKENS),
        "capabilities": NAMES,
    }),
}  # fmt: skip


def payload_for(provider: str, items: list, shows: dict) -> dict:
    if provider == "ollama":
        return {"tags": {"models": items}, "show": shows}
    return {"pages": [{"models" if provider == "google" else "data": items}]}


def _without_nul(text: str) -> str:
    assert "\x00" not in text, text
    return text


def assert_valid_rows(models) -> None:
    """The contract of normalized_models rows, and of the text the database will hold for them."""
    rows = []
    for model in models:
        sanitize(model)
        assert isinstance(model.model_id, str) and 0 < len(model.model_id) <= 512
        assert not CONTROL.intersection(model.model_id), model.model_id
        assert model.name is None or not CONTROL.intersection(model.name), model.name
        assert tuple(model.facts) == SPEC_FIELDS
        assert set(model.facts["capabilities"]) >= set(CAPABILITIES)
        assert set(model.facts["capabilities"].values()) <= {True, False, None}
        for field in PRICE_FIELDS:
            price = model.facts[field]
            assert price is None or (isinstance(price, Decimal) and price.is_finite() and price >= 0)
        for field in ("context_window", "max_output_tokens"):
            value = model.facts[field]
            assert value is None or (type(value) is int and value > 0)
        stored = store_json(model.provider_data)
        # PostgreSQL's jsonb refuses NUL in a string (a key's or a value's); the text `\\u0000` is harmless.
        map_strings(json.loads(stored), _without_nul)
        assert load_json(stored) == model.provider_data
        rows.append(model.as_row())
    outcome = validate(model_frame(rows))
    assert outcome.passed, outcome.failures.to_dict("records")


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_normalizers_give_valid_rows_or_a_payload_error(provider, data):
    """Arbitrary items (hostile text, wrong types, odd prices) give rows that pass the schema, or PayloadError."""
    items = data.draw(st.lists(ITEMS[provider], max_size=6), label="items")
    shows = data.draw(st.dictionaries(MODEL_IDS, JSON, max_size=3), label="shows")
    try:
        parsed = PROVIDERS[provider].parse(payload_for(provider, items, shows))
    except PayloadError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    # Every item is a model or counted as dropped; Mistral folds the entries of one name into one model.
    accounted = len(parsed.models) + parsed.skipped
    assert accounted <= len(items) if provider == "mistral" else accounted == len(items)
    assert_valid_rows(parsed.models)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=60, deadline=None)
@given(document=JSON)
def test_normalizers_refuse_arbitrary_documents_with_a_payload_error(provider, document):
    """Any JSON document at all is a PayloadError with a one-line message, or valid rows."""
    try:
        parsed = PROVIDERS[provider].parse(document)
    except PayloadError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert_valid_rows(parsed.models)


# ---------------------------------------------------------------------------------------------- merge

PRICE = st.decimals(min_value=0, max_value=100, places=9, allow_nan=False, allow_infinity=False)
FACTS = st.fixed_dictionaries(
    {},
    optional={
        "context_window": st.none() | st.integers(1, 10**7),
        "max_output_tokens": st.none() | st.integers(1, 10**7),
        "input_cost_per_1k": st.none() | PRICE,
        "output_cost_per_1k": st.none() | PRICE,
        "modalities": st.none() | st.just({"input": ["text"], "output": ["text"]}),
        "capabilities": st.dictionaries(st.sampled_from([*CAPABILITIES, "fim"]), st.none() | st.booleans()),
        "family": st.none() | TEXT,
        "parameter_size": st.none() | st.sampled_from(["7B", "8x7B"]),
        "deprecation_date": st.none() | st.just("2026-12-31"),
        "successor": st.none() | TEXT,
        "aliases": st.lists(TEXT, max_size=2),
        "free_kind": st.none() | st.sampled_from(FREE_KINDS),
    },
)
SOURCES = [OVERRIDE, PROVIDER, "litellm", "models.dev", AI_PREFIX + "llm"]


@settings(max_examples=150, deadline=None)
@given(facts=st.lists(st.none() | FACTS, min_size=len(SOURCES), max_size=len(SOURCES)), free_tier=st.booleans())
def test_merge_gives_valid_rows_by_precedence(facts, free_tier):
    """Any facts from any sources merge into a valid row: first knower wins, no AI price, never free and priced."""
    sources = list(zip(SOURCES, facts, strict=True))
    specs, provenance = merge_facts(sources)
    specs, is_free, cost, status = registry_fields(specs, provenance, free_tier=free_tier)
    row = {"provider_id": "groq", "model_id": "m", "is_free": is_free, "cost_per_1k": cost, "specs": specs,
           "status": status}
    outcome = validate(model_frame([row]))
    assert outcome.passed, outcome.failures.to_dict("records")
    for field in PRICE_FIELDS:
        assert not str(specs["provenance"].get(field, "")).startswith(AI_PREFIX)
    for field in ("context_window", "family", "deprecation_date"):
        knowers = [s for s, f in sources if f and f.get(field) is not None]
        if specs[field] is not None:
            assert specs["provenance"][field] == knowers[0]
    assert cost == (None if specs["input_cost_per_1k"] is None else Decimal(str(specs["input_cost_per_1k"])))
    assert store_json(specs) and load_json(store_json(specs))["provenance"] == specs["provenance"]


def test_free_and_priced_resolve_toward_paying():
    """A `:free` model its provider prices is not free; a catalog's price for a free model is not taken."""
    item = {"id": "a/b:free", "pricing": {"prompt": "0.000001", "completion": "0"},
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]}}  # fmt: skip
    (model,) = PROVIDERS["openrouter"].normalize({"pages": [{"data": [item]}]})
    assert [n["problem"] for n in sanitize(model)] == ["free (free_variant) but priced; not counted free"]
    assert model.facts["free_kind"] is None and model.facts["input_cost_per_1k"] == Decimal("0.001")
    specs, provenance = merge_facts(
        [(PROVIDER, {"free_kind": "free_variant"}), ("litellm", {"input_cost_per_1k": Decimal("0.5")})]
    )
    assert (specs["free_kind"], specs["input_cost_per_1k"]) == ("free_variant", None)
    assert "input_cost_per_1k" not in provenance
    specs, _ = merge_facts([
        (OVERRIDE, {"input_cost_per_1k": Decimal("0.5")}),
        (PROVIDER, {"free_kind": "local", "input_cost_per_1k": Decimal(0)}),
    ])
    assert (specs["free_kind"], specs["input_cost_per_1k"]) == (None, Decimal("0.5"))


# -------------------------------------------------------------------------------------------- prices

# USD per token as providers write it: up to 15 significant digits, at most 15 decimal places, so that the
# price per 1,000 tokens fits the registry's NUMERIC(24, 12).
PER_TOKEN = st.decimals(min_value=0, max_value=10, places=15, allow_nan=False, allow_infinity=False).filter(
    lambda d: len(d.normalize().as_tuple().digits) <= 15
)


@settings(max_examples=500, deadline=None)
@given(price=PER_TOKEN, spelling=st.sampled_from(["str", "float", "exponent"]))
def test_unit_conversions_are_exact(price, spelling):
    """USD per token (string, float or exponent spelling) and per 1M tokens become per 1k exactly."""
    given_as = {"str": format(price, "f"), "float": float(price), "exponent": f"{price:E}"}[spelling]
    assert per_token_to_per_1k(given_as) == price * 1000
    assert per_million_to_per_1k(format(price, "f")) == price / 1000
    assert to_decimal(given_as) == price


@settings(max_examples=500, deadline=None)
@given(price=PER_TOKEN)
def test_json_numbers_written_from_decimal_read_back_exactly(price):
    """A per-1k price written into a JSON column (as a number) reads back as the same Decimal."""
    per_1k = per_token_to_per_1k(format(price, "f"))
    document = load_json(store_json({"input_cost_per_1k": per_1k}))
    assert to_decimal(document["input_cost_per_1k"]) == per_1k


T0 = datetime(2026, 1, 1, tzinfo=UTC)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prices=st.lists(PER_TOKEN, min_size=1, max_size=20))
def test_prices_round_trip_the_database_exactly(database_url, prices):
    """cost_per_1k (NUMERIC), specs prices (JSON) and the price history read back as the Decimal written."""
    engine = connect(database_url)
    per_1k = [per_token_to_per_1k(format(p, "f")) for p in prices]
    rows = [
        {"provider_id": "groq", "model_id": f"m{i}", "snapshot_id": None, "name": f"m{i}", "is_free": False,
         "cost_per_1k": price, "provider_data": {}, "ai_data": None, "status": "active",
         "specs": {"input_cost_per_1k": price, "output_cost_per_1k": price, "provenance": {}}}
        for i, price in enumerate(per_1k)
    ]  # fmt: skip
    write_registry(engine, rows, providers={"groq": T0}, now=T0)
    with engine.connect() as conn:
        stored = {
            r.model_id: r
            for r in conn.execute(sa.select(model_registry).where(model_registry.c.provider_id == "groq"))
        }
    for i, price in enumerate(per_1k):
        row = stored[f"m{i}"]
        assert row.cost_per_1k == price
        assert to_decimal(row.specs["input_cost_per_1k"]) == price


# ------------------------------------------------------------------------------------ storable JSON


@settings(max_examples=300, deadline=None)
@given(document=JSON)
def test_any_json_document_is_stored_losslessly(document):
    """store_json never writes a NUL escape (PostgreSQL refuses it) and load_json gives back what was stored."""
    assume(json.loads(json.dumps(document)) == document)  # JSON itself turns tuple keys etc. into other things
    text = store_json(document)
    assert "\\u0000" not in text
    assert load_json(text) == document
    assert load_json(text.encode()) == document


def as_json(document):
    """The document with every number as a Decimal: how JSON (and jsonb) compares numbers."""
    return json.loads(json.dumps(document), parse_float=Decimal, parse_int=Decimal)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(TEXT, JSON, max_size=4))
def test_hostile_json_round_trips_both_databases(database_url, document):
    """provider_data with NUL, the escape character, quotes and SQL reads back from the database unchanged."""
    engine = connect(database_url)
    row = {"provider_id": "groq", "model_id": "hostile", "snapshot_id": None, "name": "x", "is_free": False,
           "cost_per_1k": None, "provider_data": document, "ai_data": {"family": "\x00"}, "status": "active",
           "specs": {"aliases": list(document)[:2], "provenance": {}}}  # fmt: skip
    write_registry(engine, [row], providers={"groq": T0}, now=T0)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(model_registry).where(model_registry.c.model_id == "hostile")).one()
    # jsonb keeps numbers as decimals (1e16 comes back as 10000000000000000): equal as JSON, compared so.
    assert as_json(stored.provider_data) == as_json(document)
    assert stored.ai_data == {"family": "\x00"}
    assert stored.specs["aliases"] == list(document)[:2]
