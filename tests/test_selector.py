"""The selector: strategies and constraints against hand-computed answers, snapshots, and usage telemetry."""

from __future__ import annotations

import json
import random

import dagster as dg
import pytest
import sqlalchemy as sa

from core_assets import ModelSelector
from core_assets import selector as selector_module
from core_assets.db.engine import connect
from core_assets.db.tables import table_usage
from core_assets.registry_read import find_model, format_history, format_model, price_history
from tests.support.registry_rows import insert_rows, model_row

# A fixed registry. Effective price (free = 0) and context window, as the answers below use them:
#   ollama/llama3.2:latest         free      131,072   chat tools, vision unknown
#   openrouter/…llama-3.3-70b:free free       65,536   chat, tools unknown
#   groq/llama-3.1-8b-instant      0.00005   131,072   chat tools json
#   google/gemini-2.0-flash        0.0001  1,048,576   chat tools vision json   (deprecated)
#   mistral/mistral-embed          0.0001      8,192   embeddings only
#   mistral/mistral-medium-2505    0.0004    131,072   chat tools vision        (alias mistral-medium-latest)
#   google/gemini-2.5-pro          0.00125 1,048,576   chat tools vision json reasoning
#   openrouter/openai/gpt-4o       0.0025    128,000   chat tools vision json
#   openrouter/acme/mystery        unknown   unknown   chat
#   groq/old-model                 0.00001     8,192   chat                     (missing: never selected)
REGISTRY = [
    model_row("ollama", "llama3.2:latest", free_kind="local", context=131072, capabilities={"chat": True, "tools": True}),
    model_row("openrouter", "meta-llama/llama-3.3-70b-instruct:free", free_kind="free_variant", cost="0", context=65536,
              capabilities={"chat": True, "tools": None, "vision": False}),
    model_row("groq", "llama-3.1-8b-instant", cost="0.00005", context=131072,
              capabilities={"chat": True, "tools": True, "json_mode": True, "vision": False}),
    model_row("google", "gemini-2.0-flash", cost="0.0001", context=1048576, status="deprecated",
              capabilities={"chat": True, "tools": True, "vision": True, "json_mode": True}),
    model_row("mistral", "mistral-embed", cost="0.0001", context=8192, capabilities={"chat": False, "embeddings": True}),
    model_row("mistral", "mistral-medium-2505", cost="0.0004", context=131072, aliases=["mistral-medium-latest"],
              capabilities={"chat": True, "tools": True, "vision": True}),
    model_row("google", "gemini-2.5-pro", cost="0.00125", context=1048576,
              capabilities={"chat": True, "tools": True, "vision": True, "json_mode": True, "reasoning": True}),
    model_row("openrouter", "openai/gpt-4o", cost="0.0025", context=128000,
              capabilities={"chat": True, "tools": True, "vision": True, "json_mode": True}),
    model_row("openrouter", "acme/mystery", capabilities={"chat": True}),
    model_row("groq", "old-model", cost="0.00001", context=8192, capabilities={"chat": True}, status="missing"),
]  # fmt: skip

OLLAMA = "ollama/llama3.2:latest"
OR_FREE = "openrouter/meta-llama/llama-3.3-70b-instruct:free"
GROQ_8B = "groq/llama-3.1-8b-instant"
FLASH = "google/gemini-2.0-flash"
EMBED = "mistral/mistral-embed"
MEDIUM = "mistral/mistral-medium-2505"
PRO = "google/gemini-2.5-pro"
GPT4O = "openrouter/openai/gpt-4o"
MYSTERY = "openrouter/acme/mystery"


@pytest.fixture
def url(sqlite_url):
    insert_rows(connect(sqlite_url), REGISTRY)
    return sqlite_url


def refs(selection) -> list[str]:
    return [m["ref"] for m in ([selection.primary] if selection.primary else []) + selection.fallbacks]


def pick(url: str, **request) -> list[str]:
    return refs(ModelSelector(database_url=url, max_fallbacks=10).select(**request))


# ##### STRATEGIES AND CONSTRAINTS


def test_cheapest(url):
    """Cheapest: free first (larger context breaks the tie), unknown price last, deprecated and missing skipped."""
    assert pick(url, needs=["chat"]) == [OLLAMA, OR_FREE, GROQ_8B, MEDIUM, PRO, GPT4O, MYSTERY]


def test_largest_context(url):
    """Largest context: ties broken by the lower price, unknown context last."""
    assert pick(url, needs=["chat"], strategy="largest_context") == [
        PRO,
        OLLAMA,
        GROQ_8B,
        MEDIUM,
        GPT4O,
        OR_FREE,
        MYSTERY,
    ]


def test_balanced(url):
    """Balanced: share of models with a smaller context plus share with a higher price, computed by hand:
    ollama 4+7, flash 7+4, groq 4+6, free 2+7, pro 7+2, medium 4+3, embed 1+4, gpt-4o 3+1, mystery 0."""
    assert pick(url, needs=["chat"], strategy="balanced") == [
        OLLAMA,
        GROQ_8B,
        OR_FREE,
        PRO,
        MEDIUM,
        GPT4O,
        MYSTERY,
    ]
    assert pick(url, strategy="balanced", include_deprecated=True)[:2] == [OLLAMA, FLASH]


def test_strategy_accepts_the_cli_spelling(url):
    """`largest-context` is the same strategy as `largest_context`."""
    assert pick(url, strategy="largest-context")[0] == PRO


def test_unknown_capability_never_satisfies(url):
    """Tri-state capabilities: only a known true meets a need; unknown (null) and false do not."""
    assert pick(url, needs=["tools"]) == [OLLAMA, GROQ_8B, MEDIUM, PRO, GPT4O]
    assert pick(url, needs=["vision"]) == [MEDIUM, PRO, GPT4O]
    assert pick(url, needs=["tools", "vision", "json_mode"]) == [PRO, GPT4O]


def test_min_context_and_deprecated(url):
    """min_context filters by window; a deprecated model appears only when asked for."""
    assert pick(url, min_context=200_000) == [PRO]
    assert pick(url, min_context=200_000, include_deprecated=True) == [FLASH, PRO]
    assert pick(url, min_context=131_072, needs=["chat"]) == [OLLAMA, GROQ_8B, MEDIUM, PRO]


def test_max_cost_and_free_only(url):
    """max_cost keeps free and cheap models, never an unknown price; free_only keeps free ones."""
    assert pick(url, needs=["chat"], max_cost_per_1k=0.0001) == [OLLAMA, OR_FREE, GROQ_8B]
    assert pick(url, max_cost_per_1k=0) == [OLLAMA, OR_FREE]
    assert pick(url, free_only=True) == [OLLAMA, OR_FREE]


def test_providers_and_exclusions(url):
    """Providers allow or deny by provider id (or alias), or by PROVIDER/MODEL with model aliases."""
    assert pick(url, providers=["google"]) == [PRO]
    assert pick(url, providers=["gemini"], include_deprecated=True) == [FLASH, PRO]
    assert pick(url, needs=["chat"], exclude_providers=["ollama", "openrouter"]) == [GROQ_8B, MEDIUM, PRO]
    assert pick(url, providers=["mistral/mistral-medium-latest", "groq"]) == [GROQ_8B, MEDIUM]
    assert pick(url, needs=["chat"], exclude_providers="ollama,openrouter/openai/gpt-4o")[:2] == [
        OR_FREE,
        GROQ_8B,
    ]


def test_missing_models_are_never_selected(url):
    """A model gone from its provider is not a candidate, even with include_deprecated."""
    assert pick(url, providers=["groq"], include_deprecated=True) == [GROQ_8B]


def test_selection_shape_and_fallback_count(url):
    """A selection has a primary, at most max_fallbacks fallbacks, the table and a reason; it serializes."""
    selection = ModelSelector(database_url=url).select(needs=["tools"])
    assert refs(selection) == [OLLAMA, GROQ_8B, MEDIUM, PRO]
    assert selection.primary == {
        "provider_id": "ollama", "model_id": "llama3.2:latest", "ref": OLLAMA, "name": "llama3.2:latest",
        "is_free": True, "cost_per_1k": None, "context_window": 131072, "max_output_tokens": None,
        "capabilities": ("chat", "tools"), "status": "active",
    }  # fmt: skip
    assert (selection.table, selection.fell_back, selection.candidates) == ("model_registry", False, 5)
    assert selection.reason == "cheapest of 5 models in model_registry meeting needs tools"
    assert selection.to_dict()["fallbacks"][0]["ref"] == GROQ_8B
    text = selection.describe()
    assert "primary:   ollama/llama3.2:latest  free  ctx 131,072  chat,tools" in text
    assert "fallback 1: groq/llama-3.1-8b-instant  $0.00005/1k in" in text


def test_resolve_accepts_ids_and_aliases(url):
    """resolve() finds a selectable model by id or alias; missing models are not selectable."""
    selector = ModelSelector(database_url=url)
    assert selector.resolve("mistral", "mistral-medium-latest")["model_id"] == "mistral-medium-2505"
    assert selector.resolve("gemini", "gemini-2.5-pro")["ref"] == PRO
    assert selector.resolve("groq", "old-model") is None


# ##### NO MATCH AND BAD REQUESTS


def test_no_match_names_the_constraint_nobody_meets(url):
    """When one constraint alone excludes every model, the reason names it."""
    selection = ModelSelector(database_url=url).select(needs=["chat"], min_context=5_000_000)
    assert selection.primary is None and selection.fallbacks == []
    assert selection.reason == (
        "no model satisfies min_context 5,000,000: none of the 8 active models in model_registry does"
    )


def test_no_match_names_the_constraint_that_eliminated_the_last_survivors(url):
    """When only a combination fails, the reason names the constraint that removed the last candidates."""
    selection = ModelSelector(database_url=url).select(needs=["embeddings"], free_only=True)
    assert selection.reason == (
        "no model satisfies needs embeddings together with free_only: 2 models in model_registry meet "
        "free_only, none of them also needs embeddings"
    )


def test_no_match_hints_at_deprecated_models(url):
    """If a deprecated model would fit, the reason says so."""
    reason = ModelSelector(database_url=url).select(providers=["google"], max_cost_per_1k=0.0002).reason
    assert reason.endswith("(1 deprecated models would; ask with include_deprecated)")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"needs": ["teleport"]}, "unknown capability 'teleport'; known: chat, embeddings"),
        ({"strategy": "fastest"}, "unknown strategy 'fastest'"),
        ({"providers": ["acme"]}, "unknown provider 'acme'"),
        ({"min_context": -1}, "min_context must be a non-negative whole number"),
        ({"max_cost_per_1k": "cheap"}, "max_cost_per_1k must be a price"),
        ({"max_cost_per_1k": float("nan")}, "max_cost_per_1k must be a non-negative price"),
    ],
)
def test_bad_requests_raise_value_errors(url, request_, message):
    """A malformed request raises ValueError with a clear message."""
    with pytest.raises(ValueError, match=message):
        ModelSelector(database_url=url).select(**request_)


def test_empty_registry_says_so(sqlite_url):
    """An empty registry gives no model and tells the user to sync."""
    selection = ModelSelector(database_url=sqlite_url).select()
    assert selection.primary is None
    assert selection.reason == "model_registry is empty (run `core-registry sync`)"


# ##### SNAPSHOT AND TELEMETRY


def test_snapshot_refreshes_after_a_registry_change(url):
    """A new sync is picked up once the TTL has passed; within the TTL the snapshot is reused."""
    cached = ModelSelector(database_url=url, ttl_seconds=3600)
    fresh = ModelSelector(database_url=url, ttl_seconds=0)
    assert refs(cached.select(needs=["tools"]))[0] == refs(fresh.select(needs=["tools"]))[0] == OLLAMA
    insert_rows(connect(url), [model_row("groq", "new-free", free_kind="free_tier", context=200000,
                                         capabilities={"chat": True, "tools": True})])  # fmt: skip
    assert refs(fresh.select(needs=["tools"]))[0] == "groq/new-free"
    assert refs(cached.select(needs=["tools"]))[0] == OLLAMA
    cached.refresh()
    assert refs(cached.select(needs=["tools"]))[0] == "groq/new-free"


def test_snapshot_keeps_serving_when_the_database_goes_away(url, monkeypatch):
    """If the change token cannot be read, the last snapshot answers instead of an error."""
    selector = ModelSelector(database_url=url, ttl_seconds=0)
    selector.select()

    def unavailable(engine):
        raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr("core_assets.selector._change_token", unavailable)
    assert refs(selector.select(needs=["tools"]))[0] == OLLAMA


def usage(url: str) -> dict[str, tuple[int, int]]:
    with connect(url).connect() as conn:
        return {r.table_name: (r.reads, r.fallbacks) for r in conn.execute(sa.select(table_usage))}


def test_usage_is_flushed_in_batches(url):
    """Reads are counted in memory and written every N selections or on flush_usage(), never per selection."""
    selector = ModelSelector(database_url=url, flush_every=3, flush_interval_seconds=3600)
    selector.select()
    selector.select(needs=["tools"])
    assert usage(url) == {}
    selector.select(free_only=True)
    assert usage(url) == {"model_registry": (3, 0)}
    selector.select()
    selector.flush_usage()
    selector.flush_usage()
    assert usage(url) == {"model_registry": (4, 0)}


def test_fallbacks_are_counted_against_the_broken_table(url):
    """A fallback counts a read of model_registry and a fallback of the table that could not be used."""
    engine = connect(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE orchestrator_config SET active_table_name = 'vanished' WHERE id = 1"))
    selector = ModelSelector(database_url=url)
    assert selector.select().fell_back
    selector.select()
    selector.flush_usage()
    assert usage(url) == {"model_registry": (2, 0), "vanished": (0, 2)}


def test_selector_works_on_postgresql(postgres_url):
    """The same answers come from PostgreSQL (JSONB specs, NUMERIC prices)."""
    insert_rows(connect(postgres_url), REGISTRY)
    assert pick(postgres_url, needs=["chat"]) == [OLLAMA, OR_FREE, GROQ_8B, MEDIUM, PRO, GPT4O, MYSTERY]
    assert pick(postgres_url, providers=["mistral/mistral-medium-latest"]) == [MEDIUM]
    selector = ModelSelector(database_url=postgres_url, flush_every=1)
    selector.select()
    assert usage(postgres_url) == {"model_registry": (1, 0)}


# ##### SHOW AND HISTORY


def test_find_model_by_id_or_alias(database_url):
    """find_model returns the whole row with parsed specs, by id or by alias, on both databases."""
    engine = connect(database_url)
    insert_rows(engine, REGISTRY)
    by_alias = find_model(engine, "mistral", "mistral-medium-latest")
    assert by_alias["model_id"] == "mistral-medium-2505"
    assert by_alias["specs"]["aliases"] == ["mistral-medium-latest"]
    assert find_model(engine, "groq", "old-model")["status"] == "missing"
    assert find_model(engine, "mistral", "no-such-model") is None


def test_format_model_and_history(sqlite_url):
    """show lists every specs field with its source; history lists each price period."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from core_assets.db.tables import model_price_history

    engine = connect(sqlite_url)
    insert_rows(engine, REGISTRY)
    row = find_model(engine, "groq", "llama-3.1-8b-instant")
    text = format_model(row)
    assert text.splitlines()[0] == "groq/llama-3.1-8b-instant  (llama-3.1-8b-instant)"
    assert "input price: $0.00005 per 1k tokens" in text
    assert any(line.split() == ["context_window", "131072", "provider"] for line in text.splitlines())
    assert any(line.split() == ["capabilities.tools", "yes", "-"] for line in text.splitlines())

    with engine.begin() as conn:
        conn.execute(model_price_history.insert(), [
            {"provider_id": "groq", "model_id": "llama-3.1-8b-instant", "input_cost_per_1k": Decimal("0.0001"),
             "output_cost_per_1k": None, "is_free": False, "source": "litellm",
             "valid_from": datetime(2026, 1, 1, tzinfo=UTC), "valid_to": datetime(2026, 6, 1, tzinfo=UTC)},
            {"provider_id": "groq", "model_id": "llama-3.1-8b-instant", "input_cost_per_1k": Decimal("0.00005"),
             "output_cost_per_1k": Decimal("0.00008"), "is_free": False, "source": "litellm",
             "valid_from": datetime(2026, 6, 1, tzinfo=UTC), "valid_to": None},
        ])  # fmt: skip
    history = price_history(engine, "groq", "llama-3.1-8b-instant")
    assert [h["input_cost_per_1k"] for h in history] == [Decimal("0.0001"), Decimal("0.00005")]
    lines = format_history(row, history).splitlines()
    assert lines[3].split()[:2] == ["valid", "from"]
    assert lines[5].split()[-5:] == ["now", "0.00005", "0.00008", "no", "litellm"]


def test_selector_as_a_dagster_resource(url):
    """An asset can take the selector as a resource; usage is flushed when the run ends."""

    @dg.asset
    def chosen_model(selector: ModelSelector) -> str:
        return selector.select(needs=["tools"]).primary["ref"]

    result = dg.materialize([chosen_model], resources={"selector": ModelSelector(database_url=url)})
    assert result.output_for_node("chosen_model") == OLLAMA
    assert usage(url) == {"model_registry": (1, 0)}


@pytest.mark.parametrize("levels", [2, 128])
def test_bitset_index_agrees_with_a_plain_filter(monkeypatch, levels):
    """On random catalogs and requests, the indexed answer equals filtering and sorting every row by hand
    (with 2 levels, range constraints take the patching path)."""
    monkeypatch.setattr(selector_module, "RANGE_LEVELS", levels)
    rng = random.Random(7)
    capabilities = ("chat", "tools", "vision")
    rows = []
    for i in range(300):
        free = rng.random() < 0.1
        cost = None if rng.random() < 0.1 else round(rng.uniform(0, 0.01), 6)
        context = rng.choice([None, 4096, 8192, 32768, 128000, rng.randint(1000, 2_000_000)])
        caps = {c: rng.choice([True, False, None]) for c in capabilities}
        status = rng.choice(["active", "active", "active", "deprecated"])
        provider = rng.choice(["google", "groq", "mistral"])
        rows.append((provider, f"m{i:03d}", None, free, cost, status, context, None, json.dumps(caps), "[]"))
    snapshot = selector_module.Snapshot(rows, "model_registry")

    def expected(request):
        keep = []
        for p, m, _, free, cost, status, context, _, caps, _ in rows:
            effective = 0.0 if free else cost
            if status != "active" and not (request.include_deprecated and status == "deprecated"):
                continue
            if any(json.loads(caps).get(n) is not True for n in request.needs):
                continue
            if request.min_context and (context is None or context < request.min_context):
                continue
            if request.max_cost_per_1k is not None and (
                effective is None or effective > request.max_cost_per_1k
            ):
                continue
            if request.providers and p not in request.providers:
                continue
            keep.append((effective, context, f"{p}/{m}"))
        if request.strategy == "cheapest":
            keep.sort(key=lambda k: (k[0] is None, k[0] or 0, -(k[1] or 0), k[2]))
        else:
            keep.sort(key=lambda k: (k[1] is None, -(k[1] or 0), k[0] is None, k[0] or 0, k[2]))
        return [k[2] for k in keep]

    for _ in range(300):
        request = selector_module._make_request(
            rng.sample(capabilities, rng.randint(0, 2)),
            rng.choice([None, rng.randint(1, 2_100_000)]),
            rng.choice([None, round(rng.uniform(0, 0.012), 6)]),
            False,
            rng.choice([None, ["groq"], ["google", "mistral"]]),
            None,
            rng.choice(["cheapest", "largest_context"]),
            rng.random() < 0.3,
        )
        picked, count, _ = snapshot.select(request, 1000)
        assert [m["ref"] for m in picked] == expected(request)
        assert count == len(picked)
