"""Selector figures: cold load of the snapshot, and the latency of one selection.

A cold load is the first `select` of a new ModelSelector: change token, reading the active table,
building the snapshot and the order of the strategy asked for. Latency is measured per call over a mix of
realistic requests (capabilities, context and price bounds, free only, provider filters, all three
strategies): first over each distinct request once (nothing cached), then over many calls of the mix,
as an orchestrator repeats a handful of request shapes.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from typing import Any

from core_assets.selector import ModelSelector

COLD_LOADS = 5
DEFAULT_GC_THRESHOLD = (700, 10, 10)


def request_mix(count: int = 64, seed: int = 6) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    needs = [(), ("tools",), ("vision",), ("tools", "json_mode"), ("reasoning",), ("chat",)]
    mix = []
    for _ in range(count):
        request: dict[str, Any] = {
            "needs": list(rng.choice(needs)),
            "strategy": rng.choice(["cheapest", "largest_context", "balanced"]),
        }
        if rng.random() < 0.6:
            request["min_context"] = rng.choice([8_000, 32_000, 128_000, 200_000, 1_000_000])
        if rng.random() < 0.5:
            request["max_cost_per_1k"] = rng.choice([0.0001, 0.0005, 0.002, 0.01])
        if rng.random() < 0.15:
            request["free_only"] = True
        if rng.random() < 0.2:
            request["providers"] = rng.choice([["openrouter"], ["groq", "mistral"], ["google"]])
        if rng.random() < 0.1:
            request["exclude_providers"] = ["ollama"]
        mix.append(request)
    return mix


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bench_selector(database_url: str, calls: int) -> dict[str, Any]:
    # The selector runs in the orchestrator's process, under CPython's default collector settings, not
    # the raised threshold that loading the Dagster definitions sets for a sync.
    threshold = gc.get_threshold()
    gc.set_threshold(*DEFAULT_GC_THRESHOLD)
    try:
        return _bench(database_url, calls)
    finally:
        gc.set_threshold(*threshold)


def _bench(database_url: str, calls: int) -> dict[str, Any]:
    cold = []
    for _ in range(COLD_LOADS):
        selector = ModelSelector(database_url=database_url)
        started = time.perf_counter()
        selector.select()
        cold.append(time.perf_counter() - started)

    selector = ModelSelector(database_url=database_url)
    selector.select()
    mix = request_mix()
    first = []
    for request in mix:
        started = time.perf_counter_ns()
        selector.select(**request)
        first.append((time.perf_counter_ns() - started) / 1000)
    latencies = []
    for i in range(calls):
        request = mix[i % len(mix)]
        started = time.perf_counter_ns()
        selector.select(**request)
        latencies.append((time.perf_counter_ns() - started) / 1000)
    return {
        "active_models": selector.select().candidates,
        "cold_load_s": statistics.median(cold),
        "cold_loads_s": cold,
        "first_call_p50_us": _percentile(first, 0.5),
        "first_call_max_us": max(first),
        "p50_us": _percentile(latencies, 0.5),
        "p99_us": _percentile(latencies, 0.99),
        "max_us": max(latencies),
        "calls": calls,
        "distinct_requests": len(mix),
    }
