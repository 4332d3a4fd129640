"""The benchmark's figures as targets met or missed, and as a Markdown report."""

from __future__ import annotations

from typing import Any

PROVIDER_ORDER = ("openrouter", "google", "mistral", "groq", "ollama")


def http_concurrency(requests: list[dict[str, Any]], phase: str) -> dict[str, Any] | None:
    """When each provider's requests ran during one phase, relative to the first request, and how much
    the providers overlapped: `concurrency` is the sum of the providers' fetch spans over the whole span
    (1.0 = one after another), `max_in_flight` the most providers being fetched at the same moment."""
    selected = [r for r in requests if r["phase"] == phase]
    if not selected:
        return None
    origin = min(r["started"] for r in selected)
    spans: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for r in selected:
        span = spans.setdefault(r["provider"], [r["started"], r["ended"]])
        span[0], span[1] = min(span[0], r["started"]), max(span[1], r["ended"])
        counts[r["provider"]] = counts.get(r["provider"], 0) + 1
    total = max(end for _, end in spans.values()) - origin
    busy = sum(end - start for start, end in spans.values())
    edges = sorted([(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()])
    in_flight = most = 0
    for _, step in edges:
        in_flight += step
        most = max(most, in_flight)
    return {
        "providers": {
            p: {"requests": counts[p], "start_ms": (spans[p][0] - origin) * 1000, "end_ms": (spans[p][1] - origin) * 1000}
            for p in PROVIDER_ORDER if p in spans
        },
        "span_ms": total * 1000,
        "sum_of_provider_spans_ms": busy * 1000,
        "concurrency": busy / total if total else 1.0,
        "max_in_flight": most,
    }


def _target(name: str, result: dict[str, Any], value: Any, limit: Any, met: bool) -> dict[str, Any]:
    return {"target": name, "models": result["models"], "database": result["database"], "value": value,
            "limit": limit, "met": met}


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every target of the issue that the sizes run can speak to, met or not."""
    out = []
    for r in results:
        noop_rows = r["noop_rows_rewritten"]
        out.append(_target("no-op re-sync rewrites no row", r, noop_rows, 0, all(v == 0 for v in noop_rows)))
        rewritten = r["incremental_rows_rewritten"]
        out.append(_target("incremental sync rewrites the changed rows only", r, rewritten, r["incremental_changed"],
                           all(v == r["incremental_changed"] for v in rewritten)))
        if r["llm"] is not None:
            calls = r["llm"]["noop"]["calls"]
            out.append(_target("no-op re-sync makes no LLM call (CORE_INFERENCER=llm)", r, calls, 0, calls == 0))
        if r["models"] == 700:
            out.append(_target("full sync ≤ 2 × (floor a + floor b)", r, round(r["full_ratio"], 2), 2,
                               r["full_ratio"] <= 2))
            out.append(_target("no-op re-sync ≤ 1.5 × floor a", r, round(r["noop_ratio"], 2), 1.5,
                               r["noop_ratio"] <= 1.5))
        if r["models"] == 100_000 and r["database"] == "postgresql":
            out.append(_target("full sync ≤ 3 × (floor a + floor b)", r, round(r["full_ratio"], 2), 3,
                               r["full_ratio"] <= 3))
            out.append(_target("peak RSS ≤ 1.5 GB", r, f"{r['peak_rss_mb']:.0f} MB", "1536 MB",
                               r["peak_rss_mb"] <= 1536))
        selector = r["selector"]
        if r["models"] == 10_000 and selector:
            out.append(_target("selector p50 ≤ 20 µs", r, round(selector["p50_us"], 1), 20, selector["p50_us"] <= 20))
            out.append(_target("selector p99 ≤ 200 µs", r, round(selector["p99_us"], 1), 200,
                               selector["p99_us"] <= 200))
            out.append(_target("selector cold load ≤ 200 ms", r, round(selector["cold_load_s"] * 1000),
                               200, selector["cold_load_s"] <= 0.2))
    return out


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    results = document["results"]
    parts = [
        "# Benchmark results" + (" (smoke run: CI size, not for reading)" if document["smoke"] else ""),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM; {m['os']}; Python {m['python']}, "
        f"Dagster {m['dagster']}, SQLite {m['sqlite']}"
        + (f", PostgreSQL {m['postgresql']}" if m["postgresql"] else "")
        + f". Run {m['date']}, {document['duration_s'] / 60:.1f} min.",
        "",
        f"Command: `{m['command']}`",
        "",
        "## Sync",
        "",
        "Medians of the runs; ratios are per run, against the floors measured in the same process. Floor a: a "
        "trivial 6-asset graph materialized in-process; floor b: the registry's rows bulk-loaded in one "
        "statement.",
        "",
        _table(
            ["models", "db", "runs", "floor a", "floor b", "full sync", "full / (a+b)", "no-op re-sync",
             "no-op / a", "rows rewritten (no-op)", "1% changed: sync", "changed → rewritten", "peak RSS"],
            [
                [f"{r['models']:,}", r["database"], r["runs"], _s(r["floor_a_s"]), _s(r["floor_b_s"]),
                 _s(r["full_sync_s"]), f"{r['full_ratio']:.2f}", _s(r["noop_sync_s"]), f"{r['noop_ratio']:.2f}",
                 max(r["noop_rows_rewritten"]), _s(r["incremental_sync_s"]),
                 f"{r['incremental_changed']} → {max(r['incremental_rows_rewritten'])}", f"{r['peak_rss_mb']:.0f} MB"]
                for r in results
            ],
        ),
        "",
        "What Dagster alone costs for the real job's shape — a trivial graph with as many asset steps and "
        "check steps as the sync executes — next to floor a (the issue's six-asset graph):",
        "",
        _table(
            ["models", "db", "asset steps + check steps", "trivial graph of that shape", "= × floor a",
             "no-op re-sync / that"],
            [
                [f"{r['models']:,}", r["database"], " + ".join(map(str, r["job_shape"])), _s(r["job_shape_floor_s"]),
                 f"{r['job_shape_floor_s'] / r['floor_a_s']:.2f}", f"{r['noop_sync_s'] / r['job_shape_floor_s']:.2f}"]
                for r in results
            ],
        ),
        "",
        "## LLM inferencer (`CORE_INFERENCER=llm` against the fake endpoint; one run)",
        "",
        _table(
            ["models", "db", "full sync: calls", "full sync", "no-op: calls", "no-op", "1% changed: calls"],
            [
                [f"{r['models']:,}", r["database"], r["llm"]["full"]["calls"], _s(r["llm"]["full"]["wall_s"]),
                 r["llm"]["noop"]["calls"], _s(r["llm"]["noop"]["wall_s"]), r["llm"]["incremental"]["calls"]]
                for r in results if r["llm"]
            ],
        ),
        "",
        "## Selector",
        "",
        "Cold load: the first `select` of a new selector (median of 5). Latency per call over a mix of 64 "
        "distinct requests; the first call of each is uncached.",
        "",
        _table(
            ["models", "db", "cold load", "p50", "p99", "max", "first call p50", "first call max"],
            [
                [f"{r['models']:,}", r["database"], f"{r['selector']['cold_load_s'] * 1000:.0f} ms",
                 f"{r['selector']['p50_us']:.1f} µs", f"{r['selector']['p99_us']:.1f} µs",
                 f"{r['selector']['max_us']:.0f} µs", f"{r['selector']['first_call_p50_us']:.0f} µs",
                 f"{r['selector']['first_call_max_us'] / 1000:.1f} ms"]
                for r in results if r["selector"]
            ],
        ),
        "",
        "## HTTP: the five providers are fetched concurrently",
        "",
        "The fetch step alone (`raw_<provider>_models`) with every answer delayed by "
        f"{results[0]['http_latency_ms']:g} ms, as a remote API's round trip: when each provider's first request "
        "started and its last answer ended, in ms from the first request. Concurrency = sum of the provider "
        "spans / whole span (1.0 would be one after another); the full sync's own spans are in latest.json."
        if results else "",
        "",
        _table(
            ["models", "db", *PROVIDER_ORDER, "span", "concurrency", "max in flight"],
            [
                [f"{r['models']:,}", r["database"],
                 *(_span(r["http"]["providers"].get(p)) for p in PROVIDER_ORDER),
                 f"{r['http']['span_ms']:.0f} ms", f"{r['http']['concurrency']:.2f}", r["http"]["max_in_flight"]]
                for r in results if r["http"]
            ],
        ),
        "",
        "## Targets",
        "",
        _table(
            ["target", "models", "db", "value", "limit", "met"],
            [[t["target"], f"{t['models']:,}", t["database"], t["value"], t["limit"], "yes" if t["met"] else "**no**"]
             for t in document["targets"]],
        ),
        "",
    ]
    return "\n".join(parts)


def _span(span: dict[str, Any] | None) -> str:
    if span is None:
        return "–"
    return f"{span['start_ms']:.0f}–{span['end_ms']:.0f} ({span['requests']} req)"
