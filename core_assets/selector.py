"""The model selector (SPEC §5): picks a model for a request from the active table.

The table is read once into an in-memory snapshot; a selection is then a few big-integer operations.
For each strategy the rows are kept in that strategy's order, and every discrete constraint (a
capability that is true, a provider, free, active) is a bitset over those positions, bit 0 being the
best row. ANDing the bitsets of a request and taking the lowest set bits yields the primary model and
its fallbacks in order. Range constraints (min context, max cost) use precomputed bitsets at a few
thresholds plus the handful of rows between the nearest threshold and the requested value.

The snapshot is rebuilt when a cheap change token moves (the latest sync, the active table name and
its switch log, the active view's definition), looked at no more than once every `ttl_seconds`.
Which tables are read, and how often the selector had to fall back, is counted in memory and written
to `table_usage` in batches.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import dagster as dg
import sqlalchemy as sa
from pydantic import Field, PrivateAttr
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from core_assets import settings
from core_assets.active_table import table_problem
from core_assets.db.engine import connect
from core_assets.db.tables import REGISTRY_TABLE, table_usage
from core_assets.records import CAPABILITIES
from core_assets.registry_read import canonical_provider

log = logging.getLogger(__name__)

STRATEGIES = ("cheapest", "largest_context", "balanced")
# How many precomputed thresholds each range constraint has per strategy: more means fewer rows to
# patch in per request, at the price of memory (levels × rows / 8 bytes per strategy).
RANGE_LEVELS = 128
# Distinct requests remembered (normalized, and their matches per snapshot); real callers repeat a few.
REQUEST_CACHE_SIZE = 4096
WINDOW_BITS = 256
WINDOW_MASK = (1 << WINDOW_BITS) - 1


@dataclass(slots=True)
class Selection:
    """The answer to one request: the primary model (None if nothing fits), ordered fallbacks, the
    table the answer comes from, whether the selector fell back from the active table, and why."""

    primary: dict[str, Any] | None
    fallbacks: list[dict[str, Any]]
    table: str
    fell_back: bool
    reason: str
    candidates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "fallbacks": self.fallbacks,
            "table": self.table,
            "fell_back": self.fell_back,
            "candidates": self.candidates,
            "reason": self.reason,
        }

    def describe(self) -> str:
        lines = []
        if self.primary is None:
            lines.append("no model selected")
        else:
            lines.append(f"primary:   {_model_line(self.primary)}")
            for rank, model in enumerate(self.fallbacks, start=1):
                lines.append(f"fallback {rank}: {_model_line(model)}")
        lines.append(f"table:     {self.table}{' (fallback)' if self.fell_back else ''}")
        lines.append(f"reason:    {self.reason}")
        return "\n".join(lines)


def _model_line(model: dict[str, Any]) -> str:
    cost = model["cost_per_1k"]
    price = (
        "free"
        if model["is_free"]
        else ("price unknown" if cost is None else f"${format(Decimal(repr(cost)), 'f')}/1k in")
    )
    context = model["context_window"]
    parts = [model["ref"], price, f"ctx {context:,}" if context else "ctx unknown"]
    if model["capabilities"]:
        parts.append(",".join(model["capabilities"]))
    if model["status"] != "active":
        parts.append(model["status"])
    return "  ".join(parts)


# ------------------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class Request:
    """A validated, normalized request; hashable, so that snapshots can cache its matches."""

    needs: tuple[str, ...]
    min_context: int | None
    max_cost_per_1k: float | None
    free_only: bool
    providers: tuple[str, ...]
    exclude_providers: tuple[str, ...]
    strategy: str
    include_deprecated: bool

    @property
    def label(self) -> str:
        return self.strategy.replace("_", " ")

    @property
    def text(self) -> str:
        parts = []
        if self.needs:
            parts.append("needs " + ",".join(self.needs))
        if self.min_context:
            parts.append(f"min_context {self.min_context:,}")
        if self.max_cost_per_1k is not None:
            parts.append(f"max_cost_per_1k {self.max_cost_per_1k:g}")
        if self.free_only:
            parts.append("free_only")
        if self.providers:
            parts.append("providers " + ",".join(self.providers))
        if self.exclude_providers:
            parts.append("excluding " + ",".join(self.exclude_providers))
        if self.include_deprecated:
            parts.append("deprecated included")
        return ", ".join(parts) or "no constraints"


def _make_request(
    needs, min_context, max_cost_per_1k, free_only, providers, exclude_providers, strategy, include_deprecated
) -> Request:
    if isinstance(needs, str):
        needs = needs.split(",")
    strategy = str(strategy).strip().lower().replace("-", "_")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if min_context is not None and (
        isinstance(min_context, bool) or not isinstance(min_context, int) or min_context < 0
    ):
        raise ValueError(f"min_context must be a non-negative whole number of tokens, got {min_context!r}")
    if max_cost_per_1k is not None:
        try:
            max_cost_per_1k = float(max_cost_per_1k)
        except (TypeError, ValueError):
            raise ValueError(
                f"max_cost_per_1k must be a price in USD per 1k tokens, got {max_cost_per_1k!r}"
            ) from None
        if not max_cost_per_1k >= 0:
            raise ValueError(f"max_cost_per_1k must be a non-negative price, got {max_cost_per_1k!r}")
    return Request(
        needs=tuple(dict.fromkeys(n.strip().lower() for n in needs or () if n.strip())),
        min_context=min_context or None,
        max_cost_per_1k=max_cost_per_1k,
        free_only=bool(free_only),
        providers=_provider_refs(providers),
        exclude_providers=_provider_refs(exclude_providers),
        strategy=strategy,
        include_deprecated=bool(include_deprecated),
    )


def _frozen(value: Any) -> Any:
    """`value` as part of a cache key: lists become tuples; anything else but a tuple, a string or None
    (a generator, say, whose identity says nothing about its content) makes the key unusable."""
    if value is None or type(value) in (tuple, str):
        return value
    if type(value) is list:
        return tuple(value)
    return [value]  # unhashable on purpose


def _provider_refs(values: Iterable[str] | str | None) -> tuple[str, ...]:
    if isinstance(values, str):
        values = values.split(",")
    refs = []
    for value in values or ():
        provider, sep, model = value.strip().partition("/")
        provider = canonical_provider(provider)
        if provider not in settings.PROVIDERS:
            raise ValueError(f"unknown provider {value.strip()!r}; known: {', '.join(settings.PROVIDERS)}")
        if sep and not model:
            raise ValueError(f"expected PROVIDER or PROVIDER/MODEL, got {value!r}")
        refs.append(f"{provider}/{model}" if sep else provider)
    return tuple(dict.fromkeys(refs))


# ------------------------------------------------------------------------------------------ snapshot


def _bitset(positions: Iterable[int], n: int) -> int:
    """An int whose bit p is set for every p in `positions` (built in C: one char per row, then int())."""
    chars = bytearray(b"0" * n)
    for p in positions:
        chars[n - 1 - p] = 49  # ord("1"); the last character is bit 0
    return int(chars, 2) if n else 0


@dataclass
class _Order:
    """The rows in one strategy's order, with every constraint as a bitset over positions."""

    rows: list[int]
    position: list[int]
    active: int
    deprecated: int
    free: int
    capabilities: dict[str, int]
    providers: dict[str, int]
    context_levels: list[int]
    cost_levels: list[int]


class _Match(NamedTuple):
    """The rows meeting a request, and the lowest bits of that set (where the answer almost always is)
    already cut out, so that answering again touches no full-width int."""

    matched: int
    count: int
    reason: str
    start: int
    window: int


def _first_window(matched: int) -> tuple[int, int]:
    """(position of the lowest set bit, the WINDOW_BITS bits from there) of a bitset."""
    if not matched:
        return 0, 0
    start = (matched & -matched).bit_length() - 1
    return start, (matched >> start) & WINDOW_MASK


@dataclass
class _Range:
    """Rows sorted so that "meets the bound" is a prefix, with the prefix lengths that have bitsets."""

    keys: list[float]
    rows: list[int]
    level_sizes: list[int]


class Snapshot:
    """The selectable rows of one table, column by column, indexed for microsecond selections.

    Built from rows of (provider_id, model_id, name, is_free, cost_per_1k, status, context_window,
    max_output_tokens, capabilities JSON, aliases JSON); read-only once built."""

    def __init__(self, rows: Sequence[Sequence[Any]], table: str):
        self.table = table
        self.size = n = len(rows)
        columns = list(zip(*rows, strict=True)) if rows else [()] * 10
        (
            provider_ids,
            model_ids,
            names,
            free,
            costs,
            statuses,
            contexts,
            max_outputs,
            capabilities,
            aliases,
        ) = columns
        self.provider_ids: Sequence[str] = provider_ids
        self.model_ids: Sequence[str] = model_ids
        self.names: Sequence[str | None] = names
        self.statuses: Sequence[str] = statuses
        self.free: list[bool] = [bool(f) for f in free]
        self.costs: list[float | None] = [None if c is None else float(c) for c in costs]
        self.contexts: list[int | None] = list(map(_positive_int, contexts))
        self.max_outputs: list[int | None] = list(map(_positive_int, max_outputs))
        # Rows share a handful of capability sets: parse each distinct JSON text once.
        parsed = {raw: _capabilities(raw) for raw in set(capabilities)}
        self.true_capabilities: list[tuple[str, ...]] = [parsed[raw][0] for raw in capabilities]
        capability_rows: dict[str, list[int]] = {name: [] for name in CAPABILITIES}
        for named in parsed.values():
            for capability in named[1]:
                capability_rows.setdefault(capability, [])
        for row, true_caps in enumerate(self.true_capabilities):
            for capability in true_caps:
                capability_rows[capability].append(row)
        self.capability_names = frozenset(capability_rows)
        provider_rows: dict[str, list[int]] = {}
        for row, provider_id in enumerate(provider_ids):
            provider_rows.setdefault(provider_id, []).append(row)

        refs = [f"{p}/{m}" for p, m in zip(provider_ids, model_ids, strict=True)]
        self.refs: dict[str, int] = {}
        for row, listed in enumerate(aliases):
            if listed not in (None, "[]", "null"):  # PostgreSQL hands JSON null over as text
                for alias in _json(listed) or ():
                    if isinstance(alias, str):
                        self.refs.setdefault(f"{provider_ids[row]}/{alias}", row)
        # An id wins over another model's alias.
        self.refs.update((ref, row) for row, ref in reversed(list(enumerate(refs))))

        # A free model costs nothing at the margin whatever its list price.
        effective = [0.0 if f else c for f, c in zip(self.free, self.costs, strict=True)]
        no_cost = [c is None for c in effective]
        cost = [c or 0.0 for c in effective]
        no_context = [c is None for c in self.contexts]
        minus_context = [-(c or 0) for c in self.contexts]
        self._sort_keys = {
            "cheapest": lambda: (no_cost, cost, minus_context, refs),
            "largest_context": lambda: (no_context, minus_context, no_cost, cost, refs),
            "balanced": lambda: (
                [-x for x in _balanced_scores(self.contexts, effective)],
                no_cost,
                cost,
                minus_context,
                refs,
            ),
        }
        # Rows meeting "context >= x" (or "cost <= x") form a prefix of these sequences.
        known_context = sorted((r for r in range(n) if not no_context[r]), key=minus_context.__getitem__)
        self.context_range = _range([minus_context[r] for r in known_context], known_context)
        known_cost = sorted((r for r in range(n) if not no_cost[r]), key=cost.__getitem__)
        self.cost_range = _range([cost[r] for r in known_cost], known_cost)
        self._capability_rows = capability_rows
        self._provider_rows = provider_rows
        self._orders: dict[str, _Order] = {}
        self._lock = threading.Lock()
        self._results: dict[Request, _Match] = {}

    def record(self, row: int) -> dict[str, Any]:
        provider_id, model_id = self.provider_ids[row], self.model_ids[row]
        return {
            "provider_id": provider_id,
            "model_id": model_id,
            "ref": f"{provider_id}/{model_id}",
            "name": self.names[row],
            "is_free": self.free[row],
            "cost_per_1k": self.costs[row],
            "context_window": self.contexts[row],
            "max_output_tokens": self.max_outputs[row],
            "capabilities": self.true_capabilities[row],
            "status": self.statuses[row],
        }

    def order(self, strategy: str) -> _Order:
        """The rows in `strategy`'s order with their bitsets, built on first use (most callers use one
        strategy, so a load builds one order instead of three)."""
        order = self._orders.get(strategy)
        if order is not None:
            return order
        with self._lock, _collector_paused():
            if (order := self._orders.get(strategy)) is not None:
                return order
            n = self.size
            rows = _sorted_rows(*self._sort_keys[strategy]())
            position = [0] * n
            for p, r in enumerate(rows):
                position[r] = p

            def bits(indexes: Iterable[int]) -> int:
                return _bitset((position[r] for r in indexes), n)

            statuses = self.statuses
            order = self._orders[strategy] = _Order(
                rows=rows,
                position=position,
                active=bits(r for r in range(n) if statuses[r] == "active"),
                deprecated=bits(r for r in range(n) if statuses[r] == "deprecated"),
                free=bits(r for r in range(n) if self.free[r]),
                capabilities={c: bits(rs) for c, rs in self._capability_rows.items()},
                providers={p: bits(rs) for p, rs in self._provider_rows.items()},
                context_levels=_levels(self.context_range, position, n),
                cost_levels=_levels(self.cost_range, position, n),
            )
            return order

    # ------------------------------------------------------------------------------------ selection

    def select(self, request: Request, limit: int) -> tuple[list[dict[str, Any]], int, str]:
        """(up to `limit` records in the strategy's order, how many rows meet every constraint, and a
        sentence saying why: which strategy picked among how many, or the constraint that left nothing)."""
        match = self._results.get(request)
        if match is None:
            match = self._match(request)
            if len(self._results) >= REQUEST_CACHE_SIZE:
                self._results.clear()
            self._results[request] = match
        rows = self.order(request.strategy).rows
        picked: list[dict[str, Any]] = []
        matched, start, window = match.matched, match.start, match.window
        while window:
            lowest = window & -window
            picked.append(self.record(rows[start + lowest.bit_length() - 1]))
            if len(picked) == limit:
                break
            window ^= lowest
            if not window:
                matched = matched >> (start + WINDOW_BITS) << (start + WINDOW_BITS)
                start, window = _first_window(matched)
        return picked, match.count, match.reason

    def _match(self, request: Request) -> _Match:
        order = self.order(request.strategy)
        eligible = order.active | order.deprecated if request.include_deprecated else order.active
        constraints = self._constraints(request, order)
        matched = eligible
        for _, bits in constraints:
            matched &= bits
        if not matched:
            return _Match(0, 0, self._explain(request, order, eligible, constraints), 0, 0)
        count = matched.bit_count()
        reason = f"{request.label} of {count} models in {self.table} meeting {request.text}"
        return _Match(matched, count, reason, *_first_window(matched))

    def _constraints(self, request: Request, order: _Order) -> list[tuple[str, int]]:
        constraints = []
        for capability in request.needs:
            if capability not in self.capability_names:
                known = ", ".join(sorted(self.capability_names))
                raise ValueError(f"unknown capability {capability!r}; known: {known}")
            constraints.append((f"needs {capability}", order.capabilities[capability]))
        if request.min_context:
            bits = self._range_bits(
                self.context_range, order.context_levels, order.position, -request.min_context
            )
            constraints.append((f"min_context {request.min_context:,}", bits))
        if request.max_cost_per_1k is not None:
            bits = self._range_bits(
                self.cost_range, order.cost_levels, order.position, request.max_cost_per_1k
            )
            constraints.append((f"max_cost_per_1k {request.max_cost_per_1k:g}", bits))
        if request.free_only:
            constraints.append(("free_only", order.free))
        if request.providers:
            constraints.append(
                ("providers " + ",".join(request.providers), self._ref_bits(request.providers, order))
            )
        if request.exclude_providers:
            excluded = self._ref_bits(request.exclude_providers, order)
            constraints.append(
                ("excluding " + ",".join(request.exclude_providers), ((1 << self.size) - 1) & ~excluded)
            )
        return constraints

    def _ref_bits(self, refs: Sequence[str], order: _Order) -> int:
        bits = 0
        for ref in refs:
            if "/" not in ref:
                bits |= order.providers.get(ref, 0)
            elif (row := self.refs.get(ref)) is not None:
                bits |= 1 << order.position[row]
        return bits

    def _range_bits(self, sorted_range: _Range, levels: list[int], position: list[int], bound: float) -> int:
        """Bitset of the rows meeting `bound`: the nearest precomputed level below it, plus the few rows
        between that level and the bound."""
        size = bisect_right(sorted_range.keys, bound)
        level = bisect_right(sorted_range.level_sizes, size) - 1
        bits = levels[level]
        for row in sorted_range.rows[sorted_range.level_sizes[level] : size]:
            bits |= 1 << position[row]
        return bits

    def _explain(
        self, request: Request, order: _Order, eligible: int, constraints: list[tuple[str, int]]
    ) -> str:
        """Name the constraint that leaves nothing: one that no eligible model meets on its own, or else
        the one that, applied after the more permissive ones, eliminates the last survivors."""
        statuses = "active or deprecated" if request.include_deprecated else "active"
        if not eligible:
            return f"no model satisfies the request: {self.table} has no {statuses} models"
        hint = ""
        if not request.include_deprecated:
            with_deprecated = order.active | order.deprecated
            for _, bits in constraints:
                with_deprecated &= bits
            if with_deprecated:
                hint = (
                    f" ({with_deprecated.bit_count()} deprecated models would; ask with include_deprecated)"
                )
        counted = sorted(
            ((label, (eligible & bits).bit_count(), bits) for label, bits in constraints), key=lambda c: -c[1]
        )
        for label, count, _ in counted:
            if count == 0:
                total = eligible.bit_count()
                return f"no model satisfies {label}: none of the {total} {statuses} models in {self.table} does{hint}"
        survivors = eligible
        for index, (label, _, bits) in enumerate(counted):
            if not survivors & bits:
                before = " and ".join(lbl for lbl, _, _ in counted[:index])
                return (
                    f"no model satisfies {label} together with {before}: {survivors.bit_count()} models in "
                    f"{self.table} meet {before}, none of them also {label}{hint}"
                )
            survivors &= bits
        return ""

    def resolve(self, provider: str, model_or_alias: str) -> dict[str, Any] | None:
        row = self.refs.get(f"{canonical_provider(provider)}/{model_or_alias}")
        return None if row is None else self.record(row)


def _sorted_rows(*key_columns: Sequence[Any]) -> list[int]:
    """Row indexes sorted by the given columns (the first most significant)."""
    keys = list(zip(*key_columns, strict=True))
    return sorted(range(len(keys)), key=keys.__getitem__)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _capabilities(raw: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(capabilities known to be true, every capability named) from a capabilities JSON object."""
    value = _json(raw)
    if not isinstance(value, dict):
        return (), ()
    # Only a known true meets a requirement; false and unknown (null) never do.
    return tuple(sorted(k for k, v in value.items() if v is True)), tuple(value)


def _positive_int(value: Any) -> int | None:
    """A token count read back as int, float or text (PostgreSQL's ->> gives text); None if not positive."""
    if type(value) is int:
        return value if value > 0 else None
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        try:
            number = int(float(value))
        except (TypeError, ValueError, OverflowError):
            return None
    return number if number > 0 else None


def _balanced_scores(contexts: list[int | None], costs: list[float | None]) -> list[float]:
    """Per row: the share of other rows with a strictly smaller context window (unknown counts as
    smallest) plus the share with a strictly higher price (unknown counts as highest). Higher is better."""
    n = len(contexts)
    if n < 2:
        return [0.0] * n
    known_contexts = sorted(c for c in contexts if c is not None)
    known_costs = sorted(c for c in costs if c is not None)
    scores = []
    for context, cost in zip(contexts, costs, strict=True):
        smaller = 0 if context is None else n - len(known_contexts) + bisect_left(known_contexts, context)
        dearer = 0 if cost is None else n - bisect_right(known_costs, cost)
        scores.append((smaller + dearer) / (n - 1))
    return scores


def _range(keys: list[float], rows: list[int]) -> _Range:
    """Level sizes at every change of value when there are few distinct values (then no request needs
    patching), else evenly spaced."""
    boundaries = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)] if keys else []
    if len(boundaries) > RANGE_LEVELS:
        step = math.ceil(len(keys) / RANGE_LEVELS)
        boundaries = list(range(step, len(keys), step)) + [len(keys)]
    return _Range(keys=keys, rows=rows, level_sizes=[0, *boundaries])


def _levels(sorted_range: _Range, position: list[int], n: int) -> list[int]:
    """Bitset of the first k rows of `sorted_range` for every level size k, built cumulatively."""
    chars = bytearray(b"0" * n)
    levels = [0]
    done = 0
    for size in sorted_range.level_sizes[1:]:
        for row in sorted_range.rows[done:size]:
            chars[n - 1 - position[row]] = 49
        done = size
        levels.append(int(chars, 2))
    return levels


# -------------------------------------------------------------------------------------------- loading


@dataclass
class _Loaded:
    snapshot: Snapshot
    fell_back: bool
    note: str
    active: str
    token: tuple
    checked_at: float = field(default=0.0)


def _change_token(engine: Engine) -> tuple:
    """What changes when the selector must reload: the latest sync, the active table's name and switch
    log, and the active view's definition. One cheap query."""
    if engine.dialect.name == "postgresql":
        definition = (
            "(SELECT pg_get_viewdef(c.oid) FROM pg_class c "
            "WHERE c.oid = to_regclass(quote_ident(cfg.active_table_name)) AND c.relkind = 'v')"
        )
    else:
        definition = "(SELECT sql FROM sqlite_master WHERE type = 'view' AND name = cfg.active_table_name)"
    query = (
        "SELECT (SELECT max(id) FROM sync_runs), cfg.active_table_name, "
        f"(SELECT max(id) FROM active_table_log), {definition} "
        "FROM orchestrator_config cfg WHERE cfg.id = 1"
    )
    with engine.connect() as conn:
        row = conn.execute(sa.text(query)).first()
    return tuple(row) if row else (None, REGISTRY_TABLE, None, None)


def _fetch(engine: Engine, table: str) -> list[Any]:
    """The selectable rows of `table`, with only the specs fields the selector needs, extracted by the
    database (a full specs document per row would cost most of the load time to parse)."""
    if engine.dialect.name == "postgresql":
        fields = (
            "specs ->> 'context_window', specs ->> 'max_output_tokens', "
            "(specs -> 'capabilities')::text, (specs -> 'aliases')::text"
        )
    else:
        fields = (
            "json_extract(specs, '$.context_window'), json_extract(specs, '$.max_output_tokens'), "
            "json_extract(specs, '$.capabilities'), json_extract(specs, '$.aliases')"
        )
    quote = engine.dialect.identifier_preparer.quote_identifier
    query = (
        f"SELECT provider_id, model_id, name, is_free, cost_per_1k, status, {fields} "
        f"FROM {quote(table)} WHERE status <> 'missing'"
    )
    with engine.connect() as conn:
        return conn.exec_driver_sql(query).all()


def load(engine: Engine, token: tuple | None = None) -> _Loaded:
    """Read the active table into a snapshot, falling back to model_registry (with a warning) when the
    active table is missing, broken, lacks the key columns or is empty."""
    token = _change_token(engine) if token is None else token
    active = token[1] or REGISTRY_TABLE
    problem = None
    if active != REGISTRY_TABLE:
        problem = table_problem(engine, active)
        if problem is None:
            try:
                rows = _fetch(engine, active)
            except sa.exc.DBAPIError as exc:
                problem = f"{active!r} cannot be read: {str(exc.orig).strip().splitlines()[0]}"
            else:
                if rows:
                    with _collector_paused():
                        snapshot = Snapshot(rows, active)
                    return _Loaded(snapshot, fell_back=False, note="", active=active, token=token)
                problem = f"{active!r} is empty"
        log.warning("active table unusable, falling back to %s: %s", REGISTRY_TABLE, problem)
    rows = _fetch(engine, REGISTRY_TABLE)
    note = f"active table unusable: {problem}; fell back to {REGISTRY_TABLE}" if problem else ""
    with _collector_paused():
        snapshot = Snapshot(rows, REGISTRY_TABLE)
    return _Loaded(snapshot, fell_back=bool(problem), note=note, active=active, token=token)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Building a snapshot (or an order) allocates hundreds of thousands of long-lived objects, none in a
    cycle: the cyclic garbage collector would scan them over and over as they appear — at times half of
    a cold load — and free nothing."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# ------------------------------------------------------------------------------------------- resource


class _State:
    """A selector's mutable state, in a plain object: pydantic's private attributes cost about 3 µs per
    access, a sixth of a selection's budget."""

    __slots__ = (
        "fallbacks",
        "last_flush",
        "loaded",
        "pending",
        "reads",
        "refresh_lock",
        "requests",
        "usage_lock",
    )

    def __init__(self) -> None:
        self.loaded: _Loaded | None = None
        self.refresh_lock = threading.Lock()
        self.usage_lock = threading.Lock()
        self.reads: dict[str, int] = {}
        self.fallbacks: dict[str, int] = {}
        self.pending = 0
        self.last_flush = time.monotonic()
        self.requests: dict[tuple, Request] = {}


class ModelSelector(dg.ConfigurableResource):
    """Picks a model for a request from the active table (falling back to model_registry), from an
    in-memory snapshot. Usable in Dagster as a resource and on its own:
    `ModelSelector(database_url=...).select(needs=["tools"])`."""

    database_url: str = Field(
        default_factory=settings.database_url, description="SQLAlchemy URL of the registry database"
    )
    ttl_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how long a snapshot is used before checking whether the registry changed",
    )
    max_fallbacks: int = Field(default=3, ge=0, description="fallback models returned after the primary")
    flush_every: int = Field(default=1000, ge=1, description="write usage counts after this many selections")
    flush_interval_seconds: float = Field(default=60.0, ge=0, description="…or after this many seconds")

    _state: _State = PrivateAttr(default_factory=_State)

    def select(
        self,
        needs: Sequence[str] | str = (),
        min_context: int | None = None,
        max_cost_per_1k: float | None = None,
        free_only: bool = False,
        providers: Sequence[str] | str | None = None,
        exclude_providers: Sequence[str] | str | None = None,
        strategy: str = "cheapest",
        include_deprecated: bool = False,
        max_fallbacks: int | None = None,
    ) -> Selection:
        """The best model meeting every constraint, and ordered fallbacks. `needs` are capabilities that
        must be known to be true; `providers`/`exclude_providers` take provider ids or PROVIDER/MODEL
        refs (aliases resolve). Raises ValueError for a malformed request."""
        state: _State = self.__pydantic_private__["_state"]
        key = (
            _frozen(needs),
            min_context,
            max_cost_per_1k,
            free_only,
            _frozen(providers),
            _frozen(exclude_providers),
            strategy,
            include_deprecated,
        )
        try:
            request = state.requests.get(key)
        except TypeError:  # an argument that cannot be a cache key (a set, a generator): not cached
            key, request = None, None
        if request is None:
            request = _make_request(
                needs,
                min_context,
                max_cost_per_1k,
                free_only,
                providers,
                exclude_providers,
                strategy,
                include_deprecated,
            )
            if key is not None:
                if len(state.requests) >= REQUEST_CACHE_SIZE:
                    state.requests.clear()
                state.requests[key] = request
        loaded = self._current(state)
        snapshot = loaded.snapshot
        limit = 1 + max(0, self.max_fallbacks if max_fallbacks is None else max_fallbacks)
        picked, count, reason = snapshot.select(request, limit)
        self._record(state, snapshot.table, loaded.active if loaded.fell_back else None)
        if snapshot.size == 0:
            reason = f"{snapshot.table} is empty (run `core-registry sync`)"
        if loaded.note:
            reason = f"{loaded.note}; {reason}"
        if not picked:
            return Selection(None, [], snapshot.table, loaded.fell_back, reason, 0)
        return Selection(picked[0], picked[1:], snapshot.table, loaded.fell_back, reason, count)

    def resolve(self, provider: str, model_or_alias: str) -> dict[str, Any] | None:
        """The selectable model `provider/model_or_alias` (an id or one of its aliases), or None."""
        return self._current(self.__pydantic_private__["_state"]).snapshot.resolve(provider, model_or_alias)

    def refresh(self) -> None:
        """Reload the snapshot now, whatever the change token says."""
        state: _State = self.__pydantic_private__["_state"]
        with state.refresh_lock:
            state.loaded = self._load(None)

    def flush_usage(self) -> None:
        """Write the usage counted since the last flush to table_usage, in one statement."""
        state: _State = self.__pydantic_private__["_state"]
        with state.usage_lock:
            reads, fallbacks = state.reads, state.fallbacks
            state.reads, state.fallbacks, state.pending = {}, {}, 0
            state.last_flush = time.monotonic()
        if not reads and not fallbacks:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "table_name": name,
                "reads": reads.get(name, 0),
                "fallbacks": fallbacks.get(name, 0),
                "last_used_at": now,
            }
            for name in sorted(reads.keys() | fallbacks.keys())
        ]
        try:
            engine = connect(self.database_url)
            insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
            statement = insert(table_usage).values(rows)
            statement = statement.on_conflict_do_update(
                index_elements=[table_usage.c.table_name],
                set_={
                    "reads": table_usage.c.reads + statement.excluded.reads,
                    "fallbacks": table_usage.c.fallbacks + statement.excluded.fallbacks,
                    "last_used_at": statement.excluded.last_used_at,
                },
            )
            with engine.begin() as conn:
                conn.execute(statement)
        except sa.exc.SQLAlchemyError as exc:
            # Usage counts must never break a selection; keep them for the next flush.
            log.warning("could not record table usage: %s", exc)
            with state.usage_lock:
                for name, count in reads.items():
                    state.reads[name] = state.reads.get(name, 0) + count
                for name, count in fallbacks.items():
                    state.fallbacks[name] = state.fallbacks.get(name, 0) + count

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.flush_usage()

    # ---------------------------------------------------------------------------------------- private

    def _current(self, state: _State) -> _Loaded:
        loaded = state.loaded
        now = time.monotonic()
        if loaded is not None and now - loaded.checked_at < self.ttl_seconds:
            return loaded
        with state.refresh_lock:
            loaded = state.loaded
            if loaded is not None and now - loaded.checked_at < self.ttl_seconds:
                return loaded
            engine = connect(self.database_url)
            try:
                token = _change_token(engine)
            except sa.exc.SQLAlchemyError as exc:
                if loaded is None:
                    raise
                # Serving the last snapshot beats failing every request while the database is away.
                log.warning("registry database unavailable, using the snapshot loaded earlier: %s", exc)
                loaded.checked_at = now
                return loaded
            if loaded is None or token != loaded.token:
                loaded = state.loaded = self._load(token)
            loaded.checked_at = now
            return loaded

    def _load(self, token: tuple | None) -> _Loaded:
        loaded = load(connect(self.database_url), token)
        loaded.checked_at = time.monotonic()
        return loaded

    def _record(self, state: _State, table: str, fell_back_from: str | None) -> None:
        with state.usage_lock:
            state.reads[table] = state.reads.get(table, 0) + 1
            if fell_back_from is not None:
                state.fallbacks[fell_back_from] = state.fallbacks.get(fell_back_from, 0) + 1
            state.pending += 1
            due = (
                state.pending >= self.flush_every
                or time.monotonic() - state.last_flush >= self.flush_interval_seconds
            )
        if due:
            self.flush_usage()
